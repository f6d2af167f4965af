"""Hyperparameter presets and the typed hyperparameters a training job runs with.

``conservative`` trains a small adapter gently (few epochs, low rank), ``balanced`` is the default, and
``aggressive`` trains a large adapter hard. Any field can be overridden per job.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ._exceptions import ConfigError


class Hyperparameters(BaseModel):
    """What the LoRA trainer needs to know. Stored as ``training_jobs.hyperparameters``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(ge=1, le=1024)
    """LoRA rank r."""
    alpha: float = Field(gt=0)
    """LoRA scaling alpha (the update is scaled by alpha / r)."""
    dropout: float = Field(ge=0, lt=1)
    """Dropout on the LoRA branch."""
    learning_rate: float = Field(gt=0, le=1)
    epochs: float = Field(gt=0, le=100)
    """Passes over the training split (fractions allowed)."""
    batch_size: int = Field(ge=1, le=1024)
    """Examples per device per step."""
    gradient_accumulation_steps: int = Field(ge=1, le=1024)
    max_seq_len: int = Field(ge=16, le=131072)
    """Longer examples are truncated to this many tokens."""
    target_modules: tuple[str, ...] | str = ("q_proj", "k_proj", "v_proj", "o_proj")
    """Module names LoRA wraps, or ``"all-linear"``."""
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    lr_scheduler: str = "cosine"
    eval_fraction: float = Field(default=0.1, ge=0, lt=0.9)
    """Share of examples held out for evaluation."""
    eval_steps: int | None = Field(default=None, ge=1)
    """Evaluate every N optimizer steps (default: about ten times per run)."""
    logging_steps: int = Field(default=1, ge=1)
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimizer steps (overrides epochs)."""
    gradient_checkpointing: bool = False
    seed: int = 42
    quantization: Literal["4bit", "8bit"] | None = None
    """QLoRA: load the frozen base model with bitsandbytes (NF4 with double quantisation, or int8); CUDA only."""
    packing: bool = False
    """Pack examples into ``max_seq_len`` rows without padding (TRL's best-fit packing, padding-free)."""
    checkpoint_steps: int | None = Field(default=100, ge=1)
    """Save a resumable checkpoint every N optimizer steps (only the latest is kept); ``None``: never."""
    report_to: tuple[Literal["wandb", "mlflow", "tensorboard"], ...] = ()
    """Experiment trackers the Transformers integrations report to beside lora-pipeline's own metrics."""

    @model_validator(mode="after")
    def _consistent(self) -> Hyperparameters:
        if isinstance(self.target_modules, str) and self.target_modules != "all-linear":
            raise ValueError("target_modules must be a list of module names or 'all-linear'")
        if len(set(self.report_to)) != len(self.report_to):
            raise ValueError("report_to names an integration twice")
        return self

    @property
    def effective_batch_size(self) -> int:
        """Examples per optimizer step on one GPU; multiply by the GPU count for a data-parallel run."""
        return self.batch_size * self.gradient_accumulation_steps


PRESETS: dict[str, Hyperparameters] = {
    "conservative": Hyperparameters(
        rank=8,
        alpha=16,
        dropout=0.05,
        learning_rate=1e-4,
        epochs=2,
        batch_size=4,
        gradient_accumulation_steps=4,
        max_seq_len=1024,
    ),
    "balanced": Hyperparameters(
        rank=16,
        alpha=32,
        dropout=0.05,
        learning_rate=2e-4,
        epochs=3,
        batch_size=4,
        gradient_accumulation_steps=4,
        max_seq_len=2048,
    ),
    "aggressive": Hyperparameters(
        rank=64,
        alpha=128,
        dropout=0.1,
        learning_rate=3e-4,
        epochs=5,
        batch_size=8,
        gradient_accumulation_steps=2,
        max_seq_len=4096,
        target_modules="all-linear",
    ),
}
"""The three presets; ``balanced`` is the default."""


def resolve_hyperparameters(preset: str = "balanced", overrides: dict[str, Any] | None = None) -> Hyperparameters:
    """The preset's hyperparameters with ``overrides`` applied and validated.

    Raises:
        ConfigError: an unknown preset, an unknown field, or a value out of range (the message names it).
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}", argument="preset")
    values = PRESETS[preset].model_dump()
    values.update(overrides or {})
    for name in ("target_modules", "report_to"):
        if isinstance(values.get(name), list):
            values[name] = tuple(values[name])
    try:
        return Hyperparameters(**values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'hyperparameters'}: {e['msg']}" for e in error.errors()
        )
        raise ConfigError(f"invalid hyperparameters: {problems}", argument="hyperparameters") from None


__all__ = ["PRESETS", "Hyperparameters", "resolve_hyperparameters"]
