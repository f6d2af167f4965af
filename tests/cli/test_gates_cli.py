"""``gates validate`` safety: no conditions is an error, --dry-run records nothing, status changes need --apply."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.backends.local import LocalBackend
from lora_pipeline.types.jobs import JobStatus

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl"


@pytest.fixture
def succeeded(user_shell: Any, tmp_path: Path) -> Any:
    """(user client, a succeeded job without a configured gate), with the user's shell environment set."""
    lp = user_shell
    dataset = lp.datasets.upload(SAMPLE, name="support", progress=None)
    backend = LocalBackend(work_dir=tmp_path / "pods", extra_env={"LORA_TRAINER": "selftest"})
    job = lp.jobs.create(dataset.id, base_model="tiny")
    lp.jobs.deploy(job.id, backend=backend)
    job = lp.jobs.wait_for_completion(job.id, backend=backend, poll_interval=0.2, timeout=60, progress=None)
    assert job.status is JobStatus.SUCCEEDED
    return lp, job


def _results(local_supabase: Any, job_id: str) -> int:
    with local_supabase.connect() as conn:
        row = conn.execute("select count(*) from public.validation_results where job_id = %s", (job_id,)).fetchone()
    return int(row[0])


def test_a_model_without_conditions_is_an_error_not_a_pass(
    cli: Callable[..., Any], succeeded: Any, local_supabase: Any
) -> None:
    _, job = succeeded
    typo = cli("gates", "validate", job.id[:8], "--model", "suport-bot")
    assert typo.code == 2
    assert "'suport-bot' has no active conditions" in typo.err and "--allow-empty" in typo.err
    assert _results(local_supabase, job.id) == 0, "a refused gate records nothing"
    allowed = cli("gates", "validate", job.id[:8], "--model", "suport-bot", "--allow-empty")
    assert allowed.code == 0 and "no conditions to check" in allowed.out


def test_dry_run_records_nothing_and_a_block_changes_the_job_only_with_apply(
    cli: Callable[..., Any], succeeded: Any, local_supabase: Any
) -> None:
    lp, job = succeeded
    lp.baselines.create("bot", metric="train_loss", kind="max", threshold=-1.0)  # cannot pass
    dry = cli("gates", "validate", job.id, "--model", "bot", "--dry-run", "--json")
    assert dry.code == 1 and json.loads(dry.out)["decision"] == "block"
    assert _results(local_supabase, job.id) == 0 and lp.gates.report(job.id) is None

    blocked = cli("gates", "validate", job.id, "--model", "bot")
    assert blocked.code == 1 and _results(local_supabase, job.id) == 1
    assert lp.jobs.retrieve(job.id).status is JobStatus.SUCCEEDED, "an ad-hoc gate does not fail a finished job"

    applied = cli("gates", "validate", job.id, "--model", "bot", "--apply")
    assert applied.code == 1 and _results(local_supabase, job.id) == 2
    after = lp.jobs.retrieve(job.id)
    assert (after.status, after.status_reason) == (JobStatus.FAILED, "gate_failed")
    shown = cli("jobs", "status", job.id[:8])
    assert "failed (gate_failed): block: 0 of 1 conditions passed" in shown.out


def test_deploy_wait_shows_the_gate_that_failed_the_job(
    cli: Callable[..., Any], succeeded: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    lp, done = succeeded
    lp.baselines.create("gated", metric="train_loss", kind="max", threshold=-1.0)  # cannot pass
    monkeypatch.setenv("LORA_TRAINER", "selftest")
    job_id = cli("jobs", "create", done.dataset_id[:8], "--base-model", "tiny", "--gate-model", "gated", "-q").lines[0]
    waited = cli("jobs", "deploy", job_id[:8], "--backend", "local", "--wait")
    assert waited.code == 1, waited.err
    assert "failed (gate_failed): block: 0 of 1 conditions passed" in waited.out
    assert "train_loss max" in waited.out, "the gate's table follows the status"


def test_metrics_show_json_is_one_document(cli: Callable[..., Any], succeeded: Any) -> None:
    _, job = succeeded
    shown = cli("metrics", "show", job.id[:8], "--json")
    document = json.loads(shown.out)
    assert shown.code == 0 and document["job_id"] == job.id and document["points"]
    assert set(document["final"]) == {"last", "min", "max"} and document["final"]["last"]
