"""``train_lora``: LoRA supervised fine-tuning of a causal LM with TRL's ``SFTTrainer`` and peft.

The pod program calls this once per job. Everything it needs to know comes in as arguments, everything it
produces lands in ``output_dir`` (the adapter and ``training_summary.json``) and in the returned
``TrainResult``; progress leaves through ``callbacks`` (the metrics reporter) and ``progress``; resumable
state lands in ``checkpoint_dir``. It does no network I/O of its own beyond what ``from_pretrained`` does
for a hub model id (and what the ``report_to`` integrations do).

TRL does the training loop, collation (padding, or padding-free best-fit packing), truncation and the
LoRA wrapping, QLoRA's adapter casting included. The examples reach it already tokenized with their labels
(``data.py``): the five dataset formats are rendered with the tokenizer's own chat template and the
assistant turns located by character offsets, which masks the prompt exactly for any template, where
TRL's ``assistant_only_loss`` needs ``{% generation %}`` markers that most published templates lack.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import peft
import torch
import transformers
import trl
from datasets import Dataset
from peft import PeftModel
from pydantic import BaseModel, ConfigDict
from transformers import PrinterCallback, TrainerCallback, set_seed
from trl import SFTConfig, SFTTrainer  # type: ignore[attr-defined]  # trl's lazy module hides its names

from .._logging import get_logger
from ..datasets.formats import DatasetFormat
from ..presets import Hyperparameters
from ._callbacks import LogLines, LossRecorder, MainProcessOnly, ProgressCallback, StopTogether, ThroughputMeter
from ._checkpoints import checkpoint_step, latest_checkpoint
from ._model import (
    Precision,
    load_model,
    load_tokenizer,
    lora_config,
    precision,
    refuse_missing_trackers,
    refuse_quantization_without_cuda,
)
from ._records import TrainingDataError
from .data import Features, PreparedDataset, prepare_dataset

log = get_logger("train")
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
    """``(optimizer step, training loss)`` at every logging step of this process's run."""
    eval_loss_history: list[tuple[int, float]]
    """``(optimizer step, held-out loss)``; step 0 is the base model before training."""
    steps: int
    """Optimizer steps taken, counting those before the checkpoint a run resumed from."""
    resumed_from_step: int = 0
    """The checkpoint's step when the run resumed from one, else 0."""
    tokens_per_second: float
    """Non-padding tokens trained on per second of training steps (evaluation time excluded)."""


def train_lora(
    *,
    base_model: str | Path,
    dataset_path: str | Path,
    output_dir: str | Path,
    hyperparameters: Hyperparameters,
    callbacks: Sequence[TrainerCallback] = (),
    dataset_format: DatasetFormat | str | None = None,
    progress: ProgressFunction | None = None,
    checkpoint_dir: str | Path | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on a dataset and save it with a training summary.

    Trains on assistant turns only (all of the text for ``text`` datasets), holds out ``eval_fraction`` of
    the records, evaluates before training, about ten times during it and at the end, and saves the
    adapter in safetensors. bf16 on a CUDA GPU that supports it, fp16 mixed precision on older GPUs, fp32
    on CPU; 4- or 8-bit base weights with ``quantization`` (CUDA only). Deterministic for a given
    ``hyperparameters.seed`` on the same hardware. Under ``accelerate launch``/``torchrun`` it trains data
    parallel, and only the main process calls ``callbacks``/``progress`` and writes ``output_dir``.

    Args:
        base_model: a Hugging Face hub model id, or a local directory saved with ``save_pretrained``.
        dataset_path: a JSONL or JSON-array file in any accepted format.
        output_dir: where the adapter files and ``training_summary.json`` are written.
        hyperparameters: see ``lora_pipeline.presets``; ``max_steps`` overrides ``epochs``.
        callbacks: ``TrainerCallback`` objects; their ``on_log`` receives ``loss``, ``grad_norm`` and
            ``learning_rate``, their ``on_evaluate`` receives ``eval_loss``.
        dataset_format: read every record as this format; detected per record when ``None``.
        progress: called with ``(step, total_steps)`` after every optimizer step.
        checkpoint_dir: save a checkpoint here every ``checkpoint_steps`` steps (only the latest kept) and
            resume from the latest one found; ``None`` saves none.

    Returns:
        A ``TrainResult`` with the adapter files, the summary and the loss histories.

    Raises:
        ConfigError: ``base_model`` is a path that does not exist, ``quantization`` is set without CUDA, or a
            ``report_to`` integration is not installed.
        TrainingDataError: the file cannot be read, or no example has a trainable token.

    Example::

        result = train_lora(base_model="Qwen/Qwen2.5-0.5B-Instruct", dataset_path=Path("chat.jsonl"),
                            output_dir=Path("adapter"), hyperparameters=resolve_hyperparameters("balanced"))
        print(result.summary["eval_loss_last"])
    """
    started = time.perf_counter()
    output_dir = Path(output_dir)
    refuse_quantization_without_cuda(hyperparameters)
    refuse_missing_trackers(hyperparameters)
    set_seed(hyperparameters.seed)
    where = precision()
    tokenizer = load_tokenizer(base_model)
    data = _prepare(dataset_path, tokenizer, hyperparameters, dataset_format)
    resume = latest_checkpoint(checkpoint_dir)
    recorder, meter = LossRecorder(), ThroughputMeter()
    own = [*callbacks, *([ProgressCallback(progress)] if progress else [])]
    trainer = SFTTrainer(
        model=load_model(base_model, hyperparameters, where),
        args=_sft_config(hyperparameters, data, where, checkpoint_dir, output_dir, resuming=bool(resume)),
        train_dataset=_dataset(data.train),
        eval_dataset=_dataset(data.eval) if data.eval else None,
        processing_class=tokenizer,
        peft_config=lora_config(hyperparameters),
        callbacks=[*(MainProcessOnly(callback) for callback in own), recorder, meter, LogLines(), StopTogether()],
    )
    trainer.remove_callback(PrinterCallback)  # prints every log dict to stdout; LogLines logs them instead
    if resume:
        log.info("resuming from %s (step %d)", resume.name, checkpoint_step(resume))
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if data.eval and recorder.last_eval_step != trainer.state.global_step:
        trainer.evaluate()
    model: PeftModel = trainer.model  # type: ignore[assignment]  # peft_config made it a PeftModel
    summary = _summary(base_model, hyperparameters, data, model, trainer, recorder, meter, where, started)
    summary["resumed_from_step"] = checkpoint_step(resume)
    if trainer.is_world_process_zero():
        model.save_pretrained(str(output_dir), safe_serialization=True)
        (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return TrainResult(
        output_dir=output_dir,
        adapter_files=[output_dir / name for name in ADAPTER_FILES],
        summary=summary,
        train_loss_history=recorder.train_losses,
        eval_loss_history=recorder.eval_losses,
        steps=trainer.state.global_step,
        resumed_from_step=checkpoint_step(resume),
        tokens_per_second=meter.tokens_per_second(meter.tokens),
    )


def planned_steps(train_examples: int, hyperparameters: Hyperparameters) -> int:
    """Optimizer steps the run will take: ``max_steps``, or ``epochs`` passes over the training split."""
    if hyperparameters.max_steps is not None:
        return hyperparameters.max_steps
    batches = math.ceil(train_examples / hyperparameters.batch_size)
    per_epoch = max(1, math.ceil(batches / hyperparameters.gradient_accumulation_steps))
    return max(1, math.ceil(per_epoch * hyperparameters.epochs))


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


def _dataset(features: list[Features]) -> Dataset:
    """Tokenized examples with their labels: TRL skips its own tokenizing and label building for these."""
    return Dataset.from_dict(
        {"input_ids": [f["input_ids"] for f in features], "labels": [f["labels"] for f in features]}
    )


def _sft_config(
    hyperparameters: Hyperparameters,
    data: PreparedDataset,
    where: Precision,
    checkpoint_dir: str | Path | None,
    output_dir: Path,
    *,
    resuming: bool,
) -> SFTConfig:
    total_steps = planned_steps(len(data.train), hyperparameters)
    evaluate = bool(data.eval)
    eval_steps = hyperparameters.eval_steps or max(1, round(total_steps / EVALUATIONS_PER_RUN))
    saving = checkpoint_dir is not None and hyperparameters.checkpoint_steps is not None
    return SFTConfig(
        output_dir=str(checkpoint_dir or output_dir),
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
        bf16=where.bf16,
        fp16=where.fp16,
        max_length=hyperparameters.max_seq_len if hyperparameters.packing else None,  # data.py truncated
        packing=hyperparameters.packing,
        packing_strategy="bfd",
        pad_to_multiple_of=8 if where.device == "cuda" and not hyperparameters.packing else None,
        completion_only_loss=False,  # the labels already mask the prompt
        assistant_only_loss=False,
        dataset_num_proc=None,
        logging_steps=hyperparameters.logging_steps,
        logging_first_step=True,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=eval_steps if evaluate else None,
        eval_on_start=evaluate and not resuming,  # a resumed run evaluated its start the first time
        prediction_loss_only=True,
        include_num_input_tokens_seen="non_padding",
        save_strategy="steps" if saving else "no",
        save_steps=hyperparameters.checkpoint_steps or 500,
        save_total_limit=1,
        save_only_model=False,
        report_to=list(hyperparameters.report_to) or "none",
        disable_tqdm=True,
        dataloader_pin_memory=where.device == "cuda",
        ddp_find_unused_parameters=False,
        use_cpu=where.device == "cpu",  # without it a CPU run under torchrun would not be data parallel
        seed=hyperparameters.seed,
        data_seed=hyperparameters.seed,
    )


def _summary(
    base_model: str | Path,
    hyperparameters: Hyperparameters,
    data: PreparedDataset,
    model: PeftModel,
    trainer: SFTTrainer,
    recorder: LossRecorder,
    meter: ThroughputMeter,
    where: Precision,
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
        "tokens_per_second": round(meter.tokens_per_second(meter.tokens), 1),
        "train_seconds": round(meter.seconds, 3),
        "runtime_seconds": round(time.perf_counter() - started, 3),
        "device": _device_name(where),
        "dtype": str(where.dtype).removeprefix("torch."),
        "mixed_precision": "bf16" if where.bf16 else "fp16" if where.fp16 else None,
        "quantization": hyperparameters.quantization,
        "processes": trainer.args.world_size,
        "global_batch_size": hyperparameters.effective_batch_size * trainer.args.world_size,
        "trainable_parameters": parameters[0],
        "total_parameters": parameters[1],
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "peft": peft.__version__,
            "trl": trl.__version__,
        },
    }


def _loss_fields(name: str, history: list[tuple[int, float]]) -> dict[str, float | None]:
    losses = [loss for _, loss in history]
    return {
        f"{name}_first": losses[0] if losses else None,
        f"{name}_last": losses[-1] if losses else None,
        f"{name}_best": min(losses) if losses else None,
    }


def _device_name(where: Precision) -> str:
    if where.device == "cuda":
        return f"cuda ({torch.cuda.get_device_name()})"
    return "cpu"


__all__ = ["ADAPTER_FILES", "SUMMARY_FILE", "TrainResult", "planned_steps", "train_lora"]
