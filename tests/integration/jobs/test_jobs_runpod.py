"""Jobs on the RunPod backend against the fake RunPod server (the real runpod SDK on the wire)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lora_pipeline import CapacityError
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.types.jobs import JobStatus

DOCUMENTED_ENV = {
    "LORA_JOB_ID",
    "LORA_JOB_TOKEN",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "LORA_PIPELINE_VERSION",
    "LORA_BOOTSTRAP_B64",
}


def backend_for(fake: Any, *offers: str) -> RunPodBackend:
    return RunPodBackend(
        fake.api_key, [RunPodOffer(gpu_type=o) for o in offers or ("A40",)], sleep=lambda _: None, timeout=5
    )


def run_container(fake: Any, pod_id: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """What the pod's container runs after the bootstrap installed the package: the pod program."""
    env = {
        **fake.pod_env(pod_id),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LORA_TRAINER": "selftest",
        "LORA_WORK_DIR": str(tmp_path / "work"),
        "LORA_HEARTBEAT_SECONDS": "0.5",
    }
    return subprocess.run(
        [sys.executable, "-m", "lora_pipeline.pod", "run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_runpod_job_runs_reports_and_terminates_its_own_pod(
    local_supabase: Any, owner: Any, fake_runpod: Any, tmp_path: Path
) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod)
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40", name="on-runpod")
    job = lp.jobs.deploy(job.id, backend=backend)
    assert job.status is JobStatus.PROVISIONING and job.backend == "runpod" and job.cost_per_hour
    [create] = fake_runpod.calls_to("podFindAndDeployOnDemand")
    sent_env = {e["key"]: e["value"] for e in create.input["env"]}
    assert set(sent_env) == DOCUMENTED_ENV
    assert local_supabase.service_role_key not in sent_env.values()
    assert create.input["name"] == f"lp-{job.id}-1" and create.input["terminateAfter"]
    pod_env = fake_runpod.pod_env(job.pod_id)
    assert local_supabase.service_role_key not in pod_env.values()
    finished = run_container(fake_runpod, job.pod_id, tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    job = lp.jobs.wait_for_completion(job.id, backend=backend, timeout=30, poll_interval=0.2, progress=None)
    assert job.status is JobStatus.SUCCEEDED
    assert fake_runpod.pod(job.pod_id) is None or str(fake_runpod.pod(job.pod_id).phase).lower().endswith("terminated")
    terminations = fake_runpod.calls_to("podTerminate")
    assert terminations and terminations[0].api_key != fake_runpod.api_key, "the pod must use its own pod-scoped key"
    assert len(lp.metrics.history(job.id)) == 12 and lp.artifacts.list(job_id=job.id)


def test_capacity_failover_then_success_on_the_next_offer(owner: Any, fake_runpod: Any) -> None:
    _, lp, dataset = owner
    fake_runpod.script("podFindAndDeployOnDemand", ["capacity_error", "capacity_null"])
    backend = backend_for(fake_runpod, "A40", "L40S", "A100_80GB")
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=backend)
    assert job.status is JobStatus.PROVISIONING and job.gpu_type == "A100_80GB"
    tried = [c.input["gpuTypeId"] for c in fake_runpod.calls_to("podFindAndDeployOnDemand")]
    assert tried == ["NVIDIA A40", "NVIDIA L40S", "NVIDIA A100 80GB PCIe"]


def test_no_capacity_anywhere_fails_the_job_with_no_capacity(owner: Any, fake_runpod: Any) -> None:
    _, lp, dataset = owner
    fake_runpod.script("podFindAndDeployOnDemand", ["capacity_error"] * 20)
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40")
    with pytest.raises(CapacityError):
        lp.jobs.deploy(job.id, backend=backend_for(fake_runpod))
    job = lp.jobs.retrieve(job.id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "no_capacity")
    assert fake_runpod.pods() == []


def test_cancel_while_provisioning_terminates_the_pod(owner: Any, fake_runpod: Any) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod)
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=backend)
    job = lp.jobs.cancel(job.id, backend=backend)
    assert job.status is JobStatus.CANCELLED
    assert fake_runpod.pods() == [] and fake_runpod.calls_to("podTerminate")


def test_reap_terminates_only_pods_whose_job_ended_or_went_silent(
    local_supabase: Any, owner: Any, fake_runpod: Any
) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod)
    live = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=backend)
    ended = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=backend)
    silent = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40").id, backend=backend)
    stray = backend.create_pod(name="lp-00000000-0000-0000-0000-000000000000-1", image="x", gpu_type="A40", env={})
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute("update public.training_jobs set heartbeat_at = now() where id = %s", (live.id,))
        conn.execute(
            "update public.training_jobs set status = 'failed', status_reason = 'training_error' where id = %s",
            (ended.id,),
        )
        conn.execute(
            "update public.training_jobs set heartbeat_at = now() - interval '1 hour' where id = %s", (silent.id,)
        )
    condemned = {h.pod_id for h in lp.jobs.reap(backend=backend)}
    assert condemned == {ended.pod_id, silent.pod_id, stray["id"]}
    assert [p.id for p in fake_runpod.pods()] == [live.pod_id]
