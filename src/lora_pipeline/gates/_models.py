"""What a gate checks (:class:`Condition`, one ``model_baselines`` row) and what it compares against
(:class:`ResolvedBaseline`).

A condition refuses inconsistent definitions when it is created, not when the gate runs: a gate that
discovers at evaluation time that it cannot judge anything would either block a good model or wave a bad
one through (research/tracking.md §2.1, MLflow's constructor checks).
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from ._enums import Aggregation, BaselineSource, Direction, Kind, OnMissing, Severity

_SHA256 = re.compile(r"^[0-9a-f]{64}$")

DEFAULT_DELTA_TOLERANCE = 0.0
"""A delta condition without a threshold allows no regression at all."""
DEFAULT_RATIO_BOUND = 1.0
"""A ratio condition without a threshold must be no worse than the baseline."""


def _normalise_sha256(value: Any) -> Any:
    """Lowercase a hex digest so one pasted in upper case still matches the SQL check and comparisons."""
    return value.strip().lower() if isinstance(value, str) else value


Sha256 = Annotated[str | None, BeforeValidator(_normalise_sha256)]


class Condition(BaseModel):
    """One gate condition: a ``model_baselines`` row, column for column.

    Example::

        Condition(metric="eval_loss", kind="max", threshold=1.8)
        Condition(metric="eval_loss", kind="delta", direction="lower_is_better", threshold=0.05,
                  source="champion")
        Condition(metric="perplexity", kind="ratio", direction="lower_is_better", threshold=1.05,
                  baseline_value=6.2, severity="warning")

    Raises:
        pydantic.ValidationError: the definition is inconsistent; the message lists every problem and
            how to fix it.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str | None = None
    """The row's id; ``None`` for a condition not saved yet. Keys its entry in ``evaluate``'s baselines."""
    model_name: str | None = Field(default=None, min_length=1, max_length=200)
    """The model the condition belongs to; the resource layer fills it in when saving."""
    version: str | None = None
    """Free-form version label of the gate definition."""
    metric: str = Field(min_length=1, max_length=200)
    """The metric name, as the job reports it (``eval_loss``, ``perplexity``, ...)."""
    kind: Kind
    """How the value is compared: ``min``, ``max``, ``delta`` or ``ratio``."""
    direction: Direction | None = None
    """Which way is better; required for delta and ratio, ignored by min and max."""
    threshold: float | None = None
    """min/max: the bound. delta: tolerated regression, ``>= 0`` (default 0). ratio: bound, ``>= 0``
    (default 1.0): an upper bound when lower is better, a lower bound when higher is better."""
    baseline_value: float | None = None
    """The pinned baseline; required for delta and ratio with ``source="pinned"``."""
    source: BaselineSource = BaselineSource.PINNED
    """Where the baseline comes from: ``pinned``, ``champion`` or ``job``."""
    baseline_job_id: str | None = None
    """The baseline job when ``source="job"``; must be empty otherwise (as the SQL check requires)."""
    aggregation: Aggregation = Aggregation.LAST
    """Which of the job's values is read: ``last``, ``min`` or ``max``."""
    severity: Severity = Severity.CRITICAL
    """What a failure does: ``critical`` blocks, ``warning`` warns, ``info`` records."""
    on_missing: OnMissing = OnMissing.FAIL
    """What a candidate without the metric means: ``fail``, ``warn`` or ``skip``."""
    eval_dataset_sha256: Sha256 = None
    """SHA-256 of the eval dataset the pinned baseline was measured on; a different candidate hash makes
    the comparison ``incomparable``."""
    active: bool = True
    """Inactive conditions are kept for history and skipped by the gate."""

    @model_validator(mode="after")
    def _refuse_inconsistent(self) -> Condition:
        problems = [*_number_problems(self), *_kind_problems(self), *_source_problems(self)]
        if problems:
            raise ValueError(f"condition on {self.metric!r}: " + "; ".join(problems))
        return self

    @property
    def bound(self) -> float:
        """The threshold actually applied, with the delta (0) and ratio (1.0) defaults filled in."""
        if self.threshold is not None:
            return self.threshold
        return DEFAULT_RATIO_BOUND if self.kind is Kind.RATIO else DEFAULT_DELTA_TOLERANCE

    @property
    def label(self) -> str:
        """The metric as messages name it: ``eval_loss``, or ``min(eval_loss)`` for another aggregation."""
        if self.aggregation is Aggregation.LAST:
            return self.metric
        return f"{self.aggregation.value}({self.metric})"

    def to_row(self) -> dict[str, Any]:
        """The ``model_baselines`` columns this condition sets (``id`` only when it has one)."""
        row = self.model_dump(mode="json")
        if row["id"] is None:
            del row["id"]
        return row


def _number_problems(condition: Condition) -> list[str]:
    problems = [
        f"{name} must be a finite number (got {value}); NaN and infinity cannot be compared"
        for name, value in (("threshold", condition.threshold), ("baseline_value", condition.baseline_value))
        if value is not None and not math.isfinite(value)
    ]
    digest = condition.eval_dataset_sha256
    if digest is not None and not _SHA256.match(digest):
        problems.append(f"eval_dataset_sha256 must be 64 hex characters, a SHA-256 digest (got {digest!r})")
    return problems


_NEEDS_DIRECTION = (
    "kind={kind!r} needs a direction: direction='lower_is_better' (loss, perplexity) "
    "or direction='higher_is_better' (accuracy, throughput)"
)
_NEGATIVE_BOUND = {
    Kind.DELTA: "a delta tolerance cannot be negative (got {threshold}): threshold is how much worse than "
    "the baseline the candidate may be; use 0 to allow no regression",
    Kind.RATIO: "a ratio bound cannot be below 0 (got {threshold}): use e.g. 1.05 (at most 5% worse, lower "
    "is better) or 0.8 (at least 80% of the baseline, higher is better)",
}


def _kind_problems(condition: Condition) -> list[str]:
    kind, threshold = condition.kind, condition.threshold
    if not kind.needs_baseline:
        goal = "reach" if kind is Kind.MIN else "stay under"
        needs = f"kind={kind.value!r} needs a threshold: the value the metric must {goal} (e.g. threshold=0.8)"
        return [] if threshold is not None else [needs]
    problems = [] if condition.direction is not None else [_NEEDS_DIRECTION.format(kind=kind.value)]
    if threshold is not None and threshold < 0:
        problems.append(_NEGATIVE_BOUND[kind].format(threshold=threshold))
    return problems


def _source_problems(condition: Condition) -> list[str]:
    source, kind = condition.source, condition.kind
    problems = []
    if source is BaselineSource.PINNED and kind.needs_baseline and condition.baseline_value is None:
        problems.append(
            f"source='pinned' with kind={kind.value!r} needs baseline_value, the value to compare with; "
            "or use source='champion' to compare with the last job that passed the gate"
        )
    if source is BaselineSource.JOB and condition.baseline_job_id is None:
        problems.append("source='job' needs baseline_job_id: the training job whose metrics are the baseline")
    if source is not BaselineSource.JOB and condition.baseline_job_id is not None:
        problems.append(
            f"baseline_job_id is only used with source='job' (got source={source.value!r}); "
            "set source='job' or drop baseline_job_id"
        )
    return problems


class ResolvedBaseline(BaseModel):
    """The baseline a delta or ratio condition is compared with, as the resource layer found it.

    Example::

        ResolvedBaseline(value=1.80, source="champion", job_id="7d0c...", eval_dataset_sha256="ab12...")
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    value: float | None
    """The baseline's value for the condition's metric and aggregation; ``None`` when the baseline job
    never reported it (treated as a missing baseline). NaN and infinity are kept and fail the condition."""
    source: BaselineSource = BaselineSource.PINNED
    """Where the value came from."""
    job_id: str | None = None
    """The job the value was read from (champion or job sources)."""
    eval_dataset_sha256: Sha256 = None
    """SHA-256 of the eval dataset the baseline was measured on, when known."""

    @classmethod
    def pinned(cls, condition: Condition) -> ResolvedBaseline | None:
        """The baseline a pinned condition carries itself; ``None`` when it has no ``baseline_value``."""
        if condition.baseline_value is None:
            return None
        return cls(
            value=condition.baseline_value,
            source=BaselineSource.PINNED,
            eval_dataset_sha256=condition.eval_dataset_sha256,
        )


__all__ = ["DEFAULT_DELTA_TOLERANCE", "DEFAULT_RATIO_BOUND", "Condition", "ResolvedBaseline"]
