"""Jobs end to end on the embedded stack with LocalBackend (the pod program as a local process)."""

from __future__ import annotations

import time
from typing import Any

import psycopg
import pytest

from lora_pipeline import ConfigError, InvalidTransition, WaitTimeout
from lora_pipeline.types.jobs import JobStatus


def wait(lp: Any, job_id: str, backend: Any, timeout: float = 60) -> Any:
    return lp.jobs.wait_for_completion(job_id, backend=backend, poll_interval=0.2, timeout=timeout, progress=None)


def test_a_job_runs_end_to_end_with_the_local_backend(local_supabase: Any, owner: Any, local_backend: Any) -> None:
    user, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", name="e2e")
    assert job.status is JobStatus.CREATED and job.hyperparameters["rank"] == 16
    job = lp.jobs.deploy(job.id, backend=local_backend)
    assert job.status is JobStatus.PROVISIONING and job.pod_id and job.backend == "local"
    job = wait(lp, job.id, local_backend)
    assert job.status is JobStatus.SUCCEEDED and job.started_at and job.finished_at
    statuses = [e.message for e in lp.jobs.events(job.id) if e.kind == "status"]
    assert statuses == [
        "created",
        "created -> validating",
        "validating -> queued",
        "queued -> provisioning",
        "provisioning -> running",
        "running -> uploading",
        "uploading -> succeeded",
    ]
    points = lp.metrics.history(job.id)
    assert [p.step for p in points] == list(range(1, 13)) and points[-1].eval_loss < points[0].eval_loss
    [artifact] = lp.artifacts.list(job_id=job.id)
    assert artifact.storage_path == f"{user.id}/{job.id}/"
    assert {f.name for f in artifact.files} == {"selftest_model.json", "training_summary.json"}
    [cost] = lp.costs.for_job(job.id)
    assert cost.seconds > 0 and cost.amount_usd == 0
    assert [n.kind for n in lp.notifications.list()] == ["job_succeeded"]


def test_the_pod_environment_never_holds_the_service_key(
    local_supabase: Any, owner: Any, local_backend: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, lp, dataset = owner
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", local_supabase.service_role_key)
    monkeypatch.setenv("LORA_PIPELINE_SERVICE_ROLE_KEY", local_supabase.service_role_key)
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=local_backend)
    environment = local_backend.environment(local_backend.handle_for(job.pod_id))
    wait(lp, job.id, local_backend)
    assert local_supabase.service_role_key not in environment.values()
    assert not [name for name in environment if "SERVICE" in name]
    assert {"LORA_JOB_ID", "LORA_JOB_TOKEN", "SUPABASE_URL", "SUPABASE_ANON_KEY"} <= set(environment)


def test_a_restarted_container_of_a_finished_job_exits_without_training(
    local_supabase: Any, owner: Any, local_backend: Any
) -> None:
    _, lp, dataset = owner
    job = wait(
        lp, lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=local_backend).id, local_backend
    )
    events_before = len(lp.jobs.events(job.id))
    handle = local_backend.restart(local_backend.handle_for(job.pod_id))
    assert local_backend.wait(handle, timeout=60) == 0
    assert "already ended" in local_backend.logs(handle)
    assert len(lp.jobs.events(job.id)) == events_before
    assert len(lp.metrics.history(job.id)) == 12
    assert lp.jobs.retrieve(job.id).status is JobStatus.SUCCEEDED


def test_cancel_while_running_terminates_the_pod(local_supabase: Any, owner: Any, slow_backend: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=slow_backend)
    _until(lambda: lp.jobs.retrieve(job.id).status is JobStatus.RUNNING)
    job = lp.jobs.cancel(job.id, backend=slow_backend)
    assert job.status is JobStatus.CANCELLED
    assert slow_backend.status(slow_backend.handle_for(job.pod_id)).state == "exited"
    last_two = [e.message for e in lp.jobs.events(job.id) if e.kind == "status"][-2:]
    # The controller (after terminating) or the pod (on SIGTERM) records the end, whichever comes first.
    assert last_two[0] == "running -> cancelling" and last_two[1].startswith("cancelling -> cancelled")


def test_cancel_without_a_backend_reaches_the_pod_through_its_heartbeat(
    local_supabase: Any, owner: Any, slow_backend: Any
) -> None:
    _, lp, dataset = owner
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=slow_backend)
    _until(lambda: lp.jobs.retrieve(job.id).status is JobStatus.RUNNING)
    assert lp.jobs.cancel(job.id).status is JobStatus.CANCELLING
    _until(lambda: lp.jobs.retrieve(job.id).status is JobStatus.CANCELLED, timeout=20)
    assert slow_backend.wait(slow_backend.handle_for(job.pod_id), timeout=20) == 0


def test_a_job_over_budget_is_stopped_and_notified(local_supabase: Any, owner: Any, slow_backend: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", max_cost_usd=1.0)  # $3600/h: a dollar a second
    job = lp.jobs.deploy(job.id, backend=slow_backend)
    job = wait(lp, job.id, slow_backend)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "budget_exceeded")
    assert slow_backend.status(slow_backend.handle_for(job.pod_id)).state == "exited"
    assert "budget_stop" in [n.kind for n in lp.notifications.list()]
    assert lp.costs.for_job(job.id)[0].amount_usd >= 1.0


def test_a_killed_pod_is_found_by_its_stale_heartbeat(local_supabase: Any, owner: Any, slow_backend: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=slow_backend)
    _until(lambda: lp.jobs.retrieve(job.id).status is JobStatus.RUNNING)
    slow_backend.kill(slow_backend.handle_for(job.pod_id))
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute(
            "update public.training_jobs set heartbeat_at = now() - interval '11 minutes' where id = %s", (job.id,)
        )
    [synced] = lp.jobs.sync(job.id)
    assert (synced.status, synced.status_reason) == (JobStatus.FAILED, "pod_lost")


def test_a_vanished_pod_is_reconciled_without_waiting_for_the_timeout(
    local_supabase: Any, owner: Any, slow_backend: Any
) -> None:
    _, lp, dataset = owner
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=slow_backend)
    _until(lambda: lp.jobs.retrieve(job.id).status is JobStatus.RUNNING)
    slow_backend.kill(slow_backend.handle_for(job.pod_id))
    [synced] = lp.jobs.sync(job.id, backend=slow_backend)
    assert (synced.status, synced.status_reason) == (JobStatus.FAILED, "pod_lost")


def test_wait_times_out_with_the_job_state(owner: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    with pytest.raises(WaitTimeout) as info:
        lp.jobs.wait_for_completion(job.id, timeout=0.3, poll_interval=0.1, progress=None)
    assert info.value.resource_id == job.id and info.value.last_state == "created"


def test_bad_definitions_are_refused_when_created(owner: Any) -> None:
    _, lp, dataset = owner
    with pytest.raises(ConfigError, match="unknown preset"):
        lp.jobs.create(dataset.id, base_model="tiny", preset="turbo")
    with pytest.raises(ConfigError, match="learning_rate"):
        lp.jobs.create(dataset.id, base_model="tiny", hyperparameters={"learning_rate": -1})
    with pytest.raises(ConfigError, match="needs about"):
        lp.jobs.create(dataset.id, base_model="meta-llama/Llama-3.1-70B", gpu_type="RTX_4090")
    with pytest.raises(ConfigError, match="unknown gpu_type"):
        lp.jobs.create(dataset.id, base_model="tiny", gpu_type="TPU")


def test_illegal_moves_are_refused_by_postgres(owner: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    lp.jobs.cancel(job.id)
    with pytest.raises(InvalidTransition, match="terminal state"):
        lp._executor.run(_move(job.id))


def _move(job_id: str) -> Any:
    from lora_pipeline.resources._job_control import fetch_job, move

    job = yield from fetch_job(job_id)
    return (yield from move(job, JobStatus.QUEUED))


def test_issue_token_env_for_bring_your_own_compute(local_supabase: Any, owner: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    credentials = lp.jobs.issue_token(job.id)
    env = credentials.env()
    assert set(env) == {"LORA_JOB_ID", "LORA_JOB_TOKEN", "SUPABASE_URL", "SUPABASE_ANON_KEY"}
    assert local_supabase.service_role_key not in env.values() and credentials.token not in repr(credentials)


def test_estimate_gives_a_range(owner: Any) -> None:
    _, lp, dataset = owner
    estimate = lp.jobs.estimate(dataset.id, base_model="meta-llama/Llama-3.1-8B", gpu_type="A100_80GB")
    assert estimate.price_source == "list" and 0 < estimate.usd_low < estimate.usd_high
    assert estimate.steps == 72 and estimate.memory_gb and estimate.memory_gb > 16
    with pytest.raises(ConfigError, match="more than the 48 GB"):  # what create refuses is never priced (issue 14)
        lp.jobs.estimate(dataset.id, base_model="meta-llama/Llama-3.1-8B", gpu_type="A40")


def _until(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)
