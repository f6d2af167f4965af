"""RunPod failing for a whole deploy (the fake RunPod server, the real runpod SDK on the wire): bounded retries,
a typed error, the job failed with a reason, and no pod left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline import RateLimited, ServiceUnavailable, Timeout
from lora_pipeline._retry import MAX_DELAY
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.types.jobs import JobStatus

from .conftest import chat_dataset

CREATE = "podFindAndDeployOnDemand"
OPERATIONS = ("myself", CREATE, "pod", "gpuTypes", "podTerminate")
MAX_ATTEMPTS = 3


@pytest.fixture
def owner(user_factory: Any, tmp_path: Path) -> tuple[Any, Any]:
    """(user client, ready dataset)."""
    _, lp = user_factory()
    return lp, lp.datasets.upload(chat_dataset(tmp_path / "support.jsonl"), name="support", progress=None)


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the backend asked for between tries (recorded; the tests do not sleep them)."""
    return []


@pytest.fixture
def backend(fake_runpod: Any, sleeps: list[float]) -> RunPodBackend:
    return RunPodBackend(
        fake_runpod.api_key,
        [RunPodOffer(gpu_type="A40")],
        max_attempts=MAX_ATTEMPTS,
        timeout=0.5,
        sleep=sleeps.append,
        transport="graphql",  # these script GraphQL operations; REST's status table: tests/unit/runpod
    )


def fail_everything(fake: Any, fault: str) -> None:
    for operation in OPERATIONS:
        fake.script(operation, [fault] * 50)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("http_429_text(7)", RateLimited),
        ("http_429_json", RateLimited),
        ("http_500_html", ServiceUnavailable),
        ("internal_error", ServiceUnavailable),
        ("cloudflare_1010", ServiceUnavailable),
        ("delay(2)", Timeout),
    ],
)
def test_runpod_failing_throughout_a_deploy_fails_the_job_after_bounded_retries(
    owner: Any, fake_runpod: Any, backend: RunPodBackend, sleeps: list[float], fault: str, error: type[Exception]
) -> None:
    lp, dataset = owner
    fail_everything(fake_runpod, fault)
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40")
    with pytest.raises(error) as raised:
        lp.jobs.deploy(job.id, backend=backend)

    assert len(fake_runpod.calls) == MAX_ATTEMPTS and len(sleeps) == MAX_ATTEMPTS - 1, "bounded retries"
    # Backoff, bounded. (Retry-After cannot be honoured here: the pinned SDK's transport drops the headers.)
    assert all(0 < pause <= MAX_DELAY + 1 for pause in sleeps), sleeps
    job = lp.jobs.retrieve(job.id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "deploy_error")
    assert job.error and job.error["message"] == str(raised.value) and job.pod_id is None
    assert fake_runpod.pods() == [], "no pod was created"
    statuses = [e.message for e in lp.jobs.events(job.id) if e.kind == "status"]
    assert statuses[-1] == "provisioning -> failed (deploy_error)"


@pytest.mark.parametrize("fault", ["http_500_html", "delay(2)"])
def test_a_pod_created_before_runpod_went_down_ends_itself_when_its_container_starts(
    local_supabase: Any, owner: Any, fake_runpod: Any, backend: RunPodBackend, tmp_path: Path, fault: str
) -> None:
    lp, dataset = owner
    fake_runpod.script("myself", ["ok"])  # the lookup before the create answers...
    fake_runpod.script(CREATE, ["drop_connection_after"])  # ...the create happens but its reply is lost...
    fake_runpod.script("myself", [fault] * 50)  # ...and RunPod fails from then on
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40")
    with pytest.raises((ServiceUnavailable, Timeout)):
        lp.jobs.deploy(job.id, backend=backend)
    job = lp.jobs.retrieve(job.id)
    assert (job.status, job.status_reason, job.pod_id) == (JobStatus.FAILED, "deploy_error", None)
    assert len(fake_runpod.calls_to(CREATE)) == 1, "a create is never repeated blindly"
    [stray] = fake_runpod.pods()

    fake_runpod.faults.clear()  # RunPod answers again; the pod's container starts and runs the pod program
    container = subprocess.run(
        [sys.executable, "-m", "lora_pipeline.pod", "run"],
        env={
            **fake_runpod.pod_env(stray.id),
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "LORA_TRAINER": "selftest",
            "LORA_WORK_DIR": str(tmp_path / "work"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert container.returncode == 0, container.stderr[-3000:]
    assert "already ended" in container.stderr
    assert fake_runpod.pods() == [], "the pod terminated itself instead of training"
    assert lp.jobs.reap(backend=backend) == []
    assert lp.metrics.history(job.id) == []
