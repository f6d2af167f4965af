"""``train_lora``: LoRA supervised fine-tuning of a causal LM with peft and the Transformers ``Trainer``.

The pod program calls this once per job. Everything it needs to know comes in as arguments, everything it
produces lands in ``output_dir`` (the adapter and ``training_summary.json``) and in the returned
``TrainResult``; progress leaves through ``callbacks`` (the metrics reporter) and ``progress``. It does no
network I/O of its own beyond what ``from_pretrained`` does for a hub model id.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peft
import torch
import transformers
from peft import LoraConfig, PeftModel, get_peft_model
from pydantic import BaseModel, ConfigDict
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from .._exceptions import ConfigError
from ..datasets.formats import DatasetFormat
from ..presets import Hyperparameters
from ._callbacks import LogLines, LossRecorder, ProgressCallback, ThroughputMeter
from ._records import TrainingDataError
from .data import PaddingCollator, PreparedDataset, prepare_dataset

ADAPTER_FILES = ("adapter_model.safetensors", "adapter_config.json")
SUMMARY_FILE = "training_summary.json"
EVALUATIONS_PER_RUN = 10
"""How often the held-out split is evaluated when ``eval_steps`` is not set."""

ProgressFunction = Callable[[int, int], None]
"""Called after every optimizer step with ``(step, total_steps)``."""


class TrainResult(BaseModel):
    """What a training run produced."""

    model_config = ConfigDict(frozen=True)

    output_dir: Path
    adapter_files: list[Path]
    """``adapter_model.safetensors`` and ``adapter_config.json``, loadable with ``PeftModel.from_pretrained``."""
    summary: dict[str, Any]
    """The contents of ``training_summary.json``."""
    train_loss_history: list[tuple[int, float]]
    """``(optimizer step, training loss)`` at every logging step."""
    eval_loss_history: list[tuple[int, float]]
    """``(optimizer step, held-out loss)``; step 0 is the base model before training."""
    steps: int
    """Optimizer steps taken."""
    tokens_per_second: float
    """Non-padding tokens trained on per second of training steps (evaluation time excluded)."""


@dataclass(frozen=True)
class _Precision:
    device: str
    dtype: torch.dtype
    bf16: bool = False
    fp16: bool = False


def train_lora(
    *,
    base_model: str | Path,
    dataset_path: str | Path,
    output_dir: str | Path,
    hyperparameters: Hyperparameters,
    callbacks: Sequence[TrainerCallback] = (),
    dataset_format: DatasetFormat | str | None = None,
    progress: ProgressFunction | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on a dataset and save it with a training summary.

    Trains on assistant turns only (all of the text for ``text`` datasets), holds out ``eval_fraction`` of
    the records, evaluates before training, about ten times during it and at the end, and saves the
    adapter in safetensors. bf16 on a CUDA GPU that supports it, fp16 mixed precision on older GPUs, fp32
    on CPU. Deterministic for a given ``hyperparameters.seed`` on the same hardware.

    Args:
        base_model: a Hugging Face hub model id, or a local directory saved with ``save_pretrained``.
        dataset_path: a JSONL or JSON-array file in any accepted format.
        output_dir: where the adapter files and ``training_summary.json`` are written.
        hyperparameters: see ``lora_pipeline.presets``; ``max_steps`` overrides ``epochs``.
        callbacks: ``TrainerCallback`` objects; their ``on_log`` receives ``loss``, ``grad_norm`` and
            ``learning_rate``, their ``on_evaluate`` receives ``eval_loss``.
        dataset_format: read every record as this format; detected per record when ``None``.
        progress: called with ``(step, total_steps)`` after every optimizer step.

    Returns:
        A ``TrainResult`` with the adapter files, the summary and the loss histories.

    Raises:
        ConfigError: ``base_model`` is a path that does not exist.
        TrainingDataError: the file cannot be read, or no example has a trainable token.

    Example::

        result = train_lora(base_model="Qwen/Qwen2.5-0.5B-Instruct", dataset_path=Path("chat.jsonl"),
                            output_dir=Path("adapter"), hyperparameters=resolve_hyperparameters("balanced"))
        print(result.summary["eval_loss_last"])
    """
    started = time.perf_counter()
    output_dir = Path(output_dir)
    set_seed(hyperparameters.seed)
    precision = _precision()
    tokenizer = _load_tokenizer(base_model)
    data = _prepare(dataset_path, tokenizer, hyperparameters, dataset_format)
    model = _lora_model(_load_model(base_model, precision), hyperparameters)
    recorder, meter = LossRecorder(), ThroughputMeter()
    trainer = Trainer(
        model=model,
        args=_training_arguments(hyperparameters, output_dir, data, precision),
        train_dataset=data.train,
        eval_dataset=data.eval or None,
        data_collator=PaddingCollator(tokenizer.pad_token_id, 8 if precision.device == "cuda" else None),
        callbacks=[*callbacks, recorder, meter, LogLines(), *([ProgressCallback(progress)] if progress else [])],
    )
    trainer.remove_callback(PrinterCallback)  # prints every log dict to stdout; LogLines logs them instead
    trainer.train()
    if data.eval and recorder.last_eval_step != trainer.state.global_step:
        trainer.evaluate()
    model.save_pretrained(str(output_dir), safe_serialization=True)
    summary = _summary(base_model, hyperparameters, data, model, trainer, recorder, meter, precision, started)
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return TrainResult(
        output_dir=output_dir,
        adapter_files=[output_dir / name for name in ADAPTER_FILES],
        summary=summary,
        train_loss_history=recorder.train_losses,
        eval_loss_history=recorder.eval_losses,
        steps=trainer.state.global_step,
        tokens_per_second=meter.tokens_per_second(trainer.state.num_input_tokens_seen),
    )


def planned_steps(train_examples: int, hyperparameters: Hyperparameters) -> int:
    """Optimizer steps the run will take: ``max_steps``, or ``epochs`` passes over the training split."""
    if hyperparameters.max_steps is not None:
        return hyperparameters.max_steps
    batches = math.ceil(train_examples / hyperparameters.batch_size)
    per_epoch = max(1, math.ceil(batches / hyperparameters.gradient_accumulation_steps))
    return max(1, math.ceil(per_epoch * hyperparameters.epochs))


def _precision() -> _Precision:
    if not torch.cuda.is_available():
        return _Precision("cpu", torch.float32)
    if torch.cuda.is_bf16_supported():
        return _Precision("cuda", torch.bfloat16, bf16=True)
    # Pre-Ampere GPUs lack bf16: keep fp32 weights and train under fp16 autocast (the usual mixed precision).
    return _Precision("cuda", torch.float32, fp16=True)


def _load_tokenizer(base_model: str | Path) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(str(_existing(base_model)))
    if tokenizer.pad_token is None:
        # Many base models ship without a pad token; padded positions are masked out of loss and attention.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load_model(base_model: str | Path, precision: _Precision) -> Any:
    return AutoModelForCausalLM.from_pretrained(str(_existing(base_model)), dtype=precision.dtype)


def _existing(base_model: str | Path) -> str | Path:
    if isinstance(base_model, Path) and not base_model.is_dir():
        raise ConfigError(
            f"base_model {str(base_model)!r} is not a directory: pass a model directory saved with "
            "save_pretrained, or a Hugging Face hub id as a string",
            argument="base_model",
        )
    return base_model


def _prepare(
    dataset_path: str | Path, tokenizer: Any, hyperparameters: Hyperparameters, dataset_format: Any
) -> PreparedDataset:
    data = prepare_dataset(
        dataset_path,
        tokenizer,
        max_seq_len=hyperparameters.max_seq_len,
        eval_fraction=hyperparameters.eval_fraction,
        seed=hyperparameters.seed,
        dataset_format=dataset_format,
    )
    if not data.train:
        report = {"path": str(dataset_path), "records": data.records, "dropped": data.dropped}
        raise TrainingDataError(
            f"nothing to train on in {dataset_path}: {data.records} records, {data.dropped_examples} dropped "
            f"({_reasons(data.dropped)}). Check that conversations have assistant turns, that the format is "
            f"one of {', '.join(DatasetFormat)}, and that max_seq_len ({hyperparameters.max_seq_len}) leaves "
            "room for the answers.",
            report=report,
        )
    return data


def _reasons(dropped: dict[str, int]) -> str:
    return ", ".join(f"{count} {reason.replace('_', ' ')}" for reason, count in dropped.items()) or "none"


def _lora_model(model: Any, hyperparameters: Hyperparameters) -> PeftModel:
    target, alpha = hyperparameters.target_modules, hyperparameters.alpha
    config = LoraConfig(
        r=hyperparameters.rank,
        lora_alpha=int(alpha) if alpha.is_integer() else alpha,  # type: ignore[arg-type]  # peft takes floats
        lora_dropout=hyperparameters.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _training_arguments(
    hyperparameters: Hyperparameters, output_dir: Path, data: PreparedDataset, precision: _Precision
) -> TrainingArguments:
    total_steps = planned_steps(len(data.train), hyperparameters)
    evaluate = bool(data.eval)
    eval_steps = hyperparameters.eval_steps or max(1, round(total_steps / EVALUATIONS_PER_RUN))
    return TrainingArguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=hyperparameters.batch_size,
        per_device_eval_batch_size=hyperparameters.batch_size,
        gradient_accumulation_steps=hyperparameters.gradient_accumulation_steps,
        num_train_epochs=hyperparameters.epochs,
        max_steps=hyperparameters.max_steps or -1,
        learning_rate=hyperparameters.learning_rate,
        lr_scheduler_type=hyperparameters.lr_scheduler,
        warmup_steps=math.ceil(total_steps * hyperparameters.warmup_ratio),
        weight_decay=hyperparameters.weight_decay,
        activation_checkpointing=hyperparameters.gradient_checkpointing,
        bf16=precision.bf16,
        fp16=precision.fp16,
        logging_steps=hyperparameters.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps if evaluate else None,
        eval_on_start=evaluate,
        prediction_loss_only=True,
        include_num_input_tokens_seen="non_padding",
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_pin_memory=precision.device == "cuda",
        seed=hyperparameters.seed,
        data_seed=hyperparameters.seed,
    )


def _summary(
    base_model: str | Path,
    hyperparameters: Hyperparameters,
    data: PreparedDataset,
    model: PeftModel,
    trainer: Trainer,
    recorder: LossRecorder,
    meter: ThroughputMeter,
    precision: _Precision,
    started: float,
) -> dict[str, Any]:
    """The facts about the run people ask for afterwards, as JSON-ready values."""
    state = trainer.state
    parameters = model.get_nb_trainable_parameters()
    return {
        "base_model": str(base_model),
        "hyperparameters": hyperparameters.model_dump(mode="json"),
        "steps": state.global_step,
        "epochs": round(state.epoch or 0.0, 4),
        "train_examples": len(data.train),
        "eval_examples": len(data.eval),
        "dropped_examples": data.dropped_examples,
        "dropped_reasons": data.dropped,
        "truncated_examples": data.truncated,
        **_loss_fields("train_loss", recorder.train_losses),
        **_loss_fields("eval_loss", recorder.eval_losses),
        "tokens_seen": state.num_input_tokens_seen,
        "tokens_per_second": round(meter.tokens_per_second(state.num_input_tokens_seen), 1),
        "train_seconds": round(meter.seconds, 3),
        "runtime_seconds": round(time.perf_counter() - started, 3),
        "device": _device_name(precision),
        "dtype": str(precision.dtype).removeprefix("torch."),
        "mixed_precision": "bf16" if precision.bf16 else "fp16" if precision.fp16 else None,
        "trainable_parameters": parameters[0],
        "total_parameters": parameters[1],
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }


def _loss_fields(name: str, history: list[tuple[int, float]]) -> dict[str, float | None]:
    losses = [loss for _, loss in history]
    return {
        f"{name}_first": losses[0] if losses else None,
        f"{name}_last": losses[-1] if losses else None,
        f"{name}_best": min(losses) if losses else None,
    }


def _device_name(precision: _Precision) -> str:
    if precision.device == "cuda":
        return f"cuda ({torch.cuda.get_device_name()})"
    return "cpu"


__all__ = ["ADAPTER_FILES", "SUMMARY_FILE", "TrainResult", "planned_steps", "train_lora"]
