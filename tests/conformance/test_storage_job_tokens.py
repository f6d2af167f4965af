"""The project's header-reading Storage policies (sql/migrations 0005, 0006): a pod holding only the anon key
plus ``x-lora-job-id``/``x-lora-job-token`` may read its job's dataset object and write under
``lora-models/<user>/<job>/``, nothing else; a ``x-lora-download-grant`` lets anon sign one dataset URL.
These prove the gateway hands every request header to Postgres as ``request.headers`` (DESIGN §3, §9)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError
from tests.conformance.test_storage_support import new_user, uid

DATASETS, MODELS = "lora-datasets", "lora-models"
MODEL_TYPE = {"content-type": "application/octet-stream"}


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _job(target: Any, user_id: str, *, status: str = "running") -> tuple[str, str, str]:
    """(job id, job token, dataset path): a dataset row and a job whose token hash is known."""
    dataset_path = f"{user_id}/{uuid.uuid4().hex[:8]}.jsonl"
    [(dataset_id,)] = target.sql(
        "insert into public.datasets (user_id, name, storage_path, status) "
        "values (%s, %s, %s, 'ready') returning id::text",
        (user_id, f"conf-{uuid.uuid4().hex[:8]}", dataset_path),  # dataset names are unique per user (0009)
    )
    token = secrets.token_urlsafe(32)
    [(job_id,)] = target.sql(
        "insert into public.training_jobs (user_id, dataset_id, base_model, status, status_reason, "
        "job_token_hash, job_token_expires_at) values (%s, %s, 'base', %s, %s, %s, now() + interval '1 hour') "
        "returning id::text",
        (user_id, dataset_id, status, "training_error" if status == "failed" else None, _sha256(token)),
    )
    return job_id, token, dataset_path


def _pod(sb: Any, headers: dict[str, str]) -> Any:
    """A client as the pod builds it: the anon key and the job headers on every request."""
    from supabase import AsyncClient, Client
    from supabase.lib.client_options import AsyncClientOptions, SyncClientOptions

    if sb.flavour == "sync":
        return Client(sb.target.url, sb.target.anon_key, SyncClientOptions(headers=headers, auto_refresh_token=False))
    return AsyncClient(sb.target.url, sb.target.anon_key, AsyncClientOptions(headers=headers, auto_refresh_token=False))


def _status(sb: Any, call: Any, client: Any) -> str | None:
    """``None`` on success, else the Storage error's status."""
    try:
        sb.run(call, client)
    except StorageApiError as error:
        return str(error.status)
    return None


@pytest.fixture
def pod_job(sb: Any) -> dict[str, Any]:
    session = new_user(sb.target)
    user_id = uid(session)
    job_id, token, dataset_path = _job(sb.target, user_id)
    service = sb.service
    sb.run(
        lambda c: c.storage.from_(DATASETS).upload(
            dataset_path, b'{"text": "x"}\n', {"content-type": "application/jsonl"}
        ),
        service,
    )
    return {"user_id": user_id, "job_id": job_id, "token": token, "dataset": dataset_path, "service": service}


def test_job_token_reads_its_dataset_and_writes_under_its_models_prefix(sb: Any, pod_job: dict[str, Any]) -> None:
    user_id, job_id = pod_job["user_id"], pod_job["job_id"]
    pod = _pod(sb, {"x-lora-job-id": job_id, "x-lora-job-token": pod_job["token"]})
    assert sb.run(lambda c: c.storage.from_(DATASETS).download(pod_job["dataset"]), pod) == b'{"text": "x"}\n'
    adapter = f"{user_id}/{job_id}/adapter.safetensors"
    sb.run(lambda c: c.storage.from_(MODELS).upload(adapter, b"v1", MODEL_TYPE), pod)
    sb.run(lambda c: c.storage.from_(MODELS).upload(adapter, b"v2", MODEL_TYPE | {"upsert": "true"}), pod)
    assert sb.run(lambda c: c.storage.from_(MODELS).download(adapter), pod) == b"v2"
    assert sb.target.sql(
        "select owner, owner_id from storage.objects where bucket_id = %s and name = %s", (MODELS, adapter)
    ) == [(None, None)]  # the anon key has no sub


def test_job_token_cannot_reach_anything_else(sb: Any, pod_job: dict[str, Any]) -> None:
    user_id, job_id, service = pod_job["user_id"], pod_job["job_id"], pod_job["service"]
    other_job, _, other_dataset = _job(sb.target, user_id)
    sb.run(
        lambda c: c.storage.from_(DATASETS).upload(other_dataset, b"{}", {"content-type": "application/jsonl"}), service
    )
    pod = _pod(sb, {"x-lora-job-id": job_id, "x-lora-job-token": pod_job["token"]})
    assert _status(sb, lambda c: c.storage.from_(DATASETS).download(other_dataset), pod) == "404"
    for key in (f"{user_id}/{other_job}/adapter.bin", f"{user_id}/adapter.bin", f"{uuid.uuid4()}/{job_id}/a.bin"):
        assert _status(sb, lambda c, key=key: c.storage.from_(MODELS).upload(key, b"x", MODEL_TYPE), pod) == "403"
    evil = f"{user_id}/evil.jsonl"
    upload_evil = lambda c: c.storage.from_(DATASETS).upload(evil, b"{}", {"content-type": "application/jsonl"})  # noqa: E731
    assert _status(sb, upload_evil, pod) == "403"


@pytest.mark.parametrize("headers", ["wrong-token", "no-headers", "ended-job"])
def test_wrong_missing_or_ended_job_token_gets_nothing(sb: Any, pod_job: dict[str, Any], headers: str) -> None:
    user_id, job_id = pod_job["user_id"], pod_job["job_id"]
    if headers == "ended-job":
        sb.target.sql(
            "update public.training_jobs set status = 'failed', status_reason = 'training_error' where id = %s",
            (job_id,),
        )
    sent = {"no-headers": {}, "wrong-token": {"x-lora-job-id": job_id, "x-lora-job-token": "guess"}}.get(
        headers, {"x-lora-job-id": job_id, "x-lora-job-token": pod_job["token"]}
    )
    pod = _pod(sb, sent)
    assert _status(sb, lambda c: c.storage.from_(DATASETS).download(pod_job["dataset"]), pod) == "404"
    adapter = f"{user_id}/{job_id}/adapter.bin"
    assert _status(sb, lambda c: c.storage.from_(MODELS).upload(adapter, b"x", MODEL_TYPE), pod) == "403"


def test_download_grant_header_lets_anon_sign_exactly_that_dataset(sb: Any, pod_job: dict[str, Any]) -> None:
    user_id, path = pod_job["user_id"], pod_job["dataset"]
    grant = secrets.token_hex(16)
    sb.target.sql(
        "insert into public.dataset_download_tokens (user_id, dataset_id, token_hash, expires_at, used_at, "
        "grant_hash, grant_expires_at) select %s, d.id, %s, now() + interval '1 hour', now(), %s, "
        "now() + interval '2 minutes' from public.datasets d where d.storage_path = %s",
        (user_id, _sha256(secrets.token_hex(8)), _sha256(grant), path),
    )
    with_grant = _pod(sb, {"x-lora-download-grant": grant})
    signed = sb.run(lambda c: c.storage.from_(DATASETS).create_signed_url(path, 60), with_grant)
    assert httpx.get(signed["signedURL"]).content == b'{"text": "x"}\n'
    assert _status(sb, lambda c: c.storage.from_(DATASETS).create_signed_url(path, 60), _pod(sb, {})) == "404"
