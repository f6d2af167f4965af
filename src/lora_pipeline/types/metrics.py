"""Metric points of a training job (``metrics_points``), as read back through PostgREST."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from .._compat import StrEnum
from ._base import Model

METRIC_COLUMNS: tuple[str, ...] = (
    "train_loss",
    "eval_loss",
    "perplexity",
    "learning_rate",
    "grad_norm",
    "tokens_per_second",
    "gpu_memory_gb",
)
"""The metrics stored in columns of their own; every other metric lives in ``extra``."""

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def parse_non_finite(value: Any) -> Any:
    """``"NaN"``/``"Infinity"``/``"-Infinity"`` (how Postgres writes non-finite float8 in JSON) as floats."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    return value


class Aggregation(StrEnum):
    """How :meth:`~lora_pipeline.resources.metrics.Metrics.final` reduces a metric's history to one value."""

    LAST = "last"
    """The value at the highest step that has one (NaN included: a run that diverged ends in NaN)."""
    MIN = "min"
    """The smallest value, ignoring NaN (NaN only when every value is NaN)."""
    MAX = "max"
    """The largest value, ignoring NaN (NaN only when every value is NaN)."""


class MetricPoint(Model):
    """One row of ``metrics_points``: every metric of one job at one step."""

    job_id: str | None = None
    user_id: str | None = None
    step: int
    """Optimizer step (``TrainerState.global_step``)."""
    epoch: float = 0.0
    """Fractional epoch; 0 when the pod did not say."""
    train_loss: float | None = None
    """Training loss (the Trainer's mean over the logging window)."""
    eval_loss: float | None = None
    """Evaluation loss."""
    perplexity: float | None = None
    """``exp(eval_loss)``; ``inf`` when it overflows."""
    learning_rate: float | None = None
    grad_norm: float | None = None
    """Gradient norm before clipping."""
    tokens_per_second: float | None = None
    """Training throughput in input tokens per second."""
    gpu_memory_gb: float | None = None
    """Peak GPU memory allocated, in GiB."""
    extra: dict[str, Any] = Field(default_factory=dict)
    """Every other metric by name (e.g. ``eval_accuracy``, ``train_runtime``)."""
    recorded_at: datetime | None = None
    """When the pod logged the point."""

    @field_validator(*METRIC_COLUMNS, "epoch", mode="before")
    @classmethod
    def _non_finite(cls, value: Any) -> Any:
        return parse_non_finite(value)

    @field_validator("extra", mode="before")
    @classmethod
    def _non_finite_extra(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: parse_non_finite(item) for key, item in value.items()}
        return {} if value is None else value

    def value(self, metric: str) -> float | None:
        """The value of ``metric`` (a column or an ``extra`` key) at this step, when it is a number."""
        found = getattr(self, metric, None) if metric in METRIC_COLUMNS else self.extra.get(metric)
        if isinstance(found, bool) or not isinstance(found, (int, float)):
            return None
        return float(found)

    def metrics(self) -> dict[str, float]:
        """Every numeric metric of this point (columns and ``extra``), without step and epoch."""
        names = [*METRIC_COLUMNS, *self.extra]
        return {name: value for name in names if (value := self.value(name)) is not None}


__all__ = ["METRIC_COLUMNS", "Aggregation", "MetricPoint", "parse_non_finite"]
