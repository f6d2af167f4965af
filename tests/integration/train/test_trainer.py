"""``train_lora`` end to end on CPU: a tiny random base model learns the sample support chats."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, TrainerCallback

from lora_pipeline._exceptions import ConfigError
from lora_pipeline.presets import Hyperparameters, resolve_hyperparameters
from lora_pipeline.train import ADAPTER_FILES, SUMMARY_FILE, TrainingDataError, prepare_dataset, train_lora
from lora_pipeline.train.trainer import TrainResult

STEPS = 40


class EventLog(TrainerCallback):  # type: ignore[misc]
    """What a metrics reporter plugged into ``callbacks`` would see."""

    def __init__(self) -> None:
        self.logs: list[dict[str, Any]] = []
        self.evaluations: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.logs.append(dict(logs or {}))

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self.evaluations.append({"step": state.global_step, **(metrics or {})})


def _hyperparameters(**overrides: Any) -> Hyperparameters:
    """Small and hot: a tiny model on a CPU learns in tens of steps with a large learning rate."""
    values = {
        "rank": 16,
        "alpha": 32,
        "dropout": 0.0,
        "learning_rate": 2e-2,
        "batch_size": 8,
        "gradient_accumulation_steps": 1,
        "max_seq_len": 256,
        "warmup_ratio": 0.05,
        "seed": 11,
    }
    return resolve_hyperparameters("balanced", {**values, **overrides})


@pytest.fixture(scope="module")
def run(tiny_base_model: Path, sample_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    events, progress = EventLog(), []
    result = train_lora(
        base_model=tiny_base_model,
        dataset_path=sample_dataset,
        output_dir=tmp_path_factory.mktemp("adapter"),
        hyperparameters=_hyperparameters(max_steps=STEPS),
        callbacks=[events],
        progress=lambda step, total: progress.append((step, total)),
    )
    return {"result": result, "events": events, "progress": progress}


def test_training_loss_falls(run: dict[str, Any]) -> None:
    losses = [loss for _, loss in run["result"].train_loss_history]

    assert len(losses) == STEPS
    assert statistics.mean(losses[-5:]) < statistics.mean(losses[:5]) - 1.0


def test_held_out_loss_falls_below_the_base_model(run: dict[str, Any]) -> None:
    history = run["result"].eval_loss_history

    assert history[0][0] == 0  # the base model, before any step
    assert history[-1][0] == STEPS
    assert len(history) >= 10
    assert history[-1][1] < history[0][1] - 0.75


def test_adapter_files_are_written_as_safetensors(run: dict[str, Any]) -> None:
    result: TrainResult = run["result"]

    assert [path.name for path in result.adapter_files] == list(ADAPTER_FILES)
    assert all(path.is_file() for path in result.adapter_files)
    weights = load_file(result.output_dir / "adapter_model.safetensors")
    assert weights and all("lora_" in name for name in weights)
    config = json.loads((result.output_dir / "adapter_config.json").read_text())
    assert config["r"] == 16
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_the_adapter_loads_back_and_changes_the_logits(run: dict[str, Any], tiny_base_model: Path) -> None:
    batch = torch.tensor([[1, 5, 200, 300, 400, 2, 6]])
    base = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    with torch.no_grad():
        base_logits = base(batch).logits.clone()
        tuned = PeftModel.from_pretrained(base, run["result"].output_dir)
        tuned_logits = tuned(batch).logits

    assert not torch.allclose(base_logits, tuned_logits, atol=1e-3)


def test_summary_records_the_run(run: dict[str, Any], tiny_base_model: Path) -> None:
    result: TrainResult = run["result"]
    summary = json.loads((result.output_dir / SUMMARY_FILE).read_text())

    assert summary == result.summary
    assert summary["base_model"] == str(tiny_base_model)
    assert summary["hyperparameters"]["max_steps"] == STEPS
    assert (summary["steps"], summary["train_examples"], summary["eval_examples"]) == (STEPS, 378, 42)
    assert (summary["dropped_examples"], summary["device"], summary["dtype"]) == (0, "cpu", "float32")
    assert summary["eval_loss_best"] == summary["eval_loss_last"] < summary["eval_loss_first"]
    assert summary["train_loss_best"] <= summary["train_loss_last"] < summary["train_loss_first"]
    assert summary["tokens_seen"] > STEPS * 8 * 40
    assert summary["tokens_per_second"] == pytest.approx(result.tokens_per_second, rel=1e-3)
    assert 0 < summary["train_seconds"] < summary["runtime_seconds"]
    assert 0 < summary["trainable_parameters"] < summary["total_parameters"]
    assert 0 < summary["epochs"] < 1


def test_callbacks_see_losses_learning_rates_and_evaluations(run: dict[str, Any]) -> None:
    events: EventLog = run["events"]
    train_logs = [log for log in events.logs if "loss" in log]

    assert len(train_logs) == STEPS
    assert all({"loss", "grad_norm", "learning_rate"} <= log.keys() for log in train_logs)
    assert [e["step"] for e in events.evaluations] == [s for s, _ in run["result"].eval_loss_history]
    assert all("eval_loss" in e for e in events.evaluations)


def test_progress_reports_every_step(run: dict[str, Any]) -> None:
    assert run["progress"] == [(step, STEPS) for step in range(1, STEPS + 1)]


def test_one_epoch_counts_every_non_padding_token_and_repeats_exactly(
    tiny_base_model: Path, tiny_tokenizer: Any, sample_dataset: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "small.jsonl"
    dataset.write_text("".join(sample_dataset.read_text().splitlines(keepends=True)[:24]))
    hyperparameters = _hyperparameters(epochs=1, batch_size=4, eval_fraction=0.0)

    first = train_lora(
        base_model=tiny_base_model, dataset_path=dataset, output_dir=tmp_path / "a", hyperparameters=hyperparameters
    )
    second = train_lora(
        base_model=tiny_base_model, dataset_path=dataset, output_dir=tmp_path / "b", hyperparameters=hyperparameters
    )

    features = prepare_dataset(dataset, tiny_tokenizer, max_seq_len=256).train
    assert first.summary["tokens_seen"] == sum(len(f["input_ids"]) for f in features)
    assert first.steps == 6 and first.eval_loss_history == []
    assert first.train_loss_history == second.train_loss_history
    first_weights = load_file(first.output_dir / "adapter_model.safetensors")
    second_weights = load_file(second.output_dir / "adapter_model.safetensors")
    assert all(torch.equal(first_weights[name], second_weights[name]) for name in first_weights)


def test_the_last_step_is_evaluated_and_all_linear_with_checkpointing_trains(
    tiny_base_model: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    dataset = tmp_path / "small.jsonl"
    dataset.write_text("".join(sample_dataset.read_text().splitlines(keepends=True)[:40]))
    hyperparameters = _hyperparameters(
        max_steps=5, eval_steps=2, eval_fraction=0.25, target_modules="all-linear", gradient_checkpointing=True
    )

    result = train_lora(
        base_model=tiny_base_model, dataset_path=dataset, output_dir=tmp_path / "out", hyperparameters=hyperparameters
    )

    assert [step for step, _ in result.eval_loss_history] == [0, 2, 4, 5]
    config = json.loads((result.output_dir / "adapter_config.json").read_text())
    wrapped = {name.rsplit(".", 1)[-1] for name in config["target_modules"]}  # peft may store full paths
    assert {"gate_proj", "up_proj", "down_proj", "q_proj", "o_proj"} <= wrapped
    assert (result.summary["train_examples"], result.summary["eval_examples"]) == (30, 10)


def test_a_dataset_without_answers_is_refused(tiny_base_model: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "questions.jsonl"
    dataset.write_text(json.dumps({"messages": [{"role": "user", "content": "Anyone there?"}]}) + "\n")

    with pytest.raises(TrainingDataError, match="nothing to train on") as caught:
        train_lora(
            base_model=tiny_base_model,
            dataset_path=dataset,
            output_dir=tmp_path / "out",
            hyperparameters=_hyperparameters(),
        )
    assert caught.value.report["dropped"] == {"no_trainable_tokens": 1}
    assert not (tmp_path / "out").exists()


def test_a_missing_base_model_directory_is_a_config_error(sample_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="base_model"):
        train_lora(
            base_model=tmp_path / "nowhere",
            dataset_path=sample_dataset,
            output_dir=tmp_path / "out",
            hyperparameters=_hyperparameters(),
        )
