"""Regression gates wired to training completion: champion, block, results, notifications, CLI exit codes."""

from __future__ import annotations

import os
import subprocess
from typing import Any

import psycopg

from lora_pipeline.gates import ConditionStatus, Decision
from lora_pipeline.types.jobs import JobStatus

MODEL = "support-bot"


def run(lp: Any, dataset: Any, backend: Any, **create: Any) -> Any:
    job = lp.jobs.create(dataset.id, base_model="tiny", gates={"model_name": MODEL}, **create)
    lp.jobs.deploy(job.id, backend=backend)
    return lp.jobs.wait_for_completion(job.id, backend=backend, poll_interval=0.2, timeout=60, progress=None)


def gates_cli(stack: Any, user: Any, job_id: str, *flags: str) -> subprocess.CompletedProcess[str]:
    """``lora-pipeline gates validate`` as a CI step would run it: signed in as the user, no service key."""
    env = {
        **os.environ,
        "SUPABASE_URL": stack.url,
        "SUPABASE_ANON_KEY": stack.anon_key,
        "LORA_PIPELINE_ACCESS_TOKEN": user.access_token,
    }
    env.pop("SUPABASE_SERVICE_ROLE_KEY", None)
    return subprocess.run(
        ["lora-pipeline", "gates", "validate", job_id, "--model", MODEL, *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_first_job_becomes_champion_and_a_worse_second_job_is_blocked(
    local_supabase: Any, owner: Any, local_backend: Any
) -> None:
    user, lp, dataset = owner
    lp.baselines.create(MODEL, metric="eval_loss", kind="max", threshold=50.0)
    delta = lp.baselines.create(
        MODEL,
        metric="eval_loss",
        kind="delta",
        direction="lower_is_better",
        threshold=0.05,
        baseline="champion",
        severity="critical",
    )
    first = run(lp, dataset, local_backend)
    assert first.status is JobStatus.SUCCEEDED
    second = run(lp, dataset, local_backend, hyperparameters={"max_steps": 3})
    assert (second.status, second.status_reason) == (JobStatus.FAILED, "gate_failed")
    recorded = lp.gates.report(second.id)
    assert recorded is not None and recorded.decision is Decision.BLOCK and len(recorded.results) == 2

    with psycopg.connect(local_supabase.db_url) as conn:
        results = conn.execute(
            "select job_id::text, decision, conditions from public.validation_results order by created_at"
        ).fetchall()
    assert [(r[0], r[1]) for r in results] == [(first.id, "warn"), (second.id, "block")]
    first_delta = next(c for c in results[0][2] if c["condition_id"] == delta.id)
    second_delta = next(c for c in results[1][2] if c["condition_id"] == delta.id)
    assert first_delta["status"] == ConditionStatus.MISSING_BASELINE
    assert second_delta["status"] == ConditionStatus.FAIL and second_delta["baseline_job_id"] == first.id
    assert second_delta["actual"] > second_delta["baseline"] + 0.05
    kinds = [n.kind for n in lp.notifications.list()]
    assert "gate_block" in kinds and "job_failed" in kinds

    blocked = gates_cli(local_supabase, user, second.id)
    assert blocked.returncode == 1 and "block" in blocked.stdout, blocked.stderr
    warned = gates_cli(local_supabase, user, first.id)
    assert warned.returncode == 0 and "warn" in warned.stdout, warned.stderr
    strict = gates_cli(local_supabase, user, first.id, "--strict")
    assert strict.returncode == 1 and "warn" in strict.stdout, "strict mode fails the CI step on a warning"
    assert lp.jobs.retrieve(first.id).status is JobStatus.SUCCEEDED, "a missing baseline never blocks the job"


def test_gate_on_an_unfinished_job_is_an_error_with_exit_code_2(local_supabase: Any, owner: Any) -> None:
    user, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    result = gates_cli(local_supabase, user, job.id)
    assert result.returncode == 2 and "a gate runs on a succeeded job" in result.stderr


def test_gate_errors_fail_open_only_when_asked(local_supabase: Any, owner: Any, local_backend: Any) -> None:
    from lora_pipeline import PermissionDenied

    _, lp, dataset = owner
    lp.baselines.create(MODEL, metric="eval_loss", kind="max", threshold=50.0)
    job = lp.jobs.create(dataset.id, base_model="tiny")
    lp.jobs.deploy(job.id, backend=local_backend)
    job = lp.jobs.wait_for_completion(job.id, backend=local_backend, poll_interval=0.2, timeout=60, progress=None)
    # A real fault inside the gate: the metrics table becomes unreadable for signed-in users.
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute("revoke select on public.metrics_points from authenticated")
        try:
            try:
                lp.gates.validate(job.id, model_name=MODEL)
            except PermissionDenied:
                pass
            else:
                raise AssertionError("without fail_open an error inside the gate must raise")
            report = lp.gates.validate(job.id, model_name=MODEL, fail_open=True)
        finally:
            conn.execute("grant select on public.metrics_points to authenticated")
    assert report.decision is Decision.WARN and "metrics_points" in (report.error or "")
    assert lp.jobs.retrieve(job.id).status is JobStatus.SUCCEEDED
