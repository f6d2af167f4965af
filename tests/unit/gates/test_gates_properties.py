"""Properties of the gate that must hold for every input, checked with hypothesis."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from lora_pipeline.gates import (
    Condition,
    ConditionStatus,
    GateReport,
    ResolvedBaseline,
    Severity,
    evaluate,
)

finite = st.floats(allow_nan=False, allow_infinity=False)
moderate = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
any_float = st.floats()  # NaN, ±Infinity and subnormals included
directions = st.sampled_from(["lower_is_better", "higher_is_better"])
severities = st.sampled_from(list(Severity))
digests = st.sampled_from([None, "a" * 64, "b" * 64])


def relative(direction: str, kind: str, threshold: float | None = None, **fields: Any) -> Condition:
    return Condition(metric="m", kind=kind, direction=direction, threshold=threshold, source="champion", **fields)


def single(condition: Condition, actual: float, baseline: float, strict: bool = False) -> GateReport:
    return evaluate([condition], {"m": actual}, {0: baseline}, strict=strict)


# (a) -------------------------------------------------------------------------------------------------


@given(value=finite, tolerance=st.none() | finite.filter(lambda t: t >= 0), direction=directions)
def test_candidate_equal_to_baseline_passes_every_delta(value: float, tolerance: float | None, direction: str) -> None:
    result = single(relative(direction, "delta", tolerance), value, value).results[0]
    assert result.status is ConditionStatus.PASS
    assert result.delta == 0.0


@given(value=finite.filter(lambda v: v != 0), data=st.data())
def test_candidate_equal_to_baseline_passes_every_no_worse_ratio(value: float, data: st.DataObject) -> None:
    # "No worse" bounds: at or above 1.0 when lower is better, at or below 1.0 when higher is better.
    lower_bound = data.draw(st.just(1.0) | st.floats(min_value=1.0, max_value=1e300))
    higher_bound = data.draw(st.just(1.0) | st.floats(min_value=0.0, max_value=1.0))
    for condition in (
        relative("lower_is_better", "ratio", lower_bound),
        relative("higher_is_better", "ratio", higher_bound),
    ):
        result = single(condition, value, value).results[0]
        assert result.status is ConditionStatus.PASS
        assert result.ratio == 1.0


# (b) -------------------------------------------------------------------------------------------------


@given(baseline=moderate, tolerance=st.floats(min_value=0, max_value=1e3), candidate=moderate)
def test_flipping_direction_flips_a_delta_beyond_tolerance(baseline: float, tolerance: float, candidate: float) -> None:
    change = candidate - baseline
    assume(abs(change) > tolerance)
    for limit in (baseline + tolerance, baseline - tolerance):
        assume(not math.isclose(candidate, limit, rel_tol=1e-6, abs_tol=1e-9))
    lower = single(relative("lower_is_better", "delta", tolerance), candidate, baseline).results[0]
    higher = single(relative("higher_is_better", "delta", tolerance), candidate, baseline).results[0]
    assert {lower.status, higher.status} == {ConditionStatus.PASS, ConditionStatus.FAIL}
    # The one that passes is the direction in which the candidate is better.
    assert (higher.status is ConditionStatus.PASS) == (change > 0)


@given(
    baseline=moderate.filter(lambda b: abs(b) > 1e-3),
    bound=st.floats(min_value=0, max_value=5),
    candidate=moderate,
)
def test_flipping_direction_flips_a_ratio_away_from_its_bound(baseline: float, bound: float, candidate: float) -> None:
    lower = single(relative("lower_is_better", "ratio", bound), candidate, baseline).results[0]
    higher = single(relative("higher_is_better", "ratio", bound), candidate, baseline).results[0]
    assert lower.ratio is not None
    assume(not math.isclose(lower.ratio, bound, rel_tol=1e-6, abs_tol=1e-9))
    assert {lower.status, higher.status} == {ConditionStatus.PASS, ConditionStatus.FAIL}
    # A candidate better than its baseline has a ratio above 1 when higher is better, for either sign.
    assert (lower.ratio > 1.0) == (candidate > baseline)


# (c) -------------------------------------------------------------------------------------------------


@st.composite
def gates(draw: st.DrawFn) -> tuple[list[Condition], dict[str, Any], dict[int, Any], str | None]:
    """A handful of valid conditions on two metrics, candidate values (some missing or non-finite) and
    champion baselines (some missing, non-finite, zero or from another eval dataset)."""
    conditions: list[Condition] = []
    baselines: dict[int, Any] = {}
    for position in range(draw(st.integers(min_value=1, max_value=5))):
        kind = draw(st.sampled_from(["min", "max", "delta", "ratio"]))
        common = {
            "metric": draw(st.sampled_from(["m1", "m2"])),
            "kind": kind,
            "severity": draw(severities),
            "on_missing": draw(st.sampled_from(["fail", "warn", "skip"])),
            "direction": draw(directions),
        }
        if kind in ("min", "max"):
            conditions.append(Condition(threshold=draw(moderate), **common))
            continue
        bound = draw(st.none() | st.floats(min_value=0, max_value=10))
        conditions.append(Condition(threshold=bound, source="champion", **common))
        value = draw(st.none() | st.just(0.0) | any_float)
        if draw(st.booleans()):
            baselines[position] = ResolvedBaseline(value=value, source="champion", eval_dataset_sha256=draw(digests))
    metrics = {name: value for name in ("m1", "m2") if (value := draw(st.none() | any_float)) is not None}
    return conditions, metrics, baselines, draw(digests)


@given(gate=gates(), strict=st.booleans(), data=st.data())
def test_raising_a_severity_never_improves_the_decision(
    gate: tuple[list[Condition], dict[str, Any], dict[int, Any], str | None],
    strict: bool,
    data: st.DataObject,
) -> None:
    conditions, metrics, baselines, digest = gate
    before = evaluate(conditions, metrics, baselines, strict=strict, candidate_eval_sha256=digest)
    position = data.draw(st.integers(min_value=0, max_value=len(conditions) - 1))
    current = conditions[position].severity
    raised = data.draw(st.sampled_from([s for s in Severity if s.rank >= current.rank]))
    conditions[position] = conditions[position].model_copy(update={"severity": raised})
    after = evaluate(conditions, metrics, baselines, strict=strict, candidate_eval_sha256=digest)
    assert after.decision.rank >= before.decision.rank
    assert after.results[position].effect.rank >= before.results[position].effect.rank


@given(gate=gates(), data=st.data())
def test_strict_mode_never_improves_the_decision(
    gate: tuple[list[Condition], dict[str, Any], dict[int, Any], str | None], data: st.DataObject
) -> None:
    conditions, metrics, baselines, digest = gate
    lenient = evaluate(conditions, metrics, baselines, candidate_eval_sha256=digest)
    strict = evaluate(conditions, metrics, baselines, strict=True, candidate_eval_sha256=digest)
    assert strict.decision.rank >= lenient.decision.rank


# (d) -------------------------------------------------------------------------------------------------


@given(
    kind=st.sampled_from(["min", "max", "delta", "ratio"]),
    direction=directions,
    threshold=finite,
    actual=any_float,
    baseline=any_float,
    severity=severities,
    strict=st.booleans(),
    digests_=st.tuples(digests, digests),
)
def test_evaluate_never_raises_and_never_passes_a_non_finite_value(
    kind: str,
    direction: str,
    threshold: float,
    actual: float,
    baseline: float,
    severity: Severity,
    strict: bool,
    digests_: tuple[str | None, str | None],
) -> None:
    if kind in ("delta", "ratio"):
        threshold = abs(threshold)
    condition = Condition(
        metric="m", kind=kind, direction=direction, threshold=threshold, severity=severity, source="champion"
    )
    baseline_entry = ResolvedBaseline(value=baseline, source="champion", eval_dataset_sha256=digests_[0])
    report = evaluate([condition], {"m": actual}, {0: baseline_entry}, strict=strict, candidate_eval_sha256=digests_[1])
    (result,) = report.results
    json.loads(report.to_json())  # always strict JSON, whatever the numbers
    if not math.isfinite(actual) or (kind in ("delta", "ratio") and not math.isfinite(baseline)):
        assert result.status is ConditionStatus.NON_FINITE
    if result.status is ConditionStatus.PASS:
        assert math.isfinite(actual)
