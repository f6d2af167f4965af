"""Every table x role x operation against a real PostgreSQL, with Supabase's roles and default privileges.

Each cell runs inside a rolled-back transaction with `SET LOCAL ROLE` and `request.jwt.claims`, the way
PostgREST runs requests. The subject rows belong to user A. "Allowed" means: select sees A's row, insert of a
new row for A succeeds, update/delete change exactly A's row. For user B an insert is tried both as A (user_id
= A) and as B pointing at A's parent rows; both must fail.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import errors

OWNER_CAN = {
    "datasets": "SIUD",
    "dataset_download_tokens": "SIUD",
    "training_jobs": "SIUD",
    "job_events": "SI",
    "metrics_points": "S",
    "model_artifacts": "SD",
    "cost_records": "S",
    "notifications": "SIUD",
    "model_baselines": "SIUD",
    "validation_results": "S",
}
ROLES = ("anon", "user_a", "user_b", "service")
OPS = "SIUD"


def expected(table: str, role: str, op: str) -> bool:
    if role == "service":
        return True
    if role == "user_a":
        return op in OWNER_CAN[table]
    return False


@dataclass
class World:
    users: dict[str, str]
    rows: dict[str, dict[str, Any]]


def _hex() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex


def seed_user(conn: psycopg.Connection[Any], uid: str) -> dict[str, Any]:
    conn.execute(
        "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
        (uid, f"{uid}@example.test"),
    )
    ds = conn.execute(
        "insert into public.datasets (user_id, name, storage_path) values (%s, 'parent', %s) returning id",
        (uid, f"{uid}/p/data.jsonl"),
    ).fetchone()[0]
    ds_free = conn.execute(
        "insert into public.datasets (user_id, name, storage_path) values (%s, 'free', %s) returning id",
        (uid, f"{uid}/f/data.jsonl"),
    ).fetchone()[0]
    job = conn.execute(
        "insert into public.training_jobs (user_id, dataset_id, base_model) values (%s, %s, 'm') returning id",
        (uid, ds),
    ).fetchone()[0]
    job_free = conn.execute(
        "insert into public.training_jobs (user_id, dataset_id, base_model) values (%s, %s, 'm') returning id",
        (uid, ds),
    ).fetchone()[0]
    one = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    return {
        "datasets": ds_free,
        "parent_dataset": ds,
        "training_jobs": job_free,
        "parent_job": job,
        "dataset_download_tokens": one(
            "insert into public.dataset_download_tokens (user_id, dataset_id, token_hash, "
            "expires_at) values (%s, %s, %s, now() + interval '1 hour') returning id",
            uid,
            ds,
            _hex(),
        ),
        "job_events": one(
            "insert into public.job_events (job_id, user_id, kind, message) values (%s, %s, 'k', 'm') returning id",
            job,
            uid,
        ),
        "metrics_points": one(
            "insert into public.metrics_points (job_id, user_id, step) values (%s, %s, 0) returning step", job, uid
        ),
        "model_artifacts": one(
            "insert into public.model_artifacts (job_id, user_id, storage_path) values (%s, %s, %s) returning id",
            job,
            uid,
            f"{uid}/{job}/a",
        ),
        "cost_records": one(
            "insert into public.cost_records (job_id, user_id, hourly_rate, seconds, amount_usd) "
            "values (%s, %s, 1, 1, 1) returning id",
            job,
            uid,
        ),
        "notifications": one(
            "insert into public.notifications (user_id, job_id, kind, title) values (%s, %s, 'k', 't') returning id",
            uid,
            job,
        ),
        "model_baselines": one(
            "insert into public.model_baselines (user_id, model_name, metric, kind, threshold) "
            "values (%s, 'm', 'eval_loss', 'max', 2) returning id",
            uid,
        ),
        "validation_results": one(
            "insert into public.validation_results (job_id, user_id, model_name, decision) "
            "values (%s, %s, 'm', 'pass') returning id",
            job,
            uid,
        ),
    }


@pytest.fixture(scope="module")
def conn(shared_migrated_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(shared_migrated_db, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def world(conn: psycopg.Connection[Any]) -> World:
    """Seeded once per module: every cell below rolls its changes back."""
    users = {"a": str(uuid.uuid4()), "b": str(uuid.uuid4())}
    return World(users, {name: seed_user(conn, uid) for name, uid in users.items()})


def insert_sql(table: str, owner: str, parents: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    ds, job = parents["parent_dataset"], parents["parent_job"]
    return {
        "datasets": ("insert into public.datasets (user_id, name) values (%s, 'new')", (owner,)),
        "dataset_download_tokens": (
            "insert into public.dataset_download_tokens (user_id, dataset_id, token_hash, "
            "expires_at) values (%s, %s, %s, now())",
            (owner, ds, _hex()),
        ),
        "training_jobs": (
            "insert into public.training_jobs (user_id, dataset_id, base_model) values (%s, %s, 'm')",
            (owner, ds),
        ),
        "job_events": (
            "insert into public.job_events (job_id, user_id, kind, message) values (%s, %s, 'k', 'm')",
            (job, owner),
        ),
        "metrics_points": (
            "insert into public.metrics_points (job_id, user_id, step) values (%s, %s, 99)",
            (job, owner),
        ),
        "model_artifacts": (
            "insert into public.model_artifacts (job_id, user_id, storage_path) values (%s, %s, 'x/y')",
            (job, owner),
        ),
        "cost_records": (
            "insert into public.cost_records (job_id, user_id, attempt, hourly_rate, seconds, amount_usd) "
            "values (%s, %s, 2, 1, 1, 1)",
            (job, owner),
        ),
        "notifications": (
            "insert into public.notifications (user_id, job_id, kind, title) values (%s, %s, 'k', 't')",
            (owner, job),
        ),
        "model_baselines": (
            "insert into public.model_baselines (user_id, model_name, metric, kind, threshold) "
            "values (%s, 'm2', 'eval_loss', 'max', 1)",
            (owner,),
        ),
        "validation_results": (
            "insert into public.validation_results (job_id, user_id, model_name, decision) "
            "values (%s, %s, 'm', 'warn')",
            (job, owner),
        ),
    }[table]


def target_filter(table: str, row: Any, parents: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    if table == "metrics_points":
        return "job_id = %s and step = %s", (parents["parent_job"], row)
    return "id = %s", (row,)


UPDATE_SET = {
    "datasets": "description = 'changed'",
    "dataset_download_tokens": "revoked_at = now()",
    "training_jobs": "name = 'changed'",
    "job_events": "message = 'changed'",
    "metrics_points": "train_loss = 1",
    "model_artifacts": "size_bytes = 7",
    "cost_records": "seconds = 9",
    "notifications": "read_at = now()",
    "model_baselines": "threshold = 3",
    "validation_results": "decision = 'block'",
}


def as_role(conn: psycopg.Connection[Any], role: str, users: dict[str, str]) -> None:
    pg_role, sub = {
        "anon": ("anon", None),
        "user_a": ("authenticated", users["a"]),
        "user_b": ("authenticated", users["b"]),
        "service": ("service_role", None),
    }[role]
    claims = {"role": pg_role, **({"sub": sub} if sub else {})}
    conn.execute(f"set local role {pg_role}")
    conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))


def attempt(
    conn: psycopg.Connection[Any], role: str, users: dict[str, str], sql: str, params: tuple[Any, ...]
) -> int | None:
    """Rows affected/seen, or None when Postgres refused (42501 or an RLS violation)."""
    with conn.transaction(force_rollback=True):
        as_role(conn, role, users)
        try:
            with conn.transaction():
                cursor = conn.execute(sql, params)
                return cursor.fetchone()[0] if sql.lstrip().startswith("select") else cursor.rowcount
        except errors.InsufficientPrivilege:
            return None


def allowed(conn: psycopg.Connection[Any], world: World, table: str, role: str, op: str) -> bool:
    rows_a = world.rows["a"]
    where, params = target_filter(table, rows_a[table], rows_a)
    if op == "S":
        return attempt(conn, role, world.users, f"select count(*) from public.{table} where {where}", params) == 1
    if op == "U":
        return (
            attempt(conn, role, world.users, f"update public.{table} set {UPDATE_SET[table]} where {where}", params)
            == 1
        )
    if op == "D":
        return attempt(conn, role, world.users, f"delete from public.{table} where {where}", params) == 1
    as_a = attempt(conn, role, world.users, *insert_sql(table, world.users["a"], rows_a)) == 1
    if role == "user_b":
        as_b_into_a = attempt(conn, role, world.users, *insert_sql(table, world.users["b"], rows_a)) == 1
        parentless = table in ("datasets", "model_baselines")
        return as_a or (as_b_into_a and not parentless)
    return as_a


CELLS = [(t, r, o) for t in OWNER_CAN for r in ROLES for o in OPS]


@pytest.mark.parametrize(("table", "role", "op"), CELLS, ids=[f"{t}-{r}-{o}" for t, r, o in CELLS])
def test_rls_cell(conn: psycopg.Connection[Any], world: World, table: str, role: str, op: str) -> None:
    assert allowed(conn, world, table, role, op) is expected(table, role, op)


def test_anon_has_no_table_privilege_at_all(conn: psycopg.Connection[Any]) -> None:
    rows = conn.execute("""select table_name, privilege_type from information_schema.role_table_grants
                            where table_schema = 'public' and grantee in ('anon', 'public')""").fetchall()
    assert rows == []


def test_user_b_sees_nothing_of_user_a_anywhere(conn: psycopg.Connection[Any], world: World) -> None:
    for table in OWNER_CAN:
        seen = attempt(
            conn, "user_b", world.users, f"select count(*) from public.{table} where user_id = %s", (world.users["a"],)
        )
        assert seen == 0, table


def test_a_user_cannot_move_a_row_to_another_user(conn: psycopg.Connection[Any], world: World) -> None:
    row = world.rows["a"]["datasets"]
    with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
        as_role(conn, "user_a", world.users)
        conn.execute("update public.datasets set user_id = %s where id = %s", (world.users["b"], row))


def test_a_user_cannot_delete_a_running_job(conn: psycopg.Connection[Any], world: World) -> None:
    job = world.rows["a"]["training_jobs"]
    with conn.transaction(force_rollback=True):
        conn.execute("update public.training_jobs set status = 'queued' where id = %s", (job,))
        assert attempt(conn, "user_a", world.users, "delete from public.training_jobs where id = %s", (job,)) == 0


def test_a_user_cannot_touch_job_columns_outside_the_grant(conn: psycopg.Connection[Any], world: World) -> None:
    job = world.rows["a"]["training_jobs"]
    assert (
        attempt(conn, "user_a", world.users, "update public.training_jobs set attempt = 5 where id = %s", (job,))
        is None
    )
    assert (
        attempt(conn, "user_a", world.users, "update public.training_jobs set user_id = user_id where id = %s", (job,))
        is None
    )
