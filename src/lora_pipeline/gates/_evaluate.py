"""The gate itself: judge each condition against the candidate's metrics and the resolved baselines, then
take the strictest effect as the decision. Pure: no I/O, no clock, no randomness.

Order of checks for one condition, first match wins:

1. the candidate has no value                  → ``missing_metric`` (effect per ``on_missing``)
2. the candidate is NaN or infinite            → ``non_finite`` (a failure at the condition's severity)
3. min / max                                   → ``pass`` / ``fail``
4. no baseline, or the baseline has no value   → ``missing_baseline`` (at most a warning, never blocks)
5. the baseline is NaN or infinite             → ``non_finite``
6. eval dataset hashes known and different     → ``incomparable`` (at most a warning)
7. ratio against a baseline of exactly 0       → ``zero_baseline`` (a failure at the condition's severity)
8. delta / ratio                               → ``pass`` / ``fail``
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._enums import BaselineSource, ConditionStatus, Decision, Direction, Kind, OnMissing, Severity, milder
from ._models import Condition, ResolvedBaseline
from ._report import ConditionResult, GateReport

CandidateMetrics = Mapping[str, Mapping[Any, float | str | None] | float | str | None]
"""The candidate's final values: ``{metric: {aggregation: value}}``, e.g.
``{"eval_loss": {"last": 1.92, "min": 1.88}}``. A bare number (``{"eval_loss": 1.92}``) stands for every
aggregation. Inner keys are aggregation names or :class:`Aggregation` members (typed ``Any``, as ``Mapping``
keys are invariant). Strings ``"NaN"``/``"Infinity"`` (how JSON carries them) are read as floats."""

BaselineInput = ResolvedBaseline | Mapping[str, Any] | float | None
"""One resolved baseline: a :class:`ResolvedBaseline`, a dict of its fields, a bare number (its source is
the condition's), or ``None`` when none exists yet."""

Baselines = Mapping[Any, BaselineInput]
"""Resolved baselines keyed by condition id (``str``), or by position in ``conditions`` (``int``) for a
condition without id. Keys are typed ``Any`` because ``Mapping`` keys are invariant (``dict[int, ...]``
and mixed dicts must type-check); ``evaluate`` refuses a key that matches no condition."""

_COPIED_FIELDS = {"metric", "kind", "direction", "aggregation", "severity", "on_missing"}

REL_EPSILON = 1e-9
"""Relative tolerance at a bound, so float noise (``1.85 - 1.80 > 0.05``) does not fail a candidate
sitting exactly on it."""


def evaluate(
    conditions: Iterable[Condition | Mapping[str, Any]],
    metrics: CandidateMetrics,
    baselines: Baselines | None = None,
    *,
    strict: bool = False,
    candidate_eval_sha256: str | None = None,
) -> GateReport:
    """Judge a candidate model against gate conditions.

    Args:
        conditions: the gate's conditions (:class:`Condition` or dicts of its fields); inactive ones are
            skipped.
        metrics: the candidate's values, ``{metric: {aggregation: value}}`` (see :data:`CandidateMetrics`).
        baselines: resolved baselines for delta/ratio conditions, keyed by condition id, or by position in
            ``conditions`` for a condition without id; ``None`` as a value means none exists yet. A pinned
            condition without an entry uses its own ``baseline_value``.
        strict: block on warnings too (a missing baseline still only warns, so a first model can pass).
        candidate_eval_sha256: the eval dataset the candidate was measured on; a baseline measured on
            another one is ``incomparable``.

    Returns:
        The :class:`GateReport`; call ``raise_if_blocked()`` on it to stop a pipeline.

    Raises:
        ValueError: two conditions share an id, or ``baselines`` has a key that matches no condition.
        TypeError: a metric value is neither a number nor a numeric string.

    Example::

        report = evaluate(
            [Condition(metric="eval_loss", kind="delta", direction="lower_is_better", threshold=0.05,
                       source="champion")],
            {"eval_loss": {"last": 1.92}},
            {0: ResolvedBaseline(value=1.80, source="champion", job_id=champion_id)},
        )
        report.decision  # Decision.BLOCK: eval_loss 1.92 > baseline 1.8 + 0.05 (lower is better)
    """
    parsed = [Condition.model_validate(condition) for condition in conditions]
    keys = _condition_keys(parsed)
    resolved = _resolve_baselines(parsed, keys, baselines or {})
    candidate_hash = candidate_eval_sha256.strip().lower() if candidate_eval_sha256 else None
    results = [
        _evaluate_one(
            position,
            condition,
            _candidate_value(metrics, condition),
            resolved[position],
            candidate_hash,
            strict,
        )
        for position, condition in enumerate(parsed)
        if condition.active
    ]
    return GateReport.from_results(results, strict=strict, candidate_eval_sha256=candidate_hash)


def _condition_keys(conditions: Sequence[Condition]) -> list[str | int]:
    keys: list[str | int] = [
        condition.id if condition.id is not None else position for position, condition in enumerate(conditions)
    ]
    if len(set(keys)) != len(keys):
        shared = sorted({str(key) for key in keys if keys.count(key) > 1})
        raise ValueError(f"conditions share the id(s) {shared}; each needs its own, as baselines are keyed by it")
    return keys


def _resolve_baselines(
    conditions: Sequence[Condition], keys: Sequence[str | int], baselines: Baselines
) -> list[ResolvedBaseline | None]:
    unknown = [key for key in baselines if key not in keys]
    if unknown:
        raise ValueError(
            f"baselines has entries {unknown!r} that match no condition; key each baseline by its "
            "condition's id, or by its position in conditions when the condition has no id"
        )
    return [
        _as_baseline(baselines[key], condition) if key in baselines else _default_baseline(condition)
        for key, condition in zip(keys, conditions, strict=True)
    ]


def _default_baseline(condition: Condition) -> ResolvedBaseline | None:
    """Only a pinned condition can resolve its own baseline; champion and job ones need the database."""
    return ResolvedBaseline.pinned(condition) if condition.source is BaselineSource.PINNED else None


def _as_baseline(value: BaselineInput, condition: Condition) -> ResolvedBaseline | None:
    if value is None or isinstance(value, ResolvedBaseline):
        return value
    if isinstance(value, Mapping):
        return ResolvedBaseline.model_validate({"source": condition.source, **value})
    return ResolvedBaseline(value=_as_float(value, f"baseline for {condition.metric!r}"), source=condition.source)


def _candidate_value(metrics: CandidateMetrics, condition: Condition) -> float | None:
    entry = metrics.get(condition.metric)
    if isinstance(entry, Mapping):
        entry = entry.get(condition.aggregation.value)
    return None if entry is None else _as_float(entry, f"metrics[{condition.metric!r}]")


def _as_float(value: object, where: str) -> float:
    if isinstance(value, (int, float, str)):
        try:
            return float(value)
        except OverflowError:  # an int beyond float range
            return math.inf if int(value) > 0 else -math.inf
        except ValueError:
            pass
    raise TypeError(f"{where} must be a number or a numeric string such as 'NaN', got {value!r}")


def _evaluate_one(
    position: int,
    condition: Condition,
    actual: float | None,
    baseline: ResolvedBaseline | None,
    candidate_hash: str | None,
    strict: bool,
) -> ConditionResult:
    status, message = _judge(condition, actual, baseline, candidate_hash)
    baseline_value = baseline.value if baseline is not None else None
    delta, ratio = _changes(actual, baseline_value)
    return ConditionResult(
        condition_id=condition.id,
        position=position,
        **condition.model_dump(include=_COPIED_FIELDS),
        threshold=condition.bound,
        actual=actual,
        baseline=baseline_value,
        baseline_source=baseline.source if baseline is not None else None,
        baseline_job_id=baseline.job_id if baseline is not None else None,
        baseline_eval_dataset_sha256=baseline.eval_dataset_sha256 if baseline is not None else None,
        delta=delta,
        ratio=ratio,
        status=status,
        effect=_effect(status, condition, strict),
        message=message,
    )


def _changes(actual: float | None, baseline: float | None) -> tuple[float | None, float | None]:
    """``actual − baseline`` and the direction-preserving ratio, when both exist and are finite."""
    if actual is None or baseline is None or not (math.isfinite(actual) and math.isfinite(baseline)):
        return None, None
    return actual - baseline, (_ratio(actual, baseline) if baseline != 0 else None)


def _ratio(actual: float, baseline: float) -> float:
    """``actual / baseline`` for a positive baseline; for a negative one, ``1 + change / |baseline|``, so
    that a candidate equal to its baseline is 1.0 and "better" keeps its direction (log-likelihoods,
    reward margins), instead of the sign flip of a plain quotient."""
    return actual / baseline if baseline > 0 else 1.0 + (actual - baseline) / abs(baseline)


def _effect(status: ConditionStatus, condition: Condition, strict: bool) -> Decision:
    level = _failure_level(status, condition)
    if level is None or level is Severity.INFO:
        return Decision.PASS
    if level is Severity.CRITICAL:
        return Decision.BLOCK
    # A missing baseline never blocks, even in strict mode: otherwise the first model of a name could never
    # pass, so a champion baseline would never exist.
    return Decision.BLOCK if strict and status is not ConditionStatus.MISSING_BASELINE else Decision.WARN


def _failure_level(status: ConditionStatus, condition: Condition) -> Severity | None:
    """The severity at which this result counts as a failure; ``None`` when it does not count."""
    if status is ConditionStatus.PASS:
        return None
    if status is ConditionStatus.MISSING_METRIC:
        if condition.on_missing is OnMissing.SKIP:
            return None
        if condition.on_missing is OnMissing.WARN:
            return milder(Severity.WARNING, condition.severity)
        return condition.severity
    if status in (ConditionStatus.MISSING_BASELINE, ConditionStatus.INCOMPARABLE):
        return milder(Severity.WARNING, condition.severity)
    return condition.severity


def _judge(
    condition: Condition, actual: float | None, baseline: ResolvedBaseline | None, candidate_hash: str | None
) -> tuple[ConditionStatus, str]:
    label = condition.label
    if actual is None:
        return ConditionStatus.MISSING_METRIC, (
            f"{label} is missing from the candidate's metrics (on_missing={condition.on_missing.value})"
        )
    if not math.isfinite(actual):
        return ConditionStatus.NON_FINITE, f"{label} is {_fmt(actual)}; a non-finite value never passes"
    if not condition.kind.needs_baseline:
        return _judge_bound(condition, actual)
    return _judge_against_baseline(condition, actual, baseline, candidate_hash)


def _judge_bound(condition: Condition, actual: float) -> tuple[ConditionStatus, str]:
    bound, kind = condition.bound, condition.kind
    if kind is Kind.MIN:
        passed = _at_least(actual, bound)
        operator = ">=" if passed else "<"
    else:
        passed = _at_most(actual, bound)
        operator = "<=" if passed else ">"
    return _status(passed), f"{condition.label} {_fmt(actual)} {operator} {kind.value} {_fmt(bound)}"


def _judge_against_baseline(
    condition: Condition, actual: float, baseline: ResolvedBaseline | None, candidate_hash: str | None
) -> tuple[ConditionStatus, str]:
    label, kind = condition.label, condition.kind.value
    if baseline is None or baseline.value is None:
        return ConditionStatus.MISSING_BASELINE, _missing_baseline_message(condition, baseline)
    if not math.isfinite(baseline.value):
        return ConditionStatus.NON_FINITE, (
            f"baseline {label} is {_fmt(baseline.value)}; a non-finite baseline never passes"
        )
    baseline_hash = baseline.eval_dataset_sha256
    if candidate_hash and baseline_hash and candidate_hash != baseline_hash:
        return ConditionStatus.INCOMPARABLE, (
            f"{label} {kind} not compared: the baseline was measured on eval dataset {baseline_hash[:12]}…, "
            f"the candidate on {candidate_hash[:12]}…"
        )
    if condition.kind is Kind.DELTA:
        return _judge_delta(condition, actual, baseline.value)
    if baseline.value == 0:
        return ConditionStatus.ZERO_BASELINE, f"{label} baseline is 0; a ratio against 0 is undefined"
    return _judge_ratio(condition, actual, baseline.value)


def _missing_baseline_message(condition: Condition, baseline: ResolvedBaseline | None) -> str:
    kind = condition.kind.value
    if baseline is not None and baseline.job_id is not None:
        return f"baseline job {baseline.job_id} has no {condition.label}; {kind} not compared"
    return f"no {condition.source.value} baseline for {condition.label} yet; {kind} not compared"


def _judge_delta(condition: Condition, actual: float, baseline: float) -> tuple[ConditionStatus, str]:
    tolerance, label = condition.bound, condition.label
    if condition.direction is Direction.LOWER_IS_BETTER:
        passed = _at_most(actual, baseline + tolerance)
        operator, sign = ("<=" if passed else ">"), "+"
    else:
        passed = _at_least(actual, baseline - tolerance)
        operator, sign = (">=" if passed else "<"), "-"
    text = f"{label} {_fmt(actual)} {operator} baseline {_fmt(baseline)} {sign} {_fmt(tolerance)}"
    return _status(passed), f"{text} ({_direction_phrase(condition)})"


def _judge_ratio(condition: Condition, actual: float, baseline: float) -> tuple[ConditionStatus, str]:
    bound, ratio = condition.bound, _ratio(actual, baseline)
    if condition.direction is Direction.LOWER_IS_BETTER:
        passed = _at_most(ratio, bound)
        operator = "<=" if passed else ">"
    else:
        passed = _at_least(ratio, bound)
        operator = ">=" if passed else "<"
    versus = f"{condition.label} {_fmt(actual)} vs baseline {_fmt(baseline)}"
    text = f"{versus}: ratio {_fmt(ratio)} {operator} {_fmt(bound)}"
    return _status(passed), f"{text} ({_direction_phrase(condition)})"


def _direction_phrase(condition: Condition) -> str:
    return condition.direction.phrase if condition.direction is not None else "no direction"


def _status(passed: bool) -> ConditionStatus:
    return ConditionStatus.PASS if passed else ConditionStatus.FAIL


def _at_most(value: float, bound: float) -> bool:
    return value <= bound or math.isclose(value, bound, rel_tol=REL_EPSILON)


def _at_least(value: float, bound: float) -> bool:
    return value >= bound or math.isclose(value, bound, rel_tol=REL_EPSILON)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


__all__ = ["REL_EPSILON", "BaselineInput", "Baselines", "CandidateMetrics", "evaluate"]
