"""The vocabularies of a regression gate, one ``StrEnum`` per column of ``model_baselines`` and
``validation_results`` (sql/migrations/0001_core_schema.sql), so a row reads straight into a model."""

from __future__ import annotations

from lora_pipeline._compat import StrEnum


class Kind(StrEnum):
    """How a condition compares the candidate's value (``model_baselines.kind``)."""

    MIN = "min"
    """The value must reach the threshold: ``value >= threshold``."""
    MAX = "max"
    """The value must stay under the threshold: ``value <= threshold``."""
    DELTA = "delta"
    """No worse than the baseline by more than ``threshold`` (absolute units), in the given direction."""
    RATIO = "ratio"
    """The candidate relative to the baseline, bounded by ``threshold`` in the given direction."""

    @property
    def needs_baseline(self) -> bool:
        """Whether this kind compares against a baseline value (delta and ratio do)."""
        return self in (Kind.DELTA, Kind.RATIO)


class Direction(StrEnum):
    """Which way is better for a metric (``model_baselines.direction``)."""

    HIGHER_IS_BETTER = "higher_is_better"
    """Accuracy, throughput, reward: a larger value is an improvement."""
    LOWER_IS_BETTER = "lower_is_better"
    """Loss, perplexity, latency: a smaller value is an improvement."""

    @property
    def phrase(self) -> str:
        """``"higher is better"`` or ``"lower is better"``, for messages."""
        return self.value.replace("_", " ")


class Severity(StrEnum):
    """What a failing condition does to the decision (``model_baselines.severity``)."""

    CRITICAL = "critical"
    """A failure blocks."""
    WARNING = "warning"
    """A failure warns (blocks in strict mode)."""
    INFO = "info"
    """A failure is recorded only."""

    @property
    def rank(self) -> int:
        """Order from mildest (0, info) to strictest (2, critical)."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


def milder(first: Severity, second: Severity) -> Severity:
    """The milder of two severities; caps a warning-level effect at the condition's own severity."""
    return first if first.rank <= second.rank else second


class Aggregation(StrEnum):
    """Which of a job's values of a metric the gate reads (``model_baselines.aggregation``)."""

    LAST = "last"
    """The value at the highest step."""
    MIN = "min"
    """The smallest value the job reported."""
    MAX = "max"
    """The largest value the job reported."""


class OnMissing(StrEnum):
    """What a candidate without the metric means (``model_baselines.on_missing``)."""

    FAIL = "fail"
    """A failure at the condition's severity."""
    WARN = "warn"
    """A warning (or the condition's severity when that is milder)."""
    SKIP = "skip"
    """Recorded only; no effect on the decision."""


class BaselineSource(StrEnum):
    """Where a delta or ratio condition gets its baseline value (``model_baselines.source``)."""

    PINNED = "pinned"
    """The ``baseline_value`` stored on the condition."""
    CHAMPION = "champion"
    """The last job of the model that passed the gate."""
    JOB = "job"
    """A given training job (``baseline_job_id``)."""


class ConditionStatus(StrEnum):
    """The outcome of one condition; every way a comparison can be impossible has its own status."""

    PASS = "pass"  # noqa: S105 - a gate status, not a password
    """Compared and within bounds."""
    FAIL = "fail"
    """Compared and out of bounds."""
    MISSING_METRIC = "missing_metric"
    """The candidate has no value for the metric at this aggregation; handled per ``on_missing``."""
    MISSING_BASELINE = "missing_baseline"
    """A delta or ratio condition has no baseline yet (e.g. the first model of a name)."""
    NON_FINITE = "non_finite"
    """The candidate or the baseline is NaN or infinite; never passes."""
    ZERO_BASELINE = "zero_baseline"
    """A ratio against a baseline of exactly 0, which is undefined."""
    INCOMPARABLE = "incomparable"
    """Baseline and candidate were measured on different eval datasets; not compared."""


class Decision(StrEnum):
    """The gate's verdict (``validation_results.decision``), from mildest to strictest."""

    PASS = "pass"  # noqa: S105 - a gate decision, not a password
    """Nothing failed above info severity."""
    WARN = "warn"
    """Something at warning level failed (or the gate itself failed open)."""
    BLOCK = "block"
    """A critical condition failed, or a warning in strict mode."""

    @property
    def rank(self) -> int:
        """Order from mildest (0, pass) to strictest (2, block)."""
        return _DECISION_RANK[self]


_DECISION_RANK = {Decision.PASS: 0, Decision.WARN: 1, Decision.BLOCK: 2}


def strictest(decisions: list[Decision]) -> Decision:
    """The strictest of some decisions; ``pass`` when there are none."""
    return max(decisions, key=lambda decision: decision.rank, default=Decision.PASS)


__all__ = [
    "Aggregation",
    "BaselineSource",
    "ConditionStatus",
    "Decision",
    "Direction",
    "Kind",
    "OnMissing",
    "Severity",
    "milder",
    "strictest",
]
