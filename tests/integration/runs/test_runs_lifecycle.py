"""``lp.runs.start`` end to end on the embedded stack: the ``with`` block's three endings, the gate at the end,
what is stored (config, metrics, artifact), and the bad inputs of issue 17."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline import AsyncLoraPipeline, ConfigError, NotFound, Role
from lora_pipeline.types.jobs import JobStatus


def statuses(lp: Any, job_id: str) -> list[str]:
    return [e.message for e in lp.jobs.events(job_id) if e.kind == "status"]


def adapter_folder(root: Path) -> Path:
    folder = root / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16, "peft_type": "LORA"}))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    return folder


def test_a_with_block_ends_succeeded_with_its_config_metrics_artifact_and_gate(
    owner: Any, run_options: dict[str, Any], tmp_path: Path
) -> None:
    user, lp, dataset = owner
    lp.baselines.create("support-bot", metric="eval_loss", kind="max", threshold=2.0)
    config = {"r": 8, "lora_alpha": 16, "learning_rate": 2e-4, "output_dir": tmp_path / "out"}
    with lp.runs.start(
        dataset_id=dataset.id, name="r8", base_model="tiny", config=config, model_name="support-bot", **run_options
    ) as run:
        assert lp.jobs.retrieve(run.job_id).status is JobStatus.RUNNING
        for step in range(1, 6):
            run.log(step, train_loss=3.0 - step * 0.3, eval_loss=2.5 - step * 0.2)
        run.set_progress(step=5, total_steps=5)
        run.log_artifact(adapter_folder(tmp_path))
    outcome = run.finish()
    assert outcome.status == "succeeded" and outcome.gate is not None and outcome.gate.decision == "pass"
    job = lp.jobs.retrieve(run.job_id)
    assert job.status is JobStatus.SUCCEEDED and job.backend == "external" and job.started_at and job.finished_at
    assert job.hyperparameters == {"r": 8, "lora_alpha": 16, "learning_rate": 2e-4, "output_dir": str(tmp_path / "out")}
    assert statuses(lp, job.id) == ["created", "created -> running", "running -> uploading", "uploading -> succeeded"]
    assert [p.step for p in lp.metrics.history(job.id)] == [1, 2, 3, 4, 5]
    [artifact] = lp.artifacts.list(job_id=job.id)
    assert artifact.storage_path == f"{user.id}/{job.id}/" and artifact.adapter_config["r"] == 8
    assert {f.name for f in artifact.files} == {"adapter_config.json", "adapter_model.safetensors"}
    assert lp.gates.report(job.id).decision == "pass"


def test_a_blocking_gate_ends_the_run_gate_failed(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    lp.baselines.create("support-bot", metric="eval_loss", kind="max", threshold=0.5)
    with lp.runs.start(dataset_id=dataset.id, base_model="tiny", model_name="support-bot", **run_options) as run:
        run.log(1, eval_loss=1.5)
    outcome = run.finish()
    assert (outcome.status, outcome.reason, outcome.gate.decision) == ("failed", "gate_failed", "block")
    job = lp.jobs.retrieve(run.job_id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "gate_failed")


def test_an_exception_ends_failed_training_error_with_its_message_and_propagates(
    owner: Any, run_options: dict[str, Any]
) -> None:
    _, lp, dataset = owner
    with (
        pytest.raises(RuntimeError, match="loss went NaN"),
        lp.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options) as run,
    ):
        run.log(1, train_loss=2.0)
        raise RuntimeError("loss went NaN at step 2\nsecond line")
    job = lp.jobs.retrieve(run.job_id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "training_error")
    assert job.error["message"] == "RuntimeError: loss went NaN at step 2"
    assert [p.step for p in lp.metrics.history(job.id)] == [1]
    assert run.finish().status == "failed"  # finish after the block: the first outcome, nothing changes


def test_ctrl_c_ends_cancelled(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    with (
        pytest.raises(KeyboardInterrupt),
        lp.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options) as run,
    ):
        run.log(1, train_loss=2.0)
        raise KeyboardInterrupt
    job = lp.jobs.retrieve(run.job_id)
    assert (job.status, job.status_reason) == (JobStatus.CANCELLED, "cancelled_by_user")
    assert statuses(lp, job.id)[-2:] == ["running -> cancelling", "cancelling -> cancelled (cancelled_by_user)"]


def test_a_crash_between_start_and_the_first_log_ends_failed(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    with pytest.raises(ImportError), lp.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options) as run:
        raise ImportError("No module named 'flash_attn'")
    job = lp.jobs.retrieve(run.job_id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "training_error")
    assert lp.metrics.history(job.id) == []


def test_finish_twice_returns_the_first_outcome_and_a_closed_run_refuses_log(
    owner: Any, run_options: dict[str, Any]
) -> None:
    _, lp, dataset = owner
    run = lp.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options)
    run.log(1, train_loss=1.0)
    first = run.finish()
    assert run.finish("failed", message="late") is first
    assert lp.jobs.retrieve(run.job_id).status is JobStatus.SUCCEEDED
    assert statuses(lp, run.job_id) == ["created", "created -> running", "running -> succeeded"]
    with pytest.raises(ConfigError, match=r"has finished \(succeeded\).*lp\.runs\.start"):
        run.log(2, train_loss=0.5)
    with pytest.raises(ConfigError, match="succeeded, failed or cancelled"):
        lp.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options).finish("done")


def test_a_dataset_of_another_user_is_not_found(owner: Any, user_factory: Any, run_options: dict[str, Any]) -> None:
    _, _, dataset = owner
    _, other = user_factory()
    with pytest.raises(NotFound, match=f"dataset {dataset.id} not found"):
        other.runs.start(dataset_id=dataset.id, base_model="tiny", **run_options)
    assert other.jobs.list() == []


def test_a_config_with_values_that_are_not_json_is_converted_or_dropped_with_a_warning(
    owner: Any, run_options: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    _, lp, dataset = owner
    config = {
        "r": 8,
        "target_modules": {"q_proj", "v_proj"},
        "loss_fn": lambda x: x,
        "hub_token": "hf_secret_value_123456",
        "warmup": float("nan"),
    }
    with (
        caplog.at_level(logging.WARNING, logger="lora_pipeline"),
        lp.runs.start(dataset_id=dataset.id, base_model="tiny", config=config, **run_options) as run,
    ):
        pass
    stored = lp.jobs.retrieve(run.job_id).hyperparameters
    assert stored == {"r": 8, "target_modules": ["q_proj", "v_proj"], "hub_token": "<redacted>", "warmup": "NaN"}
    assert "config.loss_fn (function)" in caplog.text and "hf_secret_value_123456" not in caplog.text


def test_compare_puts_the_runs_curves_side_by_side(owner: Any, run_options: dict[str, Any]) -> None:
    _, lp, dataset = owner
    ids = []
    for name, scale in (("r8", 1.0), ("r16", 0.5)):
        with lp.runs.start(dataset_id=dataset.id, name=name, base_model="tiny", **run_options) as run:
            for step in (1, 2, 3):
                run.log(step, eval_loss=scale * (4 - step))
        ids.append(run.job_id)
    assert {j.id for j in lp.runs.list()} == set(ids)
    frame, figure = lp.runs.compare(ids, metric="eval_loss", plot=True)
    assert list(frame.columns) == ["r8", "r16"] and list(frame.index) == [1, 2, 3]
    assert frame["r16"].tolist() == [1.5, 1.0, 0.5]
    assert [line.get_label() for line in figure.axes[0].get_lines()] == ["r8", "r16"]


async def test_the_async_client_starts_a_run_that_ends_with_its_gate(
    local_supabase: Any, owner: Any, run_options: dict[str, Any]
) -> None:
    user, lp, dataset = owner
    lp.baselines.create("support-bot", metric="eval_loss", kind="max", threshold=2.0)
    alp = AsyncLoraPipeline(
        url=local_supabase.url, anon_key=local_supabase.anon_key, access_token=user.access_token, role=Role.USER
    )
    try:
        run = await alp.runs.start(dataset_id=dataset.id, base_model="tiny", model_name="support-bot", **run_options)
        run.log(1, eval_loss=1.0)
        outcome = await asyncio.to_thread(run.finish)  # finish blocks (bounded): off the event loop
        assert [j.id for j in await alp.runs.list()] == [run.job_id]
    finally:
        await alp.close()
    assert outcome.status == "succeeded" and outcome.gate is not None and outcome.gate.decision == "pass"
