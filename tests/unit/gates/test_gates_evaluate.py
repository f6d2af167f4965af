"""evaluate(): every status, every decision path, and the input shapes it accepts."""

from __future__ import annotations

import math
from typing import Any

import pytest

from lora_pipeline.gates import (
    Aggregation,
    Baselines,
    BaselineSource,
    Condition,
    ConditionResult,
    ConditionStatus,
    Decision,
    GateReport,
    ResolvedBaseline,
    evaluate,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
NAN, INF = math.nan, math.inf

Status = ConditionStatus


def cond(kind: str = "max", **fields: Any) -> Condition:
    """A condition on ``eval_loss``; delta/ratio default to lower-is-better against the champion."""
    defaults: dict[str, Any] = {"metric": "eval_loss", "kind": kind}
    if kind in ("delta", "ratio"):
        defaults |= {"direction": "lower_is_better", "source": "champion"}
    return Condition(**(defaults | fields))


def judge(
    condition: Condition, actual: float | None, baseline: Any = None, **options: Any
) -> tuple[ConditionResult, GateReport]:
    metrics = {} if actual is None else {condition.metric: actual}
    report = evaluate([condition], metrics, {0: baseline} if baseline is not None else None, **options)
    (result,) = report.results
    return result, report


# --- min / max -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "actual", "status", "message"),
    [
        ("min", 0.85, Status.PASS, "eval_loss 0.85 >= min 0.8"),
        ("min", 0.8, Status.PASS, "eval_loss 0.8 >= min 0.8"),
        ("min", 0.75, Status.FAIL, "eval_loss 0.75 < min 0.8"),
        ("max", 0.75, Status.PASS, "eval_loss 0.75 <= max 0.8"),
        ("max", 0.8, Status.PASS, "eval_loss 0.8 <= max 0.8"),
        ("max", 0.85, Status.FAIL, "eval_loss 0.85 > max 0.8"),
    ],
)
def test_min_and_max_compare_with_the_threshold(kind: str, actual: float, status: Status, message: str) -> None:
    result, _ = judge(cond(kind, threshold=0.8), actual)
    assert result.status is status
    assert result.message == message
    assert result.threshold == 0.8


def test_bound_tolerates_float_noise() -> None:
    result, _ = judge(cond("max", threshold=0.3), 0.1 + 0.2)  # 0.30000000000000004
    assert result.status is Status.PASS


def test_min_max_with_a_pinned_baseline_also_report_delta_and_ratio() -> None:
    result, _ = judge(cond("max", threshold=3.0, baseline_value=2.0), 2.5)
    assert result.status is Status.PASS
    assert result.baseline == 2.0
    assert result.delta == pytest.approx(0.5)
    assert result.ratio == pytest.approx(1.25)


# --- delta ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "actual", "status", "message"),
    [
        ("lower_is_better", 1.92, Status.FAIL, "eval_loss 1.92 > baseline 1.8 + 0.05 (lower is better)"),
        ("lower_is_better", 1.85, Status.PASS, "eval_loss 1.85 <= baseline 1.8 + 0.05 (lower is better)"),
        ("lower_is_better", 1.50, Status.PASS, "eval_loss 1.5 <= baseline 1.8 + 0.05 (lower is better)"),
        ("higher_is_better", 1.70, Status.FAIL, "eval_loss 1.7 < baseline 1.8 - 0.05 (higher is better)"),
        ("higher_is_better", 1.75, Status.PASS, "eval_loss 1.75 >= baseline 1.8 - 0.05 (higher is better)"),
        ("higher_is_better", 2.50, Status.PASS, "eval_loss 2.5 >= baseline 1.8 - 0.05 (higher is better)"),
    ],
)
def test_delta_allows_a_regression_budget_in_the_given_direction(
    direction: str, actual: float, status: Status, message: str
) -> None:
    result, _ = judge(cond("delta", direction=direction, threshold=0.05), actual, 1.8)
    assert result.status is status
    assert result.message == message
    assert result.delta == pytest.approx(actual - 1.8)


def test_delta_without_threshold_allows_no_regression() -> None:
    worse, _ = judge(cond("delta"), 1.8001, 1.8)
    same, _ = judge(cond("delta"), 1.8, 1.8)
    assert worse.status is Status.FAIL
    assert same.status is Status.PASS
    assert same.threshold == 0.0


# --- ratio ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "threshold", "actual", "baseline", "status", "ratio"),
    [
        ("lower_is_better", 1.05, 7.2, 7.0, Status.PASS, 7.2 / 7.0),
        ("lower_is_better", 1.05, 7.5, 7.0, Status.FAIL, 7.5 / 7.0),
        ("lower_is_better", 1.05, 7.35, 7.0, Status.PASS, 1.05),  # on the bound, float noise guarded
        ("higher_is_better", 0.8, 900.0, 1000.0, Status.PASS, 0.9),
        ("higher_is_better", 0.8, 700.0, 1000.0, Status.FAIL, 0.7),
        # negative baselines (log-likelihoods): the denominator is |baseline|, so better keeps its direction
        ("higher_is_better", 0.8, -1.0, -2.0, Status.PASS, 1.5),
        ("higher_is_better", 0.8, -3.0, -2.0, Status.FAIL, 0.5),
        ("lower_is_better", 1.05, -3.0, -2.0, Status.PASS, 0.5),
        ("lower_is_better", 1.05, -1.0, -2.0, Status.FAIL, 1.5),
        ("higher_is_better", 1.0, -2.0, -2.0, Status.PASS, 1.0),
    ],
)
def test_ratio_is_direction_aware(
    direction: str, threshold: float, actual: float, baseline: float, status: Status, ratio: float
) -> None:
    result, _ = judge(cond("ratio", direction=direction, threshold=threshold), actual, baseline)
    assert result.status is status
    assert result.ratio == pytest.approx(ratio)


def test_ratio_message_names_values_bound_and_direction() -> None:
    result, _ = judge(cond("ratio", metric="perplexity", threshold=1.05), 7.5, 7.0)
    assert result.message == "perplexity 7.5 vs baseline 7: ratio 1.07143 > 1.05 (lower is better)"


def test_ratio_without_threshold_must_be_no_worse_than_the_baseline() -> None:
    worse, _ = judge(cond("ratio"), 7.01, 7.0)
    same, _ = judge(cond("ratio"), 7.0, 7.0)
    assert worse.status is Status.FAIL
    assert same.status is Status.PASS
    assert same.threshold == 1.0


@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_zero_baseline_for_a_ratio_is_a_failure_never_a_silent_pass(severity: str) -> None:
    result, report = judge(cond("ratio", severity=severity), 0.0, 0.0)
    assert result.status is Status.ZERO_BASELINE
    assert "baseline is 0" in result.message
    assert result.delta == 0.0
    assert result.ratio is None
    assert report.decision is (Decision.BLOCK if severity == "critical" else Decision.WARN)


def test_zero_baseline_is_fine_for_a_delta() -> None:
    result, _ = judge(cond("delta", direction="higher_is_better", threshold=0.1), 0.05, 0.0)
    assert result.status is Status.PASS


# --- missing metric ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_missing", "severity", "effect"),
    [
        ("fail", "critical", Decision.BLOCK),
        ("fail", "warning", Decision.WARN),
        ("fail", "info", Decision.PASS),
        ("warn", "critical", Decision.WARN),
        ("warn", "warning", Decision.WARN),
        ("warn", "info", Decision.PASS),  # never stricter than the condition's own severity
        ("skip", "critical", Decision.PASS),
    ],
)
def test_missing_metric_follows_on_missing(on_missing: str, severity: str, effect: Decision) -> None:
    result, report = judge(cond("max", threshold=1.0, on_missing=on_missing, severity=severity), None)
    assert result.status is Status.MISSING_METRIC
    assert result.actual is None
    assert result.effect is effect
    assert report.decision is effect
    assert result.message == f"eval_loss is missing from the candidate's metrics (on_missing={on_missing})"


def test_missing_metric_takes_precedence_over_a_missing_baseline() -> None:
    result, _ = judge(cond("delta"), None)
    assert result.status is Status.MISSING_METRIC


def test_a_missing_aggregation_is_a_missing_metric() -> None:
    condition = cond("max", threshold=1.0, aggregation="min")
    report = evaluate([condition], {"eval_loss": {"last": 0.5}})
    assert report.results[0].status is Status.MISSING_METRIC
    assert report.results[0].message.startswith("min(eval_loss) is missing")


# --- missing baseline ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["delta", "ratio"])
@pytest.mark.parametrize("strict", [False, True])
def test_first_model_of_a_name_warns_but_never_blocks(kind: str, strict: bool) -> None:
    result, report = judge(cond(kind, severity="critical"), 1.9, strict=strict)
    assert result.status is Status.MISSING_BASELINE
    assert result.message == f"no champion baseline for eval_loss yet; {kind} not compared"
    assert report.decision is Decision.WARN


def test_missing_baseline_on_an_info_condition_is_only_recorded() -> None:
    result, report = judge(cond("delta", severity="info"), 1.9)
    assert result.effect is Decision.PASS
    assert result.recorded_only
    assert report.decision is Decision.PASS


def test_min_max_are_still_evaluated_when_baselines_are_missing() -> None:
    report = evaluate([cond("max", threshold=1.0), cond("delta")], {"eval_loss": 1.5})
    assert [r.status for r in report.results] == [Status.FAIL, Status.MISSING_BASELINE]
    assert report.decision is Decision.BLOCK


def test_a_baseline_job_without_the_metric_is_a_missing_baseline_naming_the_job() -> None:
    baseline = ResolvedBaseline(value=None, source="champion", job_id="job-7")
    result, _ = judge(cond("delta"), 1.9, baseline)
    assert result.status is Status.MISSING_BASELINE
    assert result.message == "baseline job job-7 has no eval_loss; delta not compared"


def test_explicit_none_baseline_overrides_a_pinned_value() -> None:
    condition = cond("delta", source="pinned", baseline_value=1.0)
    report = evaluate([condition], {"eval_loss": 5.0}, {0: None})
    assert report.results[0].status is Status.MISSING_BASELINE


# --- non-finite ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [NAN, INF, -INF])
@pytest.mark.parametrize("kind", ["min", "max", "delta", "ratio"])
def test_non_finite_candidate_never_passes(kind: str, value: float) -> None:
    condition = cond(kind, threshold=1.0) if kind in ("min", "max") else cond(kind)
    result, report = judge(condition, value, 1.0)
    assert result.status is Status.NON_FINITE
    assert "non-finite value never passes" in result.message
    assert result.delta is None
    assert result.ratio is None
    assert report.decision is Decision.BLOCK


@pytest.mark.parametrize("value", [NAN, INF, -INF])
@pytest.mark.parametrize("kind", ["delta", "ratio"])
def test_non_finite_baseline_never_passes(kind: str, value: float) -> None:
    result, report = judge(cond(kind), 1.0, ResolvedBaseline(value=value, source="champion"))
    assert result.status is Status.NON_FINITE
    assert "non-finite baseline never passes" in result.message
    assert report.decision is Decision.BLOCK


def test_non_finite_on_info_is_recorded_not_passed() -> None:
    result, report = judge(cond("max", threshold=1.0, severity="info"), NAN)
    assert result.status is Status.NON_FINITE
    assert result.recorded_only
    assert report.decision is Decision.PASS


def test_non_finite_values_as_json_strings_are_read_as_floats() -> None:
    report = evaluate([cond("max", threshold=1.0)], {"eval_loss": {"last": "NaN"}})
    assert report.results[0].status is Status.NON_FINITE
    assert math.isnan(report.results[0].actual or 0.0)


# --- incomparable --------------------------------------------------------------------------------------


def test_baseline_on_another_eval_dataset_is_incomparable_not_compared() -> None:
    baseline = ResolvedBaseline(value=1.0, source="champion", eval_dataset_sha256=SHA_A)
    result, report = judge(cond("delta", severity="critical"), 9.0, baseline, candidate_eval_sha256=SHA_B)
    assert result.status is Status.INCOMPARABLE
    assert "aaaaaaaaaaaa" in result.message
    assert "bbbbbbbbbbbb" in result.message
    assert report.decision is Decision.WARN


def test_incomparable_blocks_in_strict_mode() -> None:
    baseline = ResolvedBaseline(value=1.0, source="champion", eval_dataset_sha256=SHA_A)
    _, report = judge(cond("delta"), 1.0, baseline, candidate_eval_sha256=SHA_B, strict=True)
    assert report.decision is Decision.BLOCK


@pytest.mark.parametrize(
    ("baseline_hash", "candidate_hash"),
    [(SHA_A, SHA_A), (SHA_A, None), (None, SHA_B), (SHA_A, SHA_A.upper())],
)
def test_comparison_happens_when_hashes_match_or_one_is_unknown(
    baseline_hash: str | None, candidate_hash: str | None
) -> None:
    baseline = ResolvedBaseline(value=1.0, source="champion", eval_dataset_sha256=baseline_hash)
    result, _ = judge(cond("delta"), 2.0, baseline, candidate_eval_sha256=candidate_hash)
    assert result.status is Status.FAIL


def test_pinned_condition_digest_guards_its_own_baseline() -> None:
    condition = cond("delta", source="pinned", baseline_value=1.0, eval_dataset_sha256=SHA_A)
    report = evaluate([condition], {"eval_loss": 1.0}, candidate_eval_sha256=SHA_B)
    assert report.results[0].status is Status.INCOMPARABLE
    assert report.candidate_eval_sha256 == SHA_B


# --- decisions -----------------------------------------------------------------------------------------

FAILING = 5.0  # above max 1.0


@pytest.mark.parametrize(
    ("severities", "strict", "decision"),
    [
        ([], False, Decision.PASS),
        (["critical"], False, Decision.BLOCK),
        (["warning"], False, Decision.WARN),
        (["warning"], True, Decision.BLOCK),
        (["info"], False, Decision.PASS),
        (["info"], True, Decision.PASS),
        (["info", "warning"], False, Decision.WARN),
        (["warning", "critical"], False, Decision.BLOCK),
        (["info", "info"], True, Decision.PASS),
    ],
)
def test_decision_is_the_strictest_effect(severities: list[str], strict: bool, decision: Decision) -> None:
    passing = cond("min", threshold=0.0)
    failing = [cond("max", threshold=1.0, severity=severity) for severity in severities]
    report = evaluate([passing, *failing], {"eval_loss": FAILING}, strict=strict)
    assert report.decision is decision
    assert report.strict is strict
    assert report.results[0].status is Status.PASS


def test_all_passing_is_pass() -> None:
    report = evaluate([cond("max", threshold=9.0), cond("delta", threshold=1.0)], {"eval_loss": 2.0}, {1: 1.5})
    assert report.decision is Decision.PASS
    assert {r.effect for r in report.results} == {Decision.PASS}


def test_strict_escalates_on_missing_warn() -> None:
    condition = cond("max", threshold=1.0, on_missing="warn")
    assert evaluate([condition], {}).decision is Decision.WARN
    assert evaluate([condition], {}, strict=True).decision is Decision.BLOCK


# --- input shapes --------------------------------------------------------------------------------------


def test_metrics_accept_aggregation_keys_and_enum_members() -> None:
    conditions = [
        cond("max", threshold=2.0, aggregation="last"),
        cond("max", threshold=2.0, aggregation="min"),
        cond("max", threshold=2.0, aggregation="max"),
    ]
    report = evaluate(conditions, {"eval_loss": {Aggregation.LAST: 1.9, "min": 1.5, "max": 2.5}})
    assert [r.actual for r in report.results] == [1.9, 1.5, 2.5]
    assert [r.status for r in report.results] == [Status.PASS, Status.PASS, Status.FAIL]


def test_a_bare_number_stands_for_every_aggregation() -> None:
    conditions = [cond("max", threshold=2.0, aggregation=agg) for agg in ("last", "min", "max")]
    report = evaluate(conditions, {"eval_loss": 1.5})
    assert [r.actual for r in report.results] == [1.5, 1.5, 1.5]


def test_conditions_may_be_plain_dicts() -> None:
    report = evaluate([{"metric": "eval_loss", "kind": "max", "threshold": 1.0}], {"eval_loss": 0.5})
    assert report.decision is Decision.PASS


def test_baselines_keyed_by_condition_id_or_position() -> None:
    by_id = cond("delta", id="c-delta")
    by_position = cond("ratio")
    baselines: Baselines = {"c-delta": {"value": 1.0, "job_id": "job-1"}, 1: 4.0}
    report = evaluate([by_id, by_position], {"eval_loss": 2.0}, baselines)
    delta, ratio = report.results
    assert delta.condition_id == "c-delta"
    assert delta.baseline == 1.0
    assert delta.baseline_job_id == "job-1"
    assert delta.baseline_source is BaselineSource.CHAMPION  # a dict without source takes the condition's
    assert delta.status is Status.FAIL
    assert ratio.position == 1
    assert ratio.baseline == 4.0
    assert ratio.ratio == 0.5
    assert ratio.status is Status.PASS


def test_pinned_condition_without_an_entry_uses_its_own_value() -> None:
    report = evaluate([cond("delta", source="pinned", baseline_value=1.8, threshold=0.05)], {"eval_loss": 1.92})
    result = report.results[0]
    assert result.baseline == 1.8
    assert result.baseline_source is BaselineSource.PINNED
    assert result.status is Status.FAIL


def test_unknown_baseline_keys_are_refused_with_the_keying_rule() -> None:
    with pytest.raises(ValueError, match=r"match no condition; key each baseline by its condition's id"):
        evaluate([cond("delta")], {"eval_loss": 1.0}, {"eval_loss": 1.0})


def test_shared_condition_ids_are_refused() -> None:
    with pytest.raises(ValueError, match=r"conditions share the id\(s\) \['c1'\]"):
        evaluate([cond("max", threshold=1.0, id="c1"), cond("min", threshold=0.0, id="c1")], {})


def test_a_metric_that_is_not_a_number_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"metrics\['eval_loss'\] must be a number"):
        evaluate([cond("max", threshold=1.0)], {"eval_loss": [1.0, 2.0]})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="must be a number"):
        evaluate([cond("max", threshold=1.0)], {"eval_loss": "low"})


def test_an_int_beyond_float_range_is_infinite() -> None:
    report = evaluate([cond("max", threshold=1.0)], {"eval_loss": 10**400})
    assert report.results[0].status is Status.NON_FINITE


def test_inactive_conditions_are_skipped_but_keep_positions() -> None:
    report = evaluate([cond("max", threshold=0.0, active=False), cond("delta")], {"eval_loss": 1.0}, {1: 1.0})
    assert len(report.results) == 1
    assert report.results[0].position == 1
    assert report.decision is Decision.PASS


def test_no_conditions_pass() -> None:
    report = evaluate([], {"eval_loss": 1.0})
    assert report.decision is Decision.PASS
    assert report.summary == "pass: no conditions to check"


def test_result_copies_the_condition_definition() -> None:
    condition = cond("ratio", threshold=1.1, aggregation="min", severity="warning", on_missing="warn")
    result, _ = judge(condition, 1.0, ResolvedBaseline(value=1.0, source="job", job_id="j", eval_dataset_sha256=SHA_A))
    assert (result.metric, result.kind.value, result.direction and result.direction.value) == (
        "eval_loss",
        "ratio",
        "lower_is_better",
    )
    assert (result.aggregation.value, result.severity.value, result.on_missing.value) == (
        "min",
        "warning",
        "warn",
    )
    assert result.baseline_eval_dataset_sha256 == SHA_A
    assert result.baseline_source is BaselineSource.JOB
