"""A run reported with nothing but a job token (``Run.from_env``): a cluster job launched by someone else's
scheduler; what the token may and may not move; a killed process ends ``pod_lost`` once ``sync`` sees the
heartbeats stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from lora_pipeline import ConfigError, InvalidTransition, PermissionDenied
from lora_pipeline.pod.client import PodClient
from lora_pipeline.resources._job_control import move
from lora_pipeline.types.jobs import JobStatus
from lora_pipeline.types.runs import Run

_SCRIPT = """
import sys, time
from lora_pipeline.types.runs import Run
run = Run.from_env(heartbeat_interval=0.2, spool_dir=sys.argv[1], flush_interval=0.1)
run.log(1, train_loss=2.0)
run.reporter.flush(timeout=10)
print("logged", flush=True)
time.sleep(600)
"""


def test_from_env_reports_and_finishes_a_job_created_server_side(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", name="cluster-42")
    env = lp.jobs.issue_token(job.id).env()
    run = Run.from_env(env, **run_options)
    assert lp.jobs.retrieve(job.id).status is JobStatus.RUNNING
    run.record_config({"r": 8, "per_device_train_batch_size": 4})
    run.log(1, train_loss=1.5)
    outcome = run.finish()
    job = lp.jobs.retrieve(job.id)
    assert outcome.status == "succeeded" and outcome.gate is None
    assert job.status is JobStatus.SUCCEEDED and job.backend == "external"
    assert job.hyperparameters == {"r": 8, "per_device_train_batch_size": 4}  # not the preset's rank 16
    assert [p.train_loss for p in lp.metrics.history(job.id)] == [1.5]


def test_from_env_names_every_missing_variable() -> None:
    with pytest.raises(ConfigError, match="LORA_JOB_TOKEN") as caught:
        Run.from_env({"LORA_JOB_ID": "00000000-0000-0000-0000-000000000001"})
    assert "SUPABASE_URL" in caught.value.env_names


def test_a_token_cannot_start_a_run_on_a_job_that_is_being_deployed(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    lp.jobs._run(move(job, JobStatus.VALIDATING))  # the first step of lp.jobs.deploy
    env = lp.jobs.issue_token(job.id).env()
    with pytest.raises(InvalidTransition, match="starts from a created job"):
        Run.from_env(env, **run_options)
    client = PodClient(env["SUPABASE_URL"], env["SUPABASE_ANON_KEY"], env["LORA_JOB_ID"], env["LORA_JOB_TOKEN"])
    with pytest.raises(InvalidTransition, match="only a run on your own machine records its configuration"):
        client.rpc("run_record_config", {"config": {"r": 8}})
    with pytest.raises(InvalidTransition, match="its pod is cancelled by its owner"):
        client.rpc("run_cancel")
    job = lp.jobs.retrieve(job.id)
    assert job.status is JobStatus.VALIDATING and job.backend is None and job.hyperparameters["rank"] == 16


def test_a_token_of_an_ended_run_is_dead(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    env = lp.jobs.issue_token(job.id).env()
    Run.from_env(env, **run_options).finish()
    with pytest.raises(PermissionDenied, match="job token is invalid, expired, or its job has ended"):
        Run.from_env(env, **run_options)


def test_the_owners_cancel_reaches_the_run(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    run = lp.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options)
    assert lp.jobs.cancel(run.job_id).status is JobStatus.CANCELLING
    deadline = time.monotonic() + 10
    while not run.cancel_requested and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.cancel_requested
    assert run.finish("cancelled").status == "cancelled"
    job = lp.jobs.retrieve(run.job_id)
    assert (job.status, job.status_reason) == (JobStatus.CANCELLED, "cancelled_by_user")


def test_a_killed_process_ends_pod_lost_after_sync(local_supabase: Any, owner: Any, tmp_path: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", name="dies")
    env = {**os.environ, **lp.jobs.issue_token(job.id).env()}
    process = subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "spool")], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "logged"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    assert lp.jobs.sync(job.id)[0].status is JobStatus.RUNNING  # heartbeats are recent: still alive
    with local_supabase.connect() as db:  # eleven minutes pass without a heartbeat
        db.execute(
            "update public.training_jobs set heartbeat_at = now() - interval '11 minutes',"
            " started_at = now() - interval '12 minutes' where id = %s",
            (job.id,),
        )
    [synced] = lp.jobs.sync(job.id)
    assert (synced.status, synced.status_reason) == (JobStatus.FAILED, "pod_lost")
    assert "no heartbeat for 11 minutes" in synced.error["message"]
    assert [p.train_loss for p in lp.metrics.history(job.id)] == [2.0]


def test_a_success_after_the_owners_cancel_is_not_recorded_and_says_so(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    run = lp.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options)
    lp.jobs.cancel(run.job_id)
    outcome = run.finish()  # training ignored the cancel and finished anyway
    assert (outcome.status, outcome.reported) == ("cancelling", False)
    [job] = lp.jobs.sync(run.job_id)
    assert (job.status, job.status_reason) == (JobStatus.CANCELLED, "cancelled_by_user")
