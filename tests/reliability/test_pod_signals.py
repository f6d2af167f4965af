"""SIGTERM and SIGKILL of the pod program (``python -m lora_pipeline.pod run`` under LocalBackend, selftest
trainer) at chosen and at random points: the job always ends, ``failed`` with a reason (or ``succeeded`` when the
signal came after its last report), never stays ``running`` past the heartbeat timeout, and what its metrics say
stays consistent with how far it got.

The heartbeat timeout is ten minutes; the tests age the job's last heartbeat instead of waiting for it.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from tests._support.tcp_proxy import TcpProxy

from lora_pipeline import LoraPipeline, Role
from lora_pipeline.backends.local import LocalBackend
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.resources._job_control import HEARTBEAT_TIMEOUT
from lora_pipeline.types.jobs import JobStatus

from .conftest import chat_dataset, wait_until

STEPS = 12
"""The selftest trainer's steps."""
POD_REASONS = {"training_error", "container_error", "upload_failed"}
"""Reasons the pod reports itself when a SIGTERM ends it."""
CONTROLLER_REASONS = {"pod_lost"}
"""The reason reconciliation gives a pod that died without a word."""


@pytest.fixture
def owner(user_factory: Any, tmp_path: Path) -> tuple[Any, Any]:
    """(user client, ready dataset)."""
    _, lp = user_factory()
    return lp, lp.datasets.upload(chat_dataset(tmp_path / "support.jsonl"), name="support", progress=None)


@pytest.fixture
def backend(tmp_path: Path) -> LocalBackend:
    """Pods whose training takes about two seconds (12 steps of 0.15 s) and heartbeat every 0.3 s."""
    return LocalBackend(
        work_dir=tmp_path / "pods",
        extra_env={
            "LORA_TRAINER": "selftest",
            "LORA_HEARTBEAT_SECONDS": "0.3",
            "LORA_SELFTEST_STEP_SECONDS": "0.15",
        },
    )


def launch(lp: Any, dataset: Any, backend: LocalBackend) -> tuple[Any, Any]:
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend)
    return job, backend.handle_for(job.pod_id)


def step_reached(lp: Any, job_id: str) -> int:
    return int((lp.jobs.retrieve(job_id).progress or {}).get("step") or 0)


def stop_pod(backend: LocalBackend, handle: Any, signum: int) -> int | None:
    """Send ``signum`` as the platform would (to the pod's process group) and wait for the pod to exit."""
    if signum == signal.SIGKILL:
        backend.kill(handle)
    else:
        backend.terminate(handle)  # SIGTERM, then SIGKILL after 15 s
    return backend.wait(handle, timeout=30)


def metric_steps(lp: Any, job_id: str) -> list[int]:
    return [point.step for point in lp.metrics.history(job_id)]


def settle(lp: Any, job_id: str, backend: LocalBackend) -> Any:
    """What a controller does: reconcile until the job ends (bounded)."""
    return lp.jobs.wait_for_completion(job_id, backend=backend, timeout=60, poll_interval=0.2, progress=None)


def age_heartbeat(stack: LocalSupabase, job_id: str) -> None:
    """Make the job's last sign of life older than the heartbeat timeout (instead of waiting ten minutes)."""
    with stack.connect() as conn:
        conn.execute(
            "update public.training_jobs set heartbeat_at = now() - %s - interval '1 minute',"
            " started_at = coalesce(started_at, now() - %s - interval '1 minute') where id = %s",
            (HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT, job_id),
        )


def test_sigterm_during_training_fails_the_job_itself_and_keeps_its_metrics(
    local_supabase: LocalSupabase, owner: Any, backend: LocalBackend
) -> None:
    lp, dataset = owner
    job, handle = launch(lp, dataset, backend)
    assert wait_until(lambda: step_reached(lp, job.id) >= 3, timeout=60), backend.logs(handle)
    assert stop_pod(backend, handle, signal.SIGTERM) == 1, backend.logs(handle)

    job = lp.jobs.retrieve(job.id)  # no reconciliation: the pod reported its own end before exiting
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "training_error")
    assert "terminated by a signal" in job.error["message"]
    steps = metric_steps(lp, job.id)
    assert steps == list(range(1, len(steps) + 1)) and 3 <= len(steps) < STEPS
    assert len(steps) >= job.progress["step"], "every step the heartbeats had reported is in the metrics"
    spool = backend.work_dir / handle.pod_id / "lora-pipeline" / "spool"
    assert not list(spool.glob("*.jsonl")), "the spool was delivered and removed"


def test_sigterm_during_upload_fails_the_job_as_upload_failed(
    local_supabase: LocalSupabase, user_factory: Any, backend: LocalBackend, tmp_path: Path
) -> None:
    user, lp = user_factory()
    dataset = lp.datasets.upload(chat_dataset(tmp_path / "support.jsonl"), name="support", progress=None)
    # The pod reaches the stack through a proxy that turns slow once training is over, so that the upload
    # lasts long enough to be interrupted.
    with (
        TcpProxy(local_supabase.url) as link,
        LoraPipeline(
            url=link.url, anon_key=local_supabase.anon_key, access_token=user.access_token, role=Role.USER
        ) as through_link,
    ):
        job, handle = launch(through_link, dataset, backend)
        assert wait_until(lambda: step_reached(lp, job.id) >= STEPS - 1, timeout=60), backend.logs(handle)
        link.delay(0.3)
        assert wait_until(lambda: lp.jobs.retrieve(job.id).status is JobStatus.UPLOADING, timeout=60)
        stop_pod(backend, handle, signal.SIGTERM)
    job = lp.jobs.retrieve(job.id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "upload_failed"), backend.logs(handle)
    assert metric_steps(lp, job.id) == list(range(1, STEPS + 1))
    assert lp.artifacts.list(job_id=job.id) == []


@pytest.mark.parametrize("controller", ["sees_the_pod_exit", "sees_the_heartbeat_stop"])
def test_sigkill_during_training_is_failed_by_the_controller(
    local_supabase: LocalSupabase, owner: Any, backend: LocalBackend, controller: str
) -> None:
    lp, dataset = owner
    job, handle = launch(lp, dataset, backend)
    assert wait_until(lambda: step_reached(lp, job.id) >= 3, timeout=60), backend.logs(handle)
    stop_pod(backend, handle, signal.SIGKILL)
    assert lp.jobs.retrieve(job.id).status is JobStatus.RUNNING, "a killed pod says nothing"

    if controller == "sees_the_pod_exit":
        job = settle(lp, job.id, backend)
    else:  # a controller that cannot see the pod: only the heartbeat tells
        [job] = lp.jobs.sync(job.id)
        assert job.status is JobStatus.RUNNING, "not failed before the heartbeat timeout"
        age_heartbeat(local_supabase, job.id)
        [job] = lp.jobs.sync(job.id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "pod_lost")
    steps = metric_steps(lp, job.id)
    assert steps == list(range(1, len(steps) + 1)), "what arrived is a gap-free prefix"


def test_a_killed_pod_restarted_by_its_platform_trains_again_and_finishes_once(
    local_supabase: LocalSupabase, owner: Any, backend: LocalBackend
) -> None:
    lp, dataset = owner
    job, handle = launch(lp, dataset, backend)
    assert wait_until(lambda: step_reached(lp, job.id) >= 3, timeout=60), backend.logs(handle)
    stop_pod(backend, handle, signal.SIGKILL)
    backend.restart(handle)  # as RunPod restarts an exited container, same environment and disk

    job = settle(lp, job.id, backend)
    assert job.status is JobStatus.SUCCEEDED, backend.logs(handle)
    assert metric_steps(lp, job.id) == list(range(1, STEPS + 1))
    assert len(lp.artifacts.list(job_id=job.id)) == 1
    starts = [e for e in lp.jobs.events(job.id) if e.kind == "pod" and "started" in e.message]
    assert len(starts) == 2


def run_and_signal(lp: Any, dataset: Any, backend: LocalBackend, signum: int, delay: float) -> tuple[Any, Any]:
    job, handle = launch(lp, dataset, backend)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and backend.status(handle).state == "running":
        time.sleep(0.01)
    stop_pod(backend, handle, signum)
    return settle(lp, job.id, backend), handle


def check_outcome(lp: Any, job: Any, signum: int, logs: str) -> None:
    steps = metric_steps(lp, job.id)
    if job.status is JobStatus.SUCCEEDED:  # the signal came after the pod's last report
        assert steps == list(range(1, STEPS + 1)) and len(lp.artifacts.list(job_id=job.id)) == 1
        return
    assert job.status is JobStatus.FAILED, (job.status, logs)
    allowed = CONTROLLER_REASONS | (POD_REASONS if signum == signal.SIGTERM else set())
    assert job.status_reason in allowed, (job.status_reason, logs)
    assert steps == list(range(1, len(steps) + 1)), f"metrics are a gap-free prefix, got {steps}"
    assert job.error and job.error.get("message"), "a failed job says why"


def random_points(count: int, seed: int) -> list[tuple[str, float]]:
    """``count`` (signal, delay after deploy) pairs spread over a pod's life (about 2.2 s here: starting until
    0.2 s, training from 0.5 s to 2 s, uploading, then done; later signals find it gone)."""
    chooser = random.Random(seed)
    return [(chooser.choice(["SIGTERM", "SIGKILL"]), round(chooser.uniform(0.0, 2.6), 2)) for _ in range(count)]


@pytest.mark.parametrize(("signal_name", "delay"), [("SIGTERM", 0.0), *random_points(3, seed=9)])
def test_a_signal_at_any_point_ends_the_job(
    local_supabase: LocalSupabase, owner: Any, backend: LocalBackend, signal_name: str, delay: float
) -> None:
    lp, dataset = owner
    signum = getattr(signal, signal_name)
    job, handle = run_and_signal(lp, dataset, backend, signum, delay)
    check_outcome(lp, job, signum, backend.logs(handle))


@pytest.mark.slow
@pytest.mark.parametrize(("signal_name", "delay"), random_points(16, seed=int(os.environ.get("LORA_FAULT_SEED", "7"))))
def test_signals_at_many_random_points_end_the_job(
    local_supabase: LocalSupabase, owner: Any, backend: LocalBackend, signal_name: str, delay: float
) -> None:
    lp, dataset = owner
    signum = getattr(signal, signal_name)
    job, handle = run_and_signal(lp, dataset, backend, signum, delay)
    check_outcome(lp, job, signum, backend.logs(handle))
