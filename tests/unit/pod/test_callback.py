"""LoraPipelineCallback with real TrainerState / TrainingArguments / TrainerControl objects and a real reporter
(against the fake server): what the Trainer's logs become, progress, failure reports, and no exception ever
reaching the training loop."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import TrainerControl, TrainerState, TrainingArguments

from lora_pipeline.integrations.transformers import (
    LoraPipelineCallback,
    failure_reason,
    map_logs,
    perplexity,
    reporting,
)
from lora_pipeline.pod import MetricsReporter

from .conftest import FakeSupabase


@pytest.fixture
def trainer_objects(tmp_path: Path) -> tuple[TrainingArguments, TrainerState, TrainerControl]:
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=[])
    state = TrainerState(max_steps=100, num_train_epochs=2)
    return args, state, TrainerControl()


def test_trainer_logs_map_to_columns_and_extra() -> None:
    columns, extra = map_logs(
        {"loss": 1.25, "grad_norm": 0.5, "learning_rate": 2e-4, "epoch": 0.3, "num_input_tokens_seen": 4096}
    )
    assert columns == {"train_loss": 1.25, "grad_norm": 0.5, "learning_rate": 2e-4}
    assert extra == {"num_input_tokens_seen": 4096}
    columns, extra = map_logs({"eval_loss": 2.0, "eval_runtime": 1.5, "eval_accuracy": 0.7, "epoch": 1.0})
    assert columns == {"eval_loss": 2.0, "perplexity": math.exp(2.0)}
    assert extra == {"eval_runtime": 1.5, "eval_accuracy": 0.7}


def test_step_logs_of_recent_transformers_with_runtime_and_tokens_are_still_step_logs() -> None:
    # With include_num_input_tokens_seen, Transformers 4.5x+ adds train_runtime and train_tokens_per_second to
    # every step's log; these must not be mistaken for the end-of-training summary.
    logs = {"loss": 6.5, "grad_norm": 0.5, "learning_rate": 1e-3, "epoch": 0.2, "num_input_tokens_seen": 779.0}
    columns, extra = map_logs({**logs, "train_runtime": 0.16, "train_tokens_per_second": 4760.6})
    assert columns == {"train_loss": 6.5, "grad_norm": 0.5, "learning_rate": 1e-3, "tokens_per_second": 4760.6}
    assert extra == {"num_input_tokens_seen": 779.0, "train_runtime": 0.16}


def test_the_end_of_training_summary_never_overwrites_the_last_loss() -> None:
    columns, extra = map_logs(
        {"train_runtime": 12.0, "train_loss": 1.9, "train_tokens_per_second": 900.0, "total_flos": 1e12, "epoch": 2.0}
    )
    assert columns == {}
    assert extra == {
        "train_runtime": 12.0,
        "train_loss_mean": 1.9,
        "train_tokens_per_second": 900.0,
        "total_flos": 1e12,
    }


def test_perplexity_overflows_to_infinity_and_failures_are_classified() -> None:
    assert perplexity(1000.0) == math.inf
    assert math.isnan(perplexity(math.nan))
    assert perplexity(0.0) == 1.0
    assert failure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")) == "oom"
    assert failure_reason(MemoryError()) == "oom"
    assert failure_reason(ValueError("bad batch")) == "training_error"


def test_a_run_reaches_the_job_as_points_and_progress(
    make_reporter: Any, fake_supabase: FakeSupabase, trainer_objects: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    args, state, control = trainer_objects
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda *a, **k: 3 * 2**30)
    reporter = make_reporter(progress_interval=0.05)
    callback = LoraPipelineCallback(reporter)
    callback.on_train_begin(args, state, control)
    for step in (10, 20):
        state.global_step, state.epoch = step, step / 50
        state.num_input_tokens_seen = step * 1000
        callback.on_step_end(args, state, control)
        callback.on_log(
            args,
            state,
            control,
            logs={"loss": 2.0 - step / 100, "learning_rate": 1e-4, "grad_norm": 0.9, "epoch": state.epoch},
        )
        time.sleep(0.05)
    callback.on_log(args, state, control, logs={"eval_loss": 1.5, "eval_accuracy": 0.6, "epoch": state.epoch})
    callback.on_evaluate(args, state, control, metrics={"eval_loss": 1.5, "eval_accuracy": 0.6})
    callback.on_train_end(args, state, control)
    reporter.finish(timeout=5)

    assert fake_supabase.rows[10]["train_loss"] == 1.9 and fake_supabase.rows[10]["epoch"] == 0.2
    at_20 = fake_supabase.rows[20]
    assert (at_20["train_loss"], at_20["eval_loss"]) == (1.8, 1.5), "train and eval rows of one step merge"
    assert at_20["perplexity"] == pytest.approx(math.exp(1.5))
    assert at_20["extra"]["eval_accuracy"] == 0.6
    assert at_20["gpu_memory_gb"] == 3.0
    assert 1_000 < at_20["tokens_per_second"] < 10_000_000, "from the growth of num_input_tokens_seen"
    beats = [body["progress"] for name, body in fake_supabase.requests if name == "pod_heartbeat"]
    assert beats and beats[-1]["step"] == 20 and beats[-1]["total_steps"] == 100


def test_only_the_world_process_zero_reports(
    make_reporter: Any, fake_supabase: FakeSupabase, trainer_objects: Any
) -> None:
    args, state, control = trainer_objects
    state.is_world_process_zero = False
    reporter = make_reporter()
    callback = LoraPipelineCallback(reporter)
    callback.on_log(args, state, control, logs={"loss": 1.0})
    reporter.finish(timeout=5)
    assert fake_supabase.rows == {}


def test_no_hook_ever_raises_into_training(
    fake_supabase: FakeSupabase, trainer_objects: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(MetricsReporter):
        def log(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("boom")

        def flush(self, timeout: float = 0.0) -> bool:
            raise RuntimeError("boom")

    args, state, control = trainer_objects
    reporter = Broken(
        fake_supabase.job_id, "t" * 10, fake_supabase.url, "a" * 10, rank=0, spool_dir=tmp_path, handle_signals=False
    )
    callback = LoraPipelineCallback(reporter)
    with caplog.at_level(logging.WARNING, logger="lora_pipeline"):
        for _ in range(3):
            callback.on_log(args, state, control, logs={"loss": 1.0})
        callback.on_evaluate(args, state, control, metrics={"eval_loss": 1.0})
        callback.on_train_end(args, state, control)
        callback.on_step_end(args, None, control)
    assert len([r for r in caplog.records if "on_log failed" in r.getMessage()]) == 1
    reporter.finish(timeout=1)


def test_fail_marks_the_job_failed_with_the_reason_and_the_last_logs(
    make_reporter: Any, fake_supabase: FakeSupabase, trainer_objects: Any
) -> None:
    args, state, control = trainer_objects
    reporter = make_reporter()
    callback = LoraPipelineCallback(reporter)
    state.global_step = 7
    callback.on_log(args, state, control, logs={"loss": 3.5})
    try:
        raise torch.OutOfMemoryError("CUDA out of memory")
    except torch.OutOfMemoryError as error:
        assert callback.fail(error) is True
    assert callback.fail(RuntimeError("again")) is False, "reported once"
    [body] = [body for name, body in fake_supabase.requests if name == "pod_set_status"]
    assert (body["status"], body["reason"]) == ("failed", "oom")
    assert "CUDA out of memory" in body["message"] and "step 7: train_loss=3.5" in body["message"]
    assert body["error"]["type"] == "OutOfMemoryError" and "Traceback" in body["error"]["traceback"]
    assert fake_supabase.rows[7]["train_loss"] == 3.5, "metrics were flushed first"


def test_reporting_marks_failure_reraises_and_finishes_its_own_reporter(
    fake_supabase: FakeSupabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import ANON_KEY, TOKEN

    for name, value in {
        "LORA_JOB_ID": fake_supabase.job_id,
        "LORA_JOB_TOKEN": TOKEN,
        "SUPABASE_URL": fake_supabase.url,
        "SUPABASE_ANON_KEY": ANON_KEY,
        "LORA_PIPELINE_SPOOL_DIR": str(tmp_path),
        "RANK": "0",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="diverged"), reporting(handle_signals=False) as callback:
        callback.reporter.log(1, loss=math.nan)
        raise ValueError("loss diverged")
    statuses = [body for name, body in fake_supabase.requests if name == "pod_set_status"]
    assert statuses[0]["reason"] == "training_error"
    assert "train_loss" in fake_supabase.rows[1]
    assert callback.reporter.stats().pending == 0 and callback.reporter.log(2) is None
