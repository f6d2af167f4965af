"""What the job token of job X opens, tried action by action (DESIGN §3).

Allowed, with the anon key and X's token: the pod functions for X (``pod_get_job``, ``pod_heartbeat``,
``pod_set_status`` with pod-side states, ``pod_log_event``, ``ingest_metrics``, ``pod_register_artifact`` under
X's prefix), reading X's dataset object, writing under ``lora-models/<user>/<X>/``. Everything else is tried
here and must be refused without changing anything: the functions for another job (same user or not), an
artifact path outside the prefix, non-pod states, other objects of the same user, other users' objects,
writes anywhere else (plain, upsert, TUS, copy, move), deletes, bucket settings, the tables themselves, the
token used as a JWT, and the token of a job that ended, expired or was re-issued.

tests/conformance/test_storage_job_tokens.py pins the header plumbing with a few Storage cases and
tests/integration/metrics/test_ingest.py the reporter's view of a foreign job; this module is the full matrix.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline import LoraPipeline, Role
from lora_pipeline.local_supabase import LocalSupabase

from .conftest import (
    DATASETS,
    DENIED_TOKEN,
    MODELS,
    TERMINAL,
    Person,
    PodJob,
    anon_headers,
    job_state,
    new_person,
    object_bytes,
    rpc,
    seed_job,
    service_headers,
    storage_error,
)

POD_FUNCTIONS = (
    "pod_get_job",
    "pod_heartbeat",
    "pod_set_status",
    "pod_log_event",
    "pod_register_artifact",
    "ingest_metrics",
)
OCTET = {"content-type": "application/octet-stream"}


def rpc_args(function: str, target: PodJob, token: str) -> dict[str, Any]:
    """Arguments of a pod function call about ``target`` presenting ``token``."""
    extra: dict[str, dict[str, Any]] = {
        "pod_get_job": {},
        "pod_heartbeat": {"progress": {"step": 1}},
        "pod_set_status": {"status": "failed", "reason": "training_error", "message": "stop"},
        "pod_log_event": {"level": "error", "kind": "pod", "message": "hello"},
        "pod_register_artifact": {
            "storage_path": target.models_prefix,
            "files": [],
            "size_bytes": 0,
            "sha256": None,
        },
        "ingest_metrics": {"points": [{"step": 1, "train_loss": 1.0}]},
    }
    return {"job_id": target.id, "job_token": token, **extra[function]}


@dataclass
class Scope:
    alice: Person
    bob: Person
    x: PodJob
    """The job whose token is used."""
    y: PodJob
    """Another job of the same user."""
    z: PodJob
    """A job of another user."""
    stray: str
    """An object in Alice's dataset folder that belongs to no job."""
    sibling_model: str
    """An adapter file already stored under Y's prefix."""


@pytest.fixture
def scope(stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], module_cache: dict[str, Any]) -> Scope:
    if "scope" not in module_cache:
        alice, bob = new_person(stack), new_person(stack)
        x, y, z = (
            seed_job(db, http, stack, alice.id),
            seed_job(db, http, stack, alice.id),
            seed_job(db, http, stack, bob.id),
        )
        stray = f"{alice.id}/stray/notes.jsonl"
        sibling_model = f"{y.models_prefix}adapter.safetensors"
        for bucket, path in ((DATASETS, stray), (MODELS, sibling_model)):
            stored = http.post(
                f"/storage/v1/object/{bucket}/{path}",
                headers=service_headers(stack) | {"content-type": "application/json"},
                content=b"{}",
            )
            assert stored.status_code == 200, stored.text
        module_cache["scope"] = Scope(alice, bob, x, y, z, stray, sibling_model)
    found: Scope = module_cache["scope"]
    return found


def objects_of(db: psycopg.Connection[Any], *users: str) -> set[tuple[str, str, str]]:
    """(bucket, name, version) of every object in these users' folders: what a refused write must not change."""
    rows = db.execute(
        "select bucket_id, name, version from storage.objects where split_part(name, '/', 1) = any(%s)",
        (list(users),),
    ).fetchall()
    return {(str(b), str(n), str(v)) for b, n, v in rows}


# -- what the token is for ------------------------------------------------------------------------------------


def test_the_token_opens_exactly_its_documented_actions(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope
) -> None:
    """The positive control of this module: without it every refusal below could be a broken token."""
    x, token = scope.x, scope.x.token
    config = rpc(http, stack, "pod_get_job", rpc_args("pod_get_job", x, token)).json()
    assert config["models_prefix"] == x.models_prefix and config["dataset"]["path"] == x.dataset_path
    assert rpc(http, stack, "pod_heartbeat", rpc_args("pod_heartbeat", x, token)).json()["status"] == "running"
    assert rpc(http, stack, "ingest_metrics", rpc_args("ingest_metrics", x, token)).json() == 1
    assert rpc(http, stack, "pod_log_event", rpc_args("pod_log_event", x, token)).status_code == 204
    assert rpc(http, stack, "pod_register_artifact", rpc_args("pod_register_artifact", x, token)).status_code == 200
    running = rpc(http, stack, "pod_set_status", {"job_id": x.id, "job_token": token, "status": "running"})
    assert running.json() == "running"
    read = http.get(f"/storage/v1/object/{DATASETS}/{x.dataset_path}", headers=x.headers(stack))
    assert read.status_code == 200 and read.content == x.dataset_bytes
    adapter = f"{x.models_prefix}adapter.safetensors"
    headers = x.headers(stack) | OCTET
    assert http.post(f"/storage/v1/object/{MODELS}/{adapter}", headers=headers, content=b"v1").status_code == 200
    upsert = http.post(f"/storage/v1/object/{MODELS}/{adapter}", headers=headers | {"x-upsert": "true"}, content=b"v2")
    assert upsert.status_code == 200 and object_bytes(http, stack, MODELS, adapter) == b"v2"


# -- pod functions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["same_user_job", "other_user_job"])
@pytest.mark.parametrize("function", POD_FUNCTIONS)
def test_the_token_of_x_opens_no_function_of_another_job(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope, function: str, target: str
) -> None:
    victim = scope.y if target == "same_user_job" else scope.z
    before = job_state(db, victim.id)
    response = rpc(http, stack, function, rpc_args(function, victim, scope.x.token))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "42501" and response.json()["message"] == DENIED_TOKEN
    assert job_state(db, victim.id) == before


@pytest.mark.parametrize(
    "path",
    [
        "{alice}/{y}/",
        "{alice}/{y}/adapter.safetensors",
        "{bob}/{x}/",
        "{alice}/{x}/../{y}/",
        "{alice}/{x}",
        "{alice}/",
        "",
        "/{alice}/{x}/",
        "lora-models/{alice}/{x}/",
    ],
)
def test_artifacts_can_only_be_registered_under_the_jobs_prefix(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope, path: str
) -> None:
    storage_path = path.format(alice=scope.alice.id, bob=scope.bob.id, x=scope.x.id, y=scope.y.id)
    before = job_state(db, scope.x.id)
    args = rpc_args("pod_register_artifact", scope.x, scope.x.token) | {"storage_path": storage_path}
    response = rpc(http, stack, "pod_register_artifact", args)
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["code"] == "42501"
    assert body["message"] == f"artifacts of this job must live under lora-models/{scope.x.models_prefix}"
    assert job_state(db, scope.x.id) == before


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("created", "22023"),
        ("validating", "22023"),
        ("queued", "22023"),
        ("provisioning", "22023"),
        ("cancelling", "22023"),
        ("anything", "22023"),
        ("cancelled", "LP001"),
    ],
)
def test_a_pod_can_only_report_pod_side_states(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope, status: str, code: str
) -> None:
    before = job_state(db, scope.x.id)
    response = rpc(http, stack, "pod_set_status", {"job_id": scope.x.id, "job_token": scope.x.token, "status": status})
    assert response.status_code == 400 and response.json()["code"] == code, response.text
    assert job_state(db, scope.x.id) == before


# -- storage ------------------------------------------------------------------------------------------------

Action = Callable[[httpx.Client, dict[str, str], Scope], httpx.Response]


def _tus_create(bucket: str, name: str) -> Action:
    def create(http: httpx.Client, headers: dict[str, str], scope: Scope) -> httpx.Response:
        object_name = name.format(alice=scope.alice.id, bob=scope.bob.id, x=scope.x.id, y=scope.y.id)
        metadata = ",".join(
            f"{k} {base64.b64encode(v.encode()).decode()}"
            for k, v in (("bucketName", bucket), ("objectName", object_name))
        )
        return http.post(
            "/storage/v1/upload/resumable",
            headers=headers | {"tus-resumable": "1.0.0", "upload-length": "1", "upload-metadata": metadata},
        )

    return create


def _upload(bucket: str, name: str, *, method: str = "POST", upsert: bool = False) -> Action:
    def upload(http: httpx.Client, headers: dict[str, str], scope: Scope) -> httpx.Response:
        key = name.format(
            alice=scope.alice.id,
            bob=scope.bob.id,
            x=scope.x.id,
            y=scope.y.id,
            z=scope.z.id,
            x_dataset=scope.x.dataset_path,
        )
        extra = OCTET | ({"x-upsert": "true"} if upsert else {})
        if bucket == DATASETS:
            extra["content-type"] = "application/jsonl"
        return http.request(method, f"/storage/v1/object/{bucket}/{key}", headers=headers | extra, content=b"{}")

    return upload


STORAGE_REFUSALS: dict[str, tuple[Action, tuple[int, str, str]]] = {
    "read the same user's other dataset": (
        lambda http, h, s: http.get(f"/storage/v1/object/{DATASETS}/{s.y.dataset_path}", headers=h),
        (400, "404", "NoSuchKey"),
    ),
    "read another user's dataset": (
        lambda http, h, s: http.get(f"/storage/v1/object/{DATASETS}/{s.z.dataset_path}", headers=h),
        (400, "404", "NoSuchKey"),
    ),
    "read an object of the user no job uses": (
        lambda http, h, s: http.get(f"/storage/v1/object/{DATASETS}/{s.stray}", headers=h),
        (400, "404", "NoSuchKey"),
    ),
    "read another job's adapter": (
        lambda http, h, s: http.get(f"/storage/v1/object/{MODELS}/{s.sibling_model}", headers=h),
        (400, "404", "NoSuchKey"),
    ),
    "sign a URL for another job's dataset": (
        lambda http, h, s: http.post(
            f"/storage/v1/object/sign/{DATASETS}/{s.y.dataset_path}", headers=h, json={"expiresIn": 60}
        ),
        (400, "404", "NoSuchKey"),
    ),
    "write under another job of the user": (_upload(MODELS, "{alice}/{y}/adapter.bin"), (400, "403", "AccessDenied")),
    "overwrite another job's adapter": (
        _upload(MODELS, "{alice}/{y}/adapter.safetensors", upsert=True),
        (400, "403", "AccessDenied"),
    ),
    "write under another user's job": (_upload(MODELS, "{bob}/{z}/adapter.bin"), (400, "403", "AccessDenied")),
    "write its job id under another user": (_upload(MODELS, "{bob}/{x}/adapter.bin"), (400, "403", "AccessDenied")),
    "write at the user's root": (_upload(MODELS, "{alice}/adapter.bin"), (400, "403", "AccessDenied")),
    "write a file named like its folder": (_upload(MODELS, "{alice}/{x}"), (400, "403", "AccessDenied")),
    "climb out of its folder": (_upload(MODELS, "{alice}/{x}/..%2F{y}/a.bin"), (400, "400", "InvalidKey")),
    "write into the datasets bucket": (_upload(DATASETS, "{alice}/{x}/evil.jsonl"), (400, "403", "AccessDenied")),
    "overwrite its own dataset": (_upload(DATASETS, "{x_dataset}", method="PUT"), (400, "403", "AccessDenied")),
    "upsert its own dataset": (_upload(DATASETS, "{x_dataset}", upsert=True), (400, "403", "AccessDenied")),
    "delete its own dataset": (
        lambda http, h, s: http.delete(f"/storage/v1/object/{DATASETS}/{s.x.dataset_path}", headers=h),
        (400, "403", "AccessDenied"),
    ),
    "copy another job's dataset into its folder": (
        lambda http, h, s: http.post(
            "/storage/v1/object/copy",
            headers=h,
            json={
                "bucketId": DATASETS,
                "sourceKey": s.y.dataset_path,
                "destinationBucket": MODELS,
                "destinationKey": f"{s.x.models_prefix}stolen.jsonl",
            },
        ),
        (400, "404", "NoSuchKey"),
    ),
    "move another job's adapter into its folder": (
        lambda http, h, s: http.post(
            "/storage/v1/object/move",
            headers=h,
            json={"bucketId": MODELS, "sourceKey": s.sibling_model, "destinationKey": f"{s.x.models_prefix}moved.bin"},
        ),
        (400, "404", "NoSuchKey"),
    ),
    "empty the models bucket": (
        lambda http, h, s: http.post(f"/storage/v1/bucket/{MODELS}/empty", headers=h),
        (400, "404", "NoSuchBucket"),
    ),
    "make the models bucket public": (
        lambda http, h, s: http.put(f"/storage/v1/bucket/{MODELS}", headers=h, json={"public": True}),
        (400, "404", "NoSuchBucket"),
    ),
    "create a bucket": (
        lambda http, h, s: http.post("/storage/v1/bucket", headers=h, json={"name": f"pod-{uuid.uuid4().hex[:8]}"}),
        (400, "403", "AccessDenied"),
    ),
}


@pytest.mark.parametrize("action", list(STORAGE_REFUSALS))
def test_the_token_of_x_opens_nothing_else_in_storage(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope, action: str
) -> None:
    call, refusal = STORAGE_REFUSALS[action]
    before = objects_of(db, scope.alice.id, scope.bob.id)
    buckets_before = db.execute("select id, public from storage.buckets order by id").fetchall()
    response = call(http, scope.x.headers(stack), scope)
    assert storage_error(response) == refusal, response.text
    assert objects_of(db, scope.alice.id, scope.bob.id) == before
    assert db.execute("select id, public from storage.buckets order by id").fetchall() == buckets_before


@pytest.mark.parametrize("name", ["{alice}/{y}/adapter.bin", "{bob}/{x}/adapter.bin", "{alice}/adapter.bin"])
def test_resumable_uploads_obey_the_same_prefix(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope, name: str
) -> None:
    before = objects_of(db, scope.alice.id, scope.bob.id)
    response = _tus_create(MODELS, name)(http, scope.x.headers(stack), scope)
    assert response.status_code == 403, response.text
    assert response.text == "new row violates row-level security policy"
    assert objects_of(db, scope.alice.id, scope.bob.id) == before


def test_a_pod_lists_only_what_it_may_read(stack: LocalSupabase, http: httpx.Client, scope: Scope) -> None:
    headers = scope.x.headers(stack)
    mine = http.post(f"/storage/v1/object/list/{DATASETS}", headers=headers, json={"prefix": scope.alice.id})
    assert [o["name"] for o in mine.json()] == [scope.x.dataset_path.split("/")[1]]
    for prefix in (scope.y.dataset_path.rsplit("/", 1)[0], scope.bob.id, f"{scope.alice.id}/stray"):
        listed = http.post(f"/storage/v1/object/list/{DATASETS}", headers=headers, json={"prefix": prefix})
        assert listed.status_code == 200 and listed.json() == [], prefix
    sibling = http.post(f"/storage/v1/object/list/{MODELS}", headers=headers, json={"prefix": scope.y.models_prefix})
    assert sibling.json() == []


# -- the tables themselves ----------------------------------------------------------------------------------

TABLES = (
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


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "DELETE"])
@pytest.mark.parametrize("table", TABLES)
def test_token_headers_open_no_table(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope, table: str, method: str
) -> None:
    """Storage reads the job headers; PostgREST does not: with them the anon key still has no table privilege."""
    before = job_state(db, scope.x.id)
    body = {"user_id": scope.alice.id} if method in ("POST", "PATCH") else None
    params = {"user_id": f"eq.{scope.alice.id}"} if method != "POST" else {}
    response = http.request(method, f"/rest/v1/{table}", params=params, json=body, headers=scope.x.headers(stack))
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "42501" and response.json()["message"] == f"permission denied for table {table}"
    assert job_state(db, scope.x.id) == before


def test_the_token_is_not_a_jwt(stack: LocalSupabase, http: httpx.Client, scope: Scope) -> None:
    as_bearer = {"apikey": stack.anon_key, "Authorization": f"Bearer {scope.x.token}"}
    rest = http.get("/rest/v1/training_jobs", headers=as_bearer)
    assert rest.status_code == 401 and rest.json()["code"] == "PGRST301"
    read = http.get(f"/storage/v1/object/authenticated/{DATASETS}/{scope.x.dataset_path}", headers=as_bearer)
    assert storage_error(read) == (400, "403", "AccessDenied") and read.json()["message"] == "Invalid Compact JWS"
    as_key = http.get("/rest/v1/training_jobs", headers={"apikey": scope.x.token})
    assert as_key.status_code == 401 and as_key.json()["message"] == "Invalid API key"


def test_cleanup_and_redeem_functions_ignore_the_token(stack: LocalSupabase, http: httpx.Client, scope: Scope) -> None:
    headers = {"x-lora-job-id": scope.x.id, "x-lora-job-token": scope.x.token}
    cleanup = rpc(http, stack, "cleanup_expired_dataset_tokens", {}, headers)
    assert cleanup.status_code == 401 and cleanup.json()["code"] == "42501"
    redeem = rpc(http, stack, "redeem_download_token", {"token": scope.x.token}, headers)
    assert redeem.status_code == 400 and redeem.json()["code"] == "LPT01"


# -- dead tokens --------------------------------------------------------------------------------------------


def _rotated_job(stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope) -> PodJob:
    """A running job whose owner issued a new token with ``lp.jobs.issue_token``: the old token is dead."""
    job = seed_job(db, http, stack, scope.alice.id)
    owner = LoraPipeline(url=stack.url, anon_key=stack.anon_key, access_token=scope.alice.access_token, role=Role.USER)
    try:
        fresh = owner.jobs.issue_token(job.id)
    finally:
        owner.close()
    assert fresh.token != job.token
    assert rpc(http, stack, "pod_heartbeat", {"job_id": job.id, "job_token": fresh.token}).status_code == 200
    return job


@pytest.mark.parametrize("state", [*TERMINAL, "expired", "reissued"])
def test_a_dead_token_opens_nothing(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope, state: str
) -> None:
    if state == "reissued":
        job = _rotated_job(stack, http, db, scope)
    elif state == "expired":
        job = seed_job(db, http, stack, scope.alice.id, expires="-1 second")
    else:
        job = seed_job(db, http, stack, scope.alice.id, status=state)
    before = job_state(db, job.id)
    for function in POD_FUNCTIONS:
        response = rpc(http, stack, function, rpc_args(function, job, job.token))
        if function == "pod_get_job" and state in TERMINAL:
            # A restarted container of an ended job learns that it ended, and nothing else.
            assert response.json() == {"id": job.id, "status": state, "status_reason": before[1]}
            continue
        assert response.status_code == 401, (function, response.text)
        assert response.json()["message"] == DENIED_TOKEN, function
    headers = job.headers(stack)
    read = http.get(f"/storage/v1/object/{DATASETS}/{job.dataset_path}", headers=headers)
    assert storage_error(read) == (400, "404", "NoSuchKey")
    write = http.post(f"/storage/v1/object/{MODELS}/{job.models_prefix}a.bin", headers=headers | OCTET, content=b"x")
    assert storage_error(write) == (400, "403", "AccessDenied")
    assert job_state(db, job.id) == before
    assert object_bytes(http, stack, MODELS, f"{job.models_prefix}a.bin") is None


def test_ending_a_job_kills_its_token_at_once(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], scope: Scope
) -> None:
    """The pod's own last word (``succeeded``) is the last thing its token may do."""
    job = seed_job(db, http, stack, scope.alice.id)
    done = rpc(http, stack, "pod_set_status", {"job_id": job.id, "job_token": job.token, "status": "succeeded"})
    assert done.json() == "succeeded"
    again = rpc(http, stack, "pod_heartbeat", rpc_args("pod_heartbeat", job, job.token))
    assert again.status_code == 401 and again.json()["message"] == DENIED_TOKEN
    read = http.get(f"/storage/v1/object/{DATASETS}/{job.dataset_path}", headers=job.headers(stack))
    assert storage_error(read) == (400, "404", "NoSuchKey")


def test_no_token_at_all_opens_nothing(stack: LocalSupabase, http: httpx.Client, scope: Scope) -> None:
    for headers in (anon_headers(stack), anon_headers(stack) | {"x-lora-job-id": scope.x.id}):
        read = http.get(f"/storage/v1/object/{DATASETS}/{scope.x.dataset_path}", headers=headers)
        assert storage_error(read) == (400, "404", "NoSuchKey")
    for token in ("", None):
        response = rpc(http, stack, "pod_heartbeat", {"job_id": scope.x.id, "job_token": token})
        assert response.status_code == 401 and response.json()["message"] == DENIED_TOKEN
