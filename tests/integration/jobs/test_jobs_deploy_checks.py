"""``deploy`` refuses bad launch input before anything changes, ships exactly the wheel it says, and ``sync``
ends pods that never come up."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline import ConfigError
from lora_pipeline.backends._wheel import running_wheel
from lora_pipeline.backends.images import DEFAULT_IMAGE
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.resources._job_control import PROVISION_TIMEOUT
from lora_pipeline.types.jobs import JobStatus

SERVICE_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"


def backend_for(fake: Any) -> RunPodBackend:
    return RunPodBackend(
        fake.api_key, [RunPodOffer(gpu_type="A40")], sleep=lambda _: None, timeout=5, transport="graphql"
    )


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"image": "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"}, DEFAULT_IMAGE),
        ({"env": {"SUPABASE_SERVICE_ROLE_KEY": "x"}}, "service credentials"),
        ({"env": {"ANYTHING": SERVICE_JWT}}, "service-role key"),
        ({"env": {"A": "nul\x00byte"}}, "NUL"),
        ({"secrets": {"HF_TOKEN": "bad name!"}}, "RunPod secret"),
        ({"wheel": "missing.whl", "requirement": "lora-pipeline==1"}, "not both"),
        ({"wheel": "/nowhere/lora_pipeline-0.1.0-py3-none-any.whl"}, "does not exist"),
    ],
)
def test_bad_launch_input_is_refused_before_the_job_moves(
    owner: Any, fake_runpod: Any, options: dict[str, Any], says: str
) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40")
    with pytest.raises(ConfigError, match=says) as refused:
        lp.jobs.deploy(job.id, backend=backend_for(fake_runpod), **options)
    assert SERVICE_JWT not in str(refused.value)
    assert lp.jobs.retrieve(job.id).status is JobStatus.CREATED
    assert fake_runpod.calls == [], "nothing reaches RunPod"


def test_secrets_are_refused_for_a_backend_that_cannot_resolve_them(owner: Any, local_backend: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    with pytest.raises(ConfigError, match="cannot resolve"):
        lp.jobs.deploy(job.id, backend=local_backend, secrets={"HF_TOKEN": "hf_token"})
    assert lp.jobs.retrieve(job.id).status is JobStatus.CREATED


def test_a_prebuilt_wheel_is_shipped_byte_for_byte_into_the_jobs_folder(
    local_supabase: Any, owner: Any, fake_runpod: Any, tmp_path: Path
) -> None:
    user, lp, dataset = owner
    wheel = tmp_path / "lora_pipeline-0.1.0-py3-none-any.whl"
    wheel.write_bytes(running_wheel().content + b"")  # any valid lora-pipeline wheel, e.g. from `pip download`
    job = lp.jobs.deploy(
        lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend_for(fake_runpod), wheel=wheel
    )
    [create] = fake_runpod.calls_to("podFindAndDeployOnDemand")
    sent = {e["key"]: e["value"] for e in create.input["env"]}
    assert sent["LORA_WHEEL_OBJECT"] == f"{user.id}/{job.id}/_launch/{wheel.name}"
    assert sent["LORA_WHEEL_SHA256"] == hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert (
        create.input["allowedCudaVersions"] == ["12.8", "12.9", "13.0"] and create.input["imageName"] == DEFAULT_IMAGE
    )
    stored = httpx.get(
        f"{local_supabase.url}/storage/v1/object/lora-models/{sent['LORA_WHEEL_OBJECT']}",
        headers={"apikey": local_supabase.anon_key, "Authorization": f"Bearer {local_supabase.anon_key}",
                 "x-lora-job-id": job.id, "x-lora-job-token": sent["LORA_JOB_TOKEN"]},
    )  # fmt: skip
    assert stored.status_code == 200 and stored.content == wheel.read_bytes(), "the job token reads its own wheel"


def test_sync_ends_a_pod_that_never_came_up_after_the_provision_timeout(
    local_supabase: Any, owner: Any, fake_runpod: Any
) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod)
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend)
    [synced] = lp.jobs.sync(job.id, backend=backend)
    assert synced.status is JobStatus.PROVISIONING and fake_runpod.pods(), "not before the timeout"
    late = PROVISION_TIMEOUT + timedelta(minutes=1)
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute("alter table public.training_jobs disable trigger user")
        try:
            conn.execute("update public.training_jobs set updated_at = now() - %s where id = %s", (late, job.id))
        finally:
            conn.execute("alter table public.training_jobs enable trigger user")
    [synced] = lp.jobs.sync(job.id, backend=backend)
    assert (synced.status, synced.status_reason) == (JobStatus.FAILED, "provision_timeout")
    assert fake_runpod.pods() == [] and fake_runpod.calls_to("podTerminate")
