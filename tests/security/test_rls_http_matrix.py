"""Every public table x role x operation, through HTTP (``/rest/v1``), with the exact outcome.

tests/integration/db/test_rls_matrix.py proves the grants and policies of sql/migrations/0003 at the SQL
level; this module proves the same table end to end: the gateway must hand each request to Postgres as the
caller's role (anon key only; signed-in owner; another signed-in user acting on the owner's rows; service
role) and render what Postgres decides, and nothing else.

Expected outcomes, derived from the grants (``OWNER_CAN``, shared with the SQL-level test, equals the
``authenticated`` grants because every grant in 0003 has a matching owner policy, which
:func:`test_the_expectation_table_is_the_grant_table` pins):

- service role: everything works (BYPASSRLS).
- anon key: every operation is ``401`` ``42501`` "permission denied for table <t>" (anon has no privilege).
- owner: granted operations work on their own row; the others are ``403`` ``42501`` permission denied.
- other user: granted reads/updates/deletes see and change nothing (``200 []``, row untouched); a granted
  insert of a row for the owner, or of their own row hung on the owner's parent rows, is ``403`` ``42501``
  "new row violates row-level security policy"; ungranted operations are ``403`` permission denied.

Storage objects (``storage.objects``, also a table) get the same treatment for both buckets further down.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg
import pytest
from tests.integration.db.test_rls_matrix import OWNER_CAN

from lora_pipeline.local_supabase import LocalSupabase

from .conftest import (
    DATASETS,
    MODELS,
    Person,
    anon_headers,
    new_person,
    object_bytes,
    service_headers,
    storage_error,
    user_headers,
)

ROLES = ("anon", "owner", "other_user", "service")
OPS = ("select", "insert", "update", "delete")
_OP_LETTER = {"select": "S", "insert": "I", "update": "U", "delete": "D"}
PARENTLESS = ("datasets", "model_baselines")
"""Tables whose rows hang on no parent row of another user (so a user may insert their own freely)."""


def expected(table: str, role: str, op: str) -> str:
    """``done`` | ``hidden`` (200, nothing seen or changed) | ``denied`` (42501 permission) | ``rls`` (42501 RLS)."""
    if role == "service":
        return "done"
    granted = _OP_LETTER[op] in OWNER_CAN[table]
    if role == "anon" or not granted:
        return "denied"
    if role == "owner":
        return "done"
    return "rls" if op == "insert" else "hidden"


@dataclass
class World:
    owner: Person
    other: Person
    parents: dict[str, dict[str, str]]
    """Per user: ``dataset`` and ``job`` ids that new rows hang on."""


@pytest.fixture
def world(stack: LocalSupabase, db: psycopg.Connection[Any], module_cache: dict[str, Any]) -> World:
    if "world" not in module_cache:
        module_cache["world"] = build_world(stack, db)
    built: World = module_cache["world"]
    return built


def build_world(stack: LocalSupabase, db: psycopg.Connection[Any]) -> World:
    owner, other = new_person(stack), new_person(stack)
    parents = {}
    for person in (owner, other):
        dataset = db.execute(
            "insert into public.datasets (user_id, name, storage_path) values (%s, 'parent', %s) returning id::text",
            (person.id, f"{person.id}/{uuid.uuid4()}/data.jsonl"),
        ).fetchone()[0]
        job = db.execute(
            "insert into public.training_jobs (user_id, dataset_id, base_model) values (%s, %s, 'm') "
            "returning id::text",
            (person.id, dataset),
        ).fetchone()[0]
        parents[person.id] = {"dataset": dataset, "job": job}
    return World(owner, other, parents)


def _future() -> str:
    return (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()


def new_row(table: str, user_id: str, parents: dict[str, str]) -> dict[str, Any]:
    """A valid new row of ``table`` for ``user_id`` hanging on ``parents``; carries a unique marker."""
    marker = str(uuid.uuid4())
    job, dataset = parents["job"], parents["dataset"]
    rows: dict[str, dict[str, Any]] = {
        "datasets": {"id": marker, "user_id": user_id, "name": f"new-{marker}"},
        "dataset_download_tokens": {
            "id": marker,
            "user_id": user_id,
            "dataset_id": dataset,
            "token_hash": secrets.token_hex(32),
            "expires_at": _future(),
        },
        "training_jobs": {"id": marker, "user_id": user_id, "dataset_id": dataset, "base_model": "m"},
        "job_events": {"job_id": job, "user_id": user_id, "kind": "k", "message": marker},
        "metrics_points": {"job_id": job, "user_id": user_id, "step": secrets.randbelow(2**30)},
        "model_artifacts": {"id": marker, "job_id": job, "user_id": user_id, "storage_path": f"x/{marker}"},
        "cost_records": {
            "id": marker,
            "job_id": job,
            "user_id": user_id,
            "attempt": secrets.randbelow(2**30) + 1,
            "hourly_rate": 1,
            "seconds": 1,
            "amount_usd": 1,
        },
        "notifications": {"id": marker, "user_id": user_id, "job_id": job, "kind": "k", "title": "t"},
        "model_baselines": {
            "id": marker,
            "user_id": user_id,
            "model_name": f"m-{marker}",
            "metric": "eval_loss",
            "kind": "max",
            "threshold": 1,
        },
        "validation_results": {
            "id": marker,
            "job_id": job,
            "user_id": user_id,
            "model_name": "m",
            "decision": "warn",
        },
    }
    return rows[table]


def row_filter(table: str, row: dict[str, Any]) -> dict[str, str]:
    """PostgREST filters selecting exactly ``row`` (by id, or by the marker where ids are generated)."""
    if table == "job_events":
        return {"message": f"eq.{row['message']}"}
    if table == "metrics_points":
        return {"job_id": f"eq.{row['job_id']}", "step": f"eq.{row['step']}"}
    return {"id": f"eq.{row['id']}"}


def sql_where(table: str, row: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    if table == "job_events":
        return "message = %s", (row["message"],)
    if table == "metrics_points":
        return "job_id = %s and step = %s", (row["job_id"], row["step"])
    return "id = %s", (row["id"],)


def seed(db: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> None:
    columns = ", ".join(row)
    marks = ", ".join(["%s"] * len(row))
    db.execute(f"insert into public.{table} ({columns}) values ({marks})", tuple(row.values()))


def fetch(db: psycopg.Connection[Any], table: str, row: dict[str, Any]) -> list[tuple[Any, ...]]:
    where, params = sql_where(table, row)
    return db.execute(f"select row_to_json(t)::text from public.{table} t where {where}", params).fetchall()


CHANGES: dict[str, dict[str, Any]] = {
    "datasets": {"description": "changed"},
    "dataset_download_tokens": {"revoked_at": "2030-01-01T00:00:00+00:00"},
    "training_jobs": {"name": "changed"},
    "job_events": {"level": "error"},
    "metrics_points": {"train_loss": 1.5},
    "model_artifacts": {"size_bytes": 7},
    "cost_records": {"seconds": 9},
    "notifications": {"read_at": "2030-01-01T00:00:00+00:00"},
    "model_baselines": {"threshold": 3},
    "validation_results": {"decision": "block"},
}


def headers_for(stack: LocalSupabase, world: World, role: str) -> dict[str, str]:
    return {
        "anon": lambda: anon_headers(stack),
        "owner": lambda: user_headers(stack, world.owner),
        "other_user": lambda: user_headers(stack, world.other),
        "service": lambda: service_headers(stack),
    }[role]()


def assert_refused(response: httpx.Response, table: str, role: str, outcome: str) -> None:
    assert response.status_code == (401 if role == "anon" else 403), response.text
    body = response.json()
    assert body["code"] == "42501"
    if outcome == "rls":
        assert body["message"] == f'new row violates row-level security policy for table "{table}"'
    else:
        assert body["message"] == f"permission denied for table {table}"
    if role == "anon":
        assert response.headers.get("www-authenticate") == "Bearer"


CELLS = [(t, r, o) for t in OWNER_CAN for r in ROLES for o in OPS]


@pytest.mark.parametrize(("table", "role", "op"), CELLS, ids=[f"{t}-{r}-{o}" for t, r, o in CELLS])
def test_table_cell(
    stack: LocalSupabase,
    http: httpx.Client,
    db: psycopg.Connection[Any],
    world: World,
    table: str,
    role: str,
    op: str,
) -> None:
    outcome = expected(table, role, op)
    headers = headers_for(stack, world, role)
    owner_parents = world.parents[world.owner.id]
    url = f"/rest/v1/{table}"
    if op == "insert":
        _check_insert(http, db, world, table, role, outcome, headers)
        return
    row = new_row(table, world.owner.id, owner_parents)
    seed(db, table, row)
    before = fetch(db, table, row)
    assert len(before) == 1
    represent = {"Prefer": "return=representation"}
    if op == "select":
        response = http.get(url, params=row_filter(table, row), headers=headers)
    elif op == "update":
        response = http.patch(url, params=row_filter(table, row), json=CHANGES[table], headers=headers | represent)
    else:
        response = http.delete(url, params=row_filter(table, row), headers=headers | represent)
    after = fetch(db, table, row)
    if outcome == "done":
        assert response.status_code == 200, response.text
        assert len(response.json()) == 1
        if op == "select":
            assert after == before
        elif op == "update":
            assert after != before
        else:
            assert after == []
        return
    if outcome == "hidden":
        assert response.status_code == 200, response.text
        assert response.json() == []
    else:
        assert_refused(response, table, role, outcome)
    assert after == before, "a refused or filtered request must leave the row as it was"


def _check_insert(
    http: httpx.Client,
    db: psycopg.Connection[Any],
    world: World,
    table: str,
    role: str,
    outcome: str,
    headers: dict[str, str],
) -> None:
    owner_parents = world.parents[world.owner.id]
    attempts = [new_row(table, world.owner.id, owner_parents)]
    if role == "other_user" and table not in PARENTLESS:
        attempts.append(new_row(table, world.other.id, owner_parents))  # their own row on the owner's parents
    if role == "other_user" and table == "model_baselines":
        hung = new_row(table, world.other.id, owner_parents)
        attempts.append(hung | {"source": "job", "baseline_job_id": owner_parents["job"]})
    for row in attempts:
        response = http.post(f"/rest/v1/{table}", json=row, headers=headers | {"Prefer": "return=minimal"})
        stored = fetch(db, table, row)
        if outcome == "done":
            assert response.status_code == 201, response.text
            assert response.content == b"" and len(stored) == 1
        else:
            assert_refused(response, table, role, outcome)
            assert stored == [], "a refused insert must not leave a row"


CONFORMANCE_PREFIX = "conf_"
"""Tables and functions the conformance suite adds to the shared session stack; not part of our schema."""


def test_the_expectation_table_is_the_grant_table(db: psycopg.Connection[Any]) -> None:
    """``OWNER_CAN`` lists exactly the privileges ``authenticated`` holds (table- or column-level)."""
    rows = db.execute("""
        select table_name, privilege_type from information_schema.role_table_grants
         where table_schema = 'public' and grantee = 'authenticated'
        union
        select table_name, privilege_type from information_schema.role_column_grants
         where table_schema = 'public' and grantee = 'authenticated'
    """).fetchall()
    letters = {"SELECT": "S", "INSERT": "I", "UPDATE": "U", "DELETE": "D"}
    granted: dict[str, set[str]] = {}
    for table, privilege in rows:
        if privilege in letters and not table.startswith(CONFORMANCE_PREFIX):
            granted.setdefault(table, set()).add(letters[privilege])
    assert granted == {table: set(ops) for table, ops in OWNER_CAN.items()}


def test_every_public_table_is_in_the_matrix(db: psycopg.Connection[Any]) -> None:
    listed = db.execute("select tablename from pg_tables where schemaname = 'public'").fetchall()
    tables = {t for (t,) in listed if not t.startswith(CONFORMANCE_PREFIX)}
    assert tables == set(OWNER_CAN), "a new table needs its row in the matrix (and its grants and policies)"


# -- edges of the matrix that a cell cannot express ---------------------------------------------------------


def test_a_user_cannot_hand_their_row_to_someone_else(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], world: World
) -> None:
    row = new_row("datasets", world.owner.id, world.parents[world.owner.id])
    seed(db, "datasets", row)
    response = http.patch(
        "/rest/v1/datasets",
        params={"id": f"eq.{row['id']}"},
        json={"user_id": world.other.id},
        headers=user_headers(stack, world.owner),
    )
    assert_refused(response, "datasets", "owner", "denied")  # user_id is outside the column grant
    assert db.execute("select user_id::text from public.datasets where id = %s", (row["id"],)).fetchone() == (
        world.owner.id,
    )


@pytest.mark.parametrize("column", ["user_id", "attempt", "dataset_id", "base_model", "max_runtime_seconds"])
def test_job_columns_outside_the_grant_are_refused(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], world: World, column: str
) -> None:
    row = new_row("training_jobs", world.owner.id, world.parents[world.owner.id])
    seed(db, "training_jobs", row)
    value: Any = {"user_id": world.owner.id, "dataset_id": row["dataset_id"], "base_model": "x"}.get(column, 5)
    response = http.patch(
        "/rest/v1/training_jobs",
        params={"id": f"eq.{row['id']}"},
        json={column: value},
        headers=user_headers(stack, world.owner),
    )
    assert_refused(response, "training_jobs", "owner", "denied")


def test_a_running_job_cannot_be_deleted_by_its_owner(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], world: World
) -> None:
    row = new_row("training_jobs", world.owner.id, world.parents[world.owner.id])
    seed(db, "training_jobs", row)
    db.execute("update public.training_jobs set status = 'queued' where id = %s", (row["id"],))
    response = http.delete(
        "/rest/v1/training_jobs",
        params={"id": f"eq.{row['id']}"},
        headers=user_headers(stack, world.owner) | {"Prefer": "return=representation"},
    )
    assert response.status_code == 200 and response.json() == []
    assert len(fetch(db, "training_jobs", row)) == 1


def test_unfiltered_reads_show_a_user_only_their_own_rows(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], world: World
) -> None:
    for table in OWNER_CAN:
        seed(db, table, new_row(table, world.owner.id, world.parents[world.owner.id]))
        response = http.get(f"/rest/v1/{table}", params={"select": "user_id"}, headers=user_headers(stack, world.other))
        assert response.status_code == 200, response.text
        assert {r["user_id"] for r in response.json()} <= {world.other.id}, table


# -- functions ----------------------------------------------------------------------------------------------

FUNCTION_CALLS: dict[str, dict[str, Any]] = {
    "cleanup_expired_dataset_tokens": {},
    "redeem_download_token": {"token": "no-such-token"},
    "pod_get_job": {"job_id": str(uuid.UUID(int=0)), "job_token": "x"},
    "pod_heartbeat": {"job_id": str(uuid.UUID(int=0)), "job_token": "x"},
    "pod_set_status": {"job_id": str(uuid.UUID(int=0)), "job_token": "x", "status": "running"},
    "pod_log_event": {"job_id": str(uuid.UUID(int=0)), "job_token": "x", "level": "info", "kind": "k", "message": "m"},
    "pod_register_artifact": {
        "job_id": str(uuid.UUID(int=0)),
        "job_token": "x",
        "storage_path": "a/b/",
        "files": [],
        "size_bytes": 0,
        "sha256": None,
    },
    "ingest_metrics": {"job_id": str(uuid.UUID(int=0)), "job_token": "x", "points": []},
    "pod_report_bootstrap_failure": {"job_id": str(uuid.UUID(int=0)), "job_token": "x", "step": "s", "message": "m"},
    "run_start": {"job_id": str(uuid.UUID(int=0)), "job_token": "x"},
    "run_record_config": {"job_id": str(uuid.UUID(int=0)), "job_token": "x", "config": {"r": 8}},
    "run_cancel": {"job_id": str(uuid.UUID(int=0)), "job_token": "x"},
}
"""Every token-checked function in ``public``: anon may call them, and they then refuse a bad token."""

CONTROL_CALLS: dict[str, dict[str, Any]] = {
    "job_move": {"job_id": str(uuid.UUID(int=0)), "status": "queued"},
    "job_record_launch": {"job_id": str(uuid.UUID(int=0)), "pod_id": "p"},
    "job_set_token": {"job_id": str(uuid.UUID(int=0)), "token_hash": "0" * 64, "expires_at": "2030-01-01T00:00:00Z"},
    "job_account_cost": {"job_id": str(uuid.UUID(int=0))},
    "record_gate_result": {"job_id": str(uuid.UUID(int=0)), "model_name": "m"},
    "job_record_billing": {"job_id": str(uuid.UUID(int=0)), "billed_usd": 1},
}
"""The owner's (and the service's) control functions: anon may not call them; for a job that does not exist,
or is not the caller's, they answer one "not found"."""


def test_every_public_function_is_listed(db: psycopg.Connection[Any]) -> None:
    names = db.execute(
        "select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'public'"
    ).fetchall()
    assert {n for (n,) in names if not n.startswith(CONFORMANCE_PREFIX)} == set(FUNCTION_CALLS) | set(CONTROL_CALLS)


@pytest.mark.parametrize("function", sorted(CONTROL_CALLS))
@pytest.mark.parametrize("role", ["anon", "owner", "other_user", "service"])
def test_control_function_cell(
    stack: LocalSupabase, http: httpx.Client, world: World, function: str, role: str
) -> None:
    params = CONTROL_CALLS[function]
    if role == "other_user":  # the owner's real job, asked for by someone else
        params = params | {"job_id": world.parents[world.owner.id]["job"]}
    response = http.post(f"/rest/v1/rpc/{function}", json=params, headers=headers_for(stack, world, role))
    body = response.json()
    if role == "anon":
        assert response.status_code == 401 and body["code"] == "42501", response.text
        assert body["message"] == f"permission denied for function {function}"
    else:
        assert response.status_code == 404 and body["code"] == "PT404", response.text
        assert body["message"].endswith("not found (or not visible to this role)")


@pytest.mark.parametrize("function", sorted(FUNCTION_CALLS))
@pytest.mark.parametrize("role", ["anon", "owner", "service"])
def test_function_cell(stack: LocalSupabase, http: httpx.Client, world: World, function: str, role: str) -> None:
    response = http.post(
        f"/rest/v1/rpc/{function}", json=FUNCTION_CALLS[function], headers=headers_for(stack, world, role)
    )
    body = response.json()
    if function == "cleanup_expired_dataset_tokens":
        if role == "anon":
            assert response.status_code == 401 and body["code"] == "42501"
            assert body["message"] == "permission denied for function cleanup_expired_dataset_tokens"
        else:
            assert response.status_code == 200 and isinstance(body, int)
    elif function == "redeem_download_token":
        assert response.status_code == 400 and body["code"] == "LPT01"
    else:
        assert response.status_code == (401 if role == "anon" else 403), response.text
        assert body["code"] == "42501" and body["message"] == "job token is invalid, expired, or its job has ended"


@pytest.mark.parametrize(
    ("schema", "function", "args"),
    [
        ("lora_internal", "job_for_token", {"p_job_id": str(uuid.UUID(int=0)), "p_token": "x"}),
        ("lora_internal", "download_grant_allows", {"object_name": "x"}),
        ("lora_internal", "request_header", {"header_name": "x"}),
        ("auth", "uid", {}),
        ("storage", "foldername", {"name": "a/b"}),
    ],
)
def test_internal_schemas_are_not_reachable_over_http(
    stack: LocalSupabase, http: httpx.Client, schema: str, function: str, args: dict[str, Any]
) -> None:
    for headers in (anon_headers(stack), service_headers(stack)):
        response = http.post(f"/rest/v1/rpc/{function}", json=args, headers=headers | {"Content-Profile": schema})
        assert response.status_code == 406, response.text
        assert response.json()["code"] == "PGRST106"
        plain = http.post(f"/rest/v1/rpc/{function}", json=args, headers=headers)
        assert plain.status_code == 404 and plain.json()["code"] == "PGRST202"


# -- storage.objects: bucket x role x operation -------------------------------------------------------------

STORAGE_OPS = ("download", "upload", "overwrite", "list", "sign", "delete")
CONTENT_TYPE = {DATASETS: "application/jsonl", MODELS: "application/octet-stream"}
Call = Callable[[httpx.Client, dict[str, str], str, str], httpx.Response]


def _storage_call(op: str) -> Call:
    def upload(http: httpx.Client, headers: dict[str, str], bucket: str, key: str) -> httpx.Response:
        folder = key.split("/")[0]
        target = f"{folder}/{uuid.uuid4().hex}.bin"
        return http.post(f"/storage/v1/object/{bucket}/{target}", headers=headers | _ct(bucket), content=b"new")

    calls: dict[str, Call] = {
        "download": lambda http, h, b, k: http.get(f"/storage/v1/object/{b}/{k}", headers=h),
        "upload": upload,
        "overwrite": lambda http, h, b, k: http.put(f"/storage/v1/object/{b}/{k}", headers=h | _ct(b), content=b"new"),
        "list": lambda http, h, b, k: http.post(
            f"/storage/v1/object/list/{b}", headers=h, json={"prefix": k.rsplit("/", 1)[0]}
        ),
        "sign": lambda http, h, b, k: http.post(f"/storage/v1/object/sign/{b}/{k}", headers=h, json={"expiresIn": 60}),
        "delete": lambda http, h, b, k: http.delete(f"/storage/v1/object/{b}/{k}", headers=h),
    }
    return calls[op]


def _ct(bucket: str) -> dict[str, str]:
    return {"content-type": CONTENT_TYPE[bucket]}


STORAGE_REFUSAL = {
    "download": ("404", "NoSuchKey"),
    "upload": ("403", "AccessDenied"),
    "overwrite": ("403", "AccessDenied"),
    "sign": ("404", "NoSuchKey"),
    "delete": ("403", "AccessDenied"),
}
STORAGE_CELLS = [(b, r, o) for b in (DATASETS, MODELS) for r in ROLES for o in STORAGE_OPS]


@pytest.mark.parametrize(("bucket", "role", "op"), STORAGE_CELLS, ids=[f"{b}-{r}-{o}" for b, r, o in STORAGE_CELLS])
def test_storage_cell(stack: LocalSupabase, http: httpx.Client, world: World, bucket: str, role: str, op: str) -> None:
    """Objects under ``<owner id>/`` belong to the owner: the owner and the service role may do anything, anon
    and other users see nothing and change nothing (Storage hides unreadable objects as 404)."""
    key = f"{world.owner.id}/{uuid.uuid4().hex}/file.bin"
    original = b"original " + uuid.uuid4().hex.encode()
    stored = http.post(
        f"/storage/v1/object/{bucket}/{key}", headers=service_headers(stack) | _ct(bucket), content=original
    )
    assert stored.status_code == 200, stored.text
    allowed = role in ("owner", "service")
    response = _storage_call(op)(http, headers_for(stack, world, role), bucket, key)
    if op == "list":
        assert response.status_code == 200
        assert [o["name"] for o in response.json()] == (["file.bin"] if allowed else [])
    elif allowed:
        assert response.status_code == 200, response.text
        if op == "download":
            assert response.content == original
    else:
        status, code = STORAGE_REFUSAL[op]
        assert storage_error(response) == (400, status, code), response.text
    now = object_bytes(http, stack, bucket, key)
    if allowed and op == "overwrite":
        assert now == b"new"
    elif allowed and op == "delete":
        assert now is None
    else:
        assert now == original, "a refused request must leave the object as it was"
