"""Check a database against what the migrations declare, from ``pg_catalog``.

What the migrations declare is recorded in ``sql/schema.lock.json``: a snapshot of every object they create
(tables and columns, constraints and foreign keys, indexes, RLS flags, policies, table/column/function grants
for the API roles, functions with their security settings, triggers, buckets). A test regenerates the
snapshot from a freshly migrated database and fails when it differs from the lock, so the lock cannot drift
from the migrations. ``verify`` reports every missing or different object, and every *extra* policy or grant
on our tables (an extra permissive policy is how the seeds opened metrics to everyone).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import sql_root

OUR_TABLES = (
    "datasets",
    "dataset_download_tokens",
    "training_jobs",
    "job_events",
    "metrics_points",
    "model_artifacts",
    "cost_records",
    "notifications",
    "model_baselines",
    "validation_results",
)
API_ROLES = ("anon", "authenticated", "service_role")
BUCKETS = ("lora-datasets", "lora-models")


def lock_path() -> Path:
    return sql_root() / "schema.lock.json"


def _rows(conn: Any, query: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    return list(conn.execute(query, tuple(params)).fetchall())


def snapshot_schema(conn: Any) -> dict[str, dict[str, Any]]:
    """The security-relevant shape of our schema, as plain JSON-able data keyed by object name."""
    tables = list(OUR_TABLES)
    snap: dict[str, dict[str, Any]] = {}
    snap["tables"] = {
        name: {"rls": rls, "force_rls": force}
        for name, rls, force in _rows(
            conn,
            """
            select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c
             where c.relnamespace = 'public'::regnamespace and c.relkind = 'r' and c.relname = any(%s)""",
            [tables],
        )
    }
    snap["columns"] = {
        f"{t}.{col}": {"type": typ, "not_null": nn, "default": default}
        for t, col, typ, nn, default in _rows(
            conn,
            """
            select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid)
              from pg_attribute a join pg_class c on c.oid = a.attrelid
              left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
             where c.relnamespace = 'public'::regnamespace and c.relname = any(%s)
               and a.attnum > 0 and not a.attisdropped""",
            [tables],
        )
    }
    snap["constraints"] = {
        f"{t}.{name}": definition
        for t, name, definition in _rows(
            conn,
            """
            select c.relname, con.conname, pg_get_constraintdef(con.oid) from pg_constraint con
              join pg_class c on c.oid = con.conrelid
             where c.relnamespace = 'public'::regnamespace and c.relname = any(%s)""",
            [tables],
        )
    }
    snap["indexes"] = {
        f"{t}.{name}": definition
        for t, name, definition in _rows(
            conn,
            """
            select tablename, indexname, indexdef from pg_indexes
             where schemaname = 'public' and tablename = any(%s)""",
            [tables],
        )
    }
    snap["policies"] = {
        f"{schema}.{t}.{name}": {
            "command": cmd,
            "roles": sorted(roles),
            "permissive": permissive,
            "using": qual,
            "check": check,
        }
        for schema, t, name, cmd, roles, permissive, qual, check in _rows(
            conn,
            """
            select schemaname, tablename, policyname, cmd, roles, permissive, qual, with_check from pg_policies
             where (schemaname = 'public' and tablename = any(%s))
                or (schemaname = 'storage' and tablename = 'objects' and policyname like 'lora\\_%%')""",
            [tables],
        )
    }
    snap["table_grants"] = {
        f"{t}.{grantee}": sorted(privs)
        for t, grantee, privs in _rows(
            conn,
            """
            select table_name, grantee, array_agg(privilege_type::text) from information_schema.role_table_grants
             where table_schema = 'public' and table_name = any(%s) and grantee = any(%s)
             group by table_name, grantee""",
            [tables, list(API_ROLES)],
        )
    }
    snap["column_grants"] = {
        f"{t}.{grantee}.{privilege}": sorted(columns)
        for t, grantee, privilege, columns in _rows(
            conn,
            """
            select table_name, grantee, privilege_type, array_agg(column_name::text)
              from information_schema.column_privileges
             where table_schema = 'public' and table_name = any(%s) and grantee = any(%s)
               and (table_name, grantee, privilege_type) not in (
                 select table_name, grantee, privilege_type from information_schema.role_table_grants
                  where table_schema = 'public')
             group by table_name, grantee, privilege_type""",
            [tables, list(API_ROLES)],
        )
    }
    snap["functions"] = {
        f"{schema}.{signature}": {
            "security_definer": definer,
            "volatility": volatility,
            "config": config or [],
            "returns": returns,
            "execute": sorted(execute or []),
        }
        for schema, signature, definer, volatility, config, returns, execute in _rows(
            conn,
            """
            select n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', p.prosecdef,
                   p.provolatile::text, p.proconfig, pg_get_function_result(p.oid),
                   array(select r.rolname from pg_roles r
                          where r.rolname = any(%s) and has_function_privilege(r.oid, p.oid, 'EXECUTE'))
              from pg_proc p join pg_namespace n on n.oid = p.pronamespace
             where n.nspname = 'lora_internal'
                or (n.nspname = 'public' and p.proname in (
                      'redeem_download_token', 'cleanup_expired_dataset_tokens', 'pod_get_job', 'pod_heartbeat',
                      'pod_set_status', 'pod_log_event', 'pod_register_artifact', 'ingest_metrics',
                      'pod_report_bootstrap_failure'))""",
            [list(API_ROLES)],
        )
    }
    snap["triggers"] = {
        f"{t}.{name}": definition
        for t, name, definition in _rows(
            conn,
            """
            select c.relname, t.tgname, pg_get_triggerdef(t.oid) from pg_trigger t
              join pg_class c on c.oid = t.tgrelid
             where not t.tgisinternal and c.relnamespace = 'public'::regnamespace and c.relname = any(%s)""",
            [tables],
        )
    }
    snap["buckets"] = {
        bucket_id: {"public": public, "file_size_limit": limit, "allowed_mime_types": sorted(mimes or [])}
        for bucket_id, public, limit, mimes in _rows(
            conn,
            """
            select id, public, file_size_limit, allowed_mime_types from storage.buckets where id = any(%s)""",
            [list(BUCKETS)],
        )
    }
    return snap


@dataclass(frozen=True)
class SchemaGap:
    """One difference between the database and the migrations."""

    kind: str
    name: str
    problem: str
    expected: Any = None
    actual: Any = None

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.problem}"


@dataclass
class VerifyReport:
    """The result of :func:`verify_schema`; ``ok`` when there are no gaps."""

    gaps: list[SchemaGap] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.gaps

    def render(self) -> str:
        lines = [
            f"checked {sum(self.checked.values())} objects: "
            + ", ".join(f"{n} {kind}" for kind, n in self.checked.items())
        ]
        if self.ok:
            lines.append("OK: the database matches the migrations")
        else:
            lines.append(f"FAILED: {len(self.gaps)} gap(s)")
            lines += [f"  - {gap}" for gap in self.gaps]
            lines.append("fix: run `lora-pipeline db migrate --db-url ...`, or undo the manual change shown above")
        return "\n".join(lines)


_SINGULAR = {
    "tables": "table",
    "columns": "column",
    "constraints": "constraint",
    "indexes": "index",
    "policies": "policy",
    "table_grants": "table grant",
    "column_grants": "column grant",
    "functions": "function",
    "triggers": "trigger",
    "buckets": "bucket",
}
_EXTRA_IS_A_GAP = {"policies", "table_grants", "column_grants", "functions", "triggers", "constraints", "indexes"}


def verify_schema(conn: Any, expected: dict[str, dict[str, Any]] | None = None) -> VerifyReport:
    """Compare the live schema with ``expected`` (default: the lock file)."""
    if expected is None:
        expected = json.loads(lock_path().read_text(encoding="utf-8"))
    actual = snapshot_schema(conn)
    report = VerifyReport()
    for kind, wanted in expected.items():
        have = actual.get(kind, {})
        label = _SINGULAR.get(kind, kind)
        report.checked[kind] = len(wanted)
        for name, value in wanted.items():
            if name not in have:
                report.gaps.append(SchemaGap(label, name, "missing", value, None))
            elif have[name] != value:
                report.gaps.append(
                    SchemaGap(label, name, f"differs: expected {value}, found {have[name]}", value, have[name])
                )
        if kind in _EXTRA_IS_A_GAP:
            for name in sorted(set(have) - set(wanted)):
                report.gaps.append(
                    SchemaGap(label, name, "is not declared by the migrations (extra)", None, have[name])
                )
    return report


def write_lock(conn: Any, path: Path | None = None) -> Path:
    """Write the snapshot of ``conn`` (a freshly migrated database) as the lock file."""
    target = path or lock_path()
    target.write_text(json.dumps(snapshot_schema(conn), indent=1, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return target


__all__ = ["SchemaGap", "VerifyReport", "lock_path", "snapshot_schema", "verify_schema", "write_lock"]
