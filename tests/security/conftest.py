"""Shared pieces of the security suite (issue 9, part 3).

The suite: ``test_rls_http_matrix`` (every table, bucket and function x role x operation over HTTP),
``test_job_token_scope`` (what one job token opens, and everything it must not), ``test_token_oracles`` (no
answer or timing difference between kinds of wrong token), ``test_path_traversal`` (``..``, encoded slashes,
NUL bytes in every path parameter), ``test_oversized_bodies`` (413s without buffering), ``test_runpod_inputs``
(what reaches RunPod; the byte-for-byte property for env values and docker args is
tests/unit/runpod/test_runpod_escaping.py::test_any_env_and_docker_args_are_delivered_byte_for_byte) and
``test_secret_scan`` (a real job, then every log, row, error, repr and pod environment searched for secrets).

Most modules here build one "world" per module (two users, their datasets, jobs with known job tokens, stored
objects) and then try hundreds of requests against it. To keep the suite fast, those modules reach the
plugin's session stack through :func:`stack` instead of naming ``local_supabase``: the plugin resets the stack
before every test that names it, which would wipe a shared world. The world itself is built by a
function-scoped fixture that keeps it in :func:`module_cache`: function-scoped fixtures run after the
plugin's autouse reset (the first test to reach the stack may still trigger one), so the world is built after
that reset and survives for the rest of the module. Tests in such modules only create rows and objects with
fresh random ids and assert on those, so whatever other suites left behind cannot change their outcome.
Tests that need a clean stack (the end-to-end secret scan) name ``local_supabase`` directly.

Requests go through plain ``httpx`` with the headers the ``supabase`` client sends (``apikey`` plus
``Authorization: Bearer``), so each test can assert the exact status, error code and message.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline.local_supabase import LocalSupabase

DATASETS, MODELS = "lora-datasets", "lora-models"
TERMINAL = ("succeeded", "failed", "cancelled")
DENIED_TOKEN = "job token is invalid, expired, or its job has ended"


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> LocalSupabase:
    """The plugin's session stack, without the per-test reset that naming ``local_supabase`` triggers."""
    found: LocalSupabase = request.getfixturevalue("local_supabase")
    return found


@pytest.fixture(scope="module")
def module_cache() -> dict[str, Any]:
    """Worlds built once per module (see the module docstring for why not a module-scoped fixture)."""
    return {}


@pytest.fixture(scope="module")
def http(stack: LocalSupabase) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def db(stack: LocalSupabase) -> Iterator[psycopg.Connection[Any]]:
    """A superuser connection (autocommit) for seeding rows and reading back what really happened."""
    with stack.connect() as conn:
        yield conn


@dataclass(frozen=True)
class Person:
    """A signed-in user of the stack."""

    id: str
    email: str
    password: str
    access_token: str


def new_person(stack: LocalSupabase) -> Person:
    password = "pw-" + secrets.token_urlsafe(12)
    user = stack.create_user(f"sec-{uuid.uuid4().hex[:12]}@example.test", password)
    return Person(user.id, user.email, password, user.access_token)


def anon_headers(stack: LocalSupabase) -> dict[str, str]:
    """What a client holding only the anon key sends (the supabase client adds the key as bearer too)."""
    return {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.anon_key}"}


def user_headers(stack: LocalSupabase, person: Person) -> dict[str, str]:
    return {"apikey": stack.anon_key, "Authorization": f"Bearer {person.access_token}"}


def service_headers(stack: LocalSupabase) -> dict[str, str]:
    return {"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}"}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class PodJob:
    """A job whose token is known, with its dataset object stored in ``lora-datasets``."""

    id: str
    user_id: str
    token: str
    dataset_id: str
    dataset_path: str
    dataset_bytes: bytes

    @property
    def models_prefix(self) -> str:
        return f"{self.user_id}/{self.id}/"

    def headers(self, stack: LocalSupabase, token: str | None = None) -> dict[str, str]:
        """A pod's Storage headers: the anon key plus this job's id and (by default) its token."""
        return anon_headers(stack) | {"x-lora-job-id": self.id, "x-lora-job-token": token or self.token}


def seed_job(
    db: psycopg.Connection[Any],
    http: httpx.Client,
    stack: LocalSupabase,
    user_id: str,
    *,
    status: str = "running",
    expires: str = "1 hour",
) -> PodJob:
    """A dataset row + object and a job in ``status`` whose token hash is known (made as the superuser)."""
    token = secrets.token_urlsafe(32)
    path = f"{user_id}/{uuid.uuid4()}/train.jsonl"
    content = b'{"text": "' + uuid.uuid4().hex.encode() + b'"}\n'
    upload = http.post(
        f"/storage/v1/object/{DATASETS}/{path}",
        headers=service_headers(stack) | {"content-type": "application/jsonl"},
        content=content,
    )
    assert upload.status_code == 200, upload.text
    dataset_id = db.execute(
        "insert into public.datasets (user_id, name, storage_path, status) values (%s, %s, %s, 'ready') "
        "returning id::text",
        (user_id, f"sec-{uuid.uuid4().hex[:12]}", path),
    ).fetchone()[0]
    job_id = db.execute(
        "insert into public.training_jobs (user_id, dataset_id, base_model, status, status_reason, job_token_hash,"
        " job_token_expires_at) values (%s, %s, 'tiny', %s, %s, %s, now() + %s::interval) returning id::text",
        (
            user_id,
            dataset_id,
            status,
            "training_error" if status == "failed" else ("cancelled_by_user" if status == "cancelled" else None),
            sha256_hex(token),
            expires,
        ),
    ).fetchone()[0]
    return PodJob(job_id, user_id, token, dataset_id, path, content)


def rpc(
    http: httpx.Client, stack: LocalSupabase, function: str, args: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    """``POST /rest/v1/rpc/<function>`` with the anon key, as the pod program calls its functions."""
    return http.post(f"/rest/v1/rpc/{function}", headers=anon_headers(stack) | (headers or {}), json=args)


def storage_error(response: httpx.Response) -> tuple[int, str, str]:
    """(HTTP status, the ``statusCode`` Storage puts in its body, its ``code``)."""
    body = response.json()
    return response.status_code, str(body.get("statusCode")), str(body.get("code"))


def job_state(db: psycopg.Connection[Any], job_id: str) -> tuple[Any, ...]:
    """Everything a pod function could change about a job, to compare before and after a refused call."""
    return tuple(
        db.execute(
            "select j.status, j.status_reason, j.heartbeat_at, j.progress, j.error, j.updated_at,"
            " (select count(*) from public.job_events e where e.job_id = j.id),"
            " (select count(*) from public.metrics_points m where m.job_id = j.id),"
            " (select count(*) from public.model_artifacts a where a.job_id = j.id)"
            " from public.training_jobs j where j.id = %s",
            (job_id,),
        ).fetchone()
    )


def object_bytes(http: httpx.Client, stack: LocalSupabase, bucket: str, path: str) -> bytes | None:
    """The stored bytes of an object, read as the service role (``None`` when there is no such object)."""
    response = http.get(f"/storage/v1/object/{bucket}/{path}", headers=service_headers(stack))
    return response.content if response.status_code == 200 else None


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


def raw_request(
    stack: LocalSupabase,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    *,
    timeout: float = 10.0,
) -> RawResponse:
    """Send ``target`` byte for byte (``httpx`` would normalise ``..`` segments away) and read one response."""
    import socket

    port = int(stack.url.rsplit(":", 1)[1])
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return RawResponse(int(status_line.split(" ")[1]), parsed, payload)
