"""Duplicates and deletion: the same baseline or dataset created again is the same row (a different one under
the same key is a Conflict), a dataset in use says which jobs hold it, an ended job deletes with what it made."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline import Conflict
from lora_pipeline._exceptions import ConfigError
from lora_pipeline.backends.local import LocalBackend
from lora_pipeline.types.jobs import JobStatus

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl"


def _count(local_supabase: Any, sql: str, *args: Any) -> int:
    with local_supabase.connect() as conn:
        return int(conn.execute(sql, args).fetchone()[0])


def test_the_same_baseline_three_times_is_one_condition(
    cli: Callable[..., Any], user_shell: Any, local_supabase: Any
) -> None:
    add = ("baselines", "add", "bot", "--metric", "eval_loss", "--kind", "max", "--threshold", "5", "-q")
    ids = {cli(*add).lines[0] for _ in range(3)}
    assert len(ids) == 1
    assert _count(local_supabase, "select count(*) from public.model_baselines where model_name = 'bot'") == 1
    changed = cli("baselines", "add", "bot", "--metric", "eval_loss", "--kind", "max", "--threshold", "6")
    assert changed.code == 2 and "exists" in changed.err and "threshold=6.0" in changed.err
    assert "lp.baselines.update" in changed.err
    warning = cli(*add[:-1], "--severity", "warning", "-q")  # a warning bound beside a critical one is another key
    assert warning.code == 0 and warning.lines[0] not in ids


def test_the_same_file_twice_under_one_name_is_one_dataset_and_another_file_conflicts(
    user_shell: Any, tmp_path: Path, local_supabase: Any
) -> None:
    first = user_shell.datasets.upload(SAMPLE, name="support", progress=None)
    again = user_shell.datasets.upload(SAMPLE, name="support", progress=None)
    assert again.id == first.id
    other = tmp_path / "other.jsonl"
    other.write_text("\n".join(SAMPLE.read_text().splitlines()[:40]) + "\n")
    with pytest.raises(Conflict) as raised:
        user_shell.datasets.upload(other, name="support", progress=None)
    assert first.id in str(raised.value) and "a different file" in str(raised.value)
    assert _count(local_supabase, "select count(*) from public.datasets") == 1
    assert _count(local_supabase, "select count(*) from storage.objects where bucket_id = 'lora-datasets'") == 1


def test_a_dataset_in_use_names_the_jobs_that_hold_it(cli: Callable[..., Any], user_shell: Any) -> None:
    dataset = user_shell.datasets.upload(SAMPLE, name="support", progress=None)
    job = user_shell.jobs.create(dataset.id, base_model="tiny")
    refused = cli("datasets", "delete", dataset.id[:8], "--yes")
    assert refused.code == 2
    assert f"used by job(s) {job.id[:8]} (created)" in refused.err and "delete those jobs first" in refused.err
    assert cli("jobs", "delete", job.id[:8], "--yes").code == 0
    assert cli("datasets", "delete", dataset.id[:8], "--yes").code == 0
    assert user_shell.datasets.list() == []


def test_an_ended_job_deletes_with_its_events_metrics_and_adapter_files(
    user_shell: Any, local_supabase: Any, tmp_path: Path
) -> None:
    dataset = user_shell.datasets.upload(SAMPLE, name="support", progress=None)
    backend = LocalBackend(work_dir=tmp_path / "pods", extra_env={"LORA_TRAINER": "selftest"})
    job = user_shell.jobs.create(dataset.id, base_model="tiny")
    user_shell.jobs.deploy(job.id, backend=backend)
    job = user_shell.jobs.wait_for_completion(job.id, backend=backend, poll_interval=0.2, timeout=60, progress=None)
    assert job.status is JobStatus.SUCCEEDED
    [artifact] = user_shell.artifacts.list(job_id=job.id)
    prefix = f"{artifact.storage_path}%"
    objects = "select count(*) from storage.objects where bucket_id = 'lora-models' and name like %s"
    assert _count(local_supabase, objects, prefix) >= 1
    assert _count(local_supabase, "select count(*) from public.metrics_points where job_id = %s", job.id) > 0

    user_shell.jobs.delete(job.id)
    for table in ("training_jobs", "job_events", "metrics_points", "model_artifacts", "cost_records"):
        column = "id" if table == "training_jobs" else "job_id"
        assert _count(local_supabase, f"select count(*) from public.{table} where {column} = %s", job.id) == 0
    assert _count(local_supabase, objects, prefix) == 0


def test_an_active_job_or_a_fixed_baseline_job_is_not_deleted(user_shell: Any, local_supabase: Any) -> None:
    dataset = user_shell.datasets.upload(SAMPLE, name="support", progress=None)
    job = user_shell.jobs.create(dataset.id, base_model="tiny")
    with local_supabase.connect() as conn:
        conn.execute("update public.training_jobs set status = 'validating' where id = %s", (job.id,))
    with pytest.raises(ConfigError, match="cancel it first"):
        user_shell.jobs.delete(job.id)
    with local_supabase.connect() as conn:
        conn.execute(
            "update public.training_jobs set status = 'failed', status_reason = 'validation_failed' where id = %s",
            (job.id,),
        )
    condition = user_shell.baselines.create(
        "bot", metric="eval_loss", kind="delta", direction="lower_is_better", threshold=0.1, baseline=job.id
    )
    with pytest.raises(Conflict) as raised:
        user_shell.jobs.delete(job.id)
    assert condition.id in str(raised.value) and "lp.baselines.update" in str(raised.value)
    assert user_shell.jobs.retrieve(job.id).id == job.id
