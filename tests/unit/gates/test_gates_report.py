"""GateReport: the validation_results row, strict JSON, fail-open errors, raising, and rendering."""

from __future__ import annotations

import json
import math

import pytest
from rich.console import Console

import lora_pipeline.gates as gates
from lora_pipeline._exceptions import GateBlocked
from lora_pipeline.gates import (
    Condition,
    ConditionStatus,
    Decision,
    GateReport,
    ResolvedBaseline,
    evaluate,
)

SHA = "c" * 64


def mixed_report(strict: bool = False) -> GateReport:
    """One result of each kind of effect: a pass, a block, a warning and a recorded failure."""
    conditions = [
        Condition(metric="eval_loss", kind="max", threshold=2.0),
        Condition(
            id="delta-1",
            metric="eval_loss",
            kind="delta",
            direction="lower_is_better",
            threshold=0.05,
            source="champion",
        ),
        Condition(metric="perplexity", kind="ratio", direction="lower_is_better", source="champion"),
        Condition(metric="accuracy", kind="min", threshold=0.8, severity="info"),
    ]
    metrics = {"eval_loss": 1.92, "perplexity": 7.0, "accuracy": math.nan}
    baselines = {"delta-1": ResolvedBaseline(value=1.8, source="champion", job_id="job-1")}
    return evaluate(conditions, metrics, baselines, strict=strict, candidate_eval_sha256=SHA)


def test_counts_cover_every_status() -> None:
    report = mixed_report()
    assert report.counts == {
        "pass": 1,
        "fail": 1,
        "missing_metric": 0,
        "missing_baseline": 1,
        "non_finite": 1,
        "zero_baseline": 0,
        "incomparable": 0,
    }


def test_summary_names_what_drove_the_decision() -> None:
    assert mixed_report().summary == (
        "block: 1 of 4 conditions passed; blocking: eval_loss delta (fail); "
        "warning: perplexity ratio (missing_baseline); recorded: accuracy min (non_finite)"
    )


def test_to_row_fills_the_validation_results_columns() -> None:
    row = mixed_report().to_row()
    assert set(row) == {"decision", "strict", "conditions", "summary", "eval_dataset_sha256"}
    assert row["decision"] == "block"
    assert row["strict"] is False
    assert row["eval_dataset_sha256"] == SHA
    delta = row["conditions"][1]
    assert delta["condition_id"] == "delta-1"
    assert delta["status"] == "fail"
    assert delta["effect"] == "block"
    assert delta["baseline"] == 1.8
    assert delta["baseline_job_id"] == "job-1"
    assert delta["message"] == "eval_loss 1.92 > baseline 1.8 + 0.05 (lower is better)"
    summary = row["summary"]
    assert summary["total"] == 4
    assert summary["effects"] == {"pass": 2, "warn": 1, "block": 1}
    assert summary["counts"]["non_finite"] == 1
    assert summary["text"] == mixed_report().summary
    assert summary["error"] is None


def test_non_finite_numbers_travel_as_strings_jsonb_accepts() -> None:
    report = mixed_report()
    text = report.to_json()  # allow_nan=False: a bare NaN token would raise here
    accuracy = json.loads(text)["conditions"][3]
    assert accuracy["actual"] == "NaN"
    infinite = evaluate([Condition(metric="m", kind="max", threshold=1.0)], {"m": -math.inf})
    assert infinite.to_row()["conditions"][0]["actual"] == "-Infinity"


def test_a_row_reads_back_into_an_equal_report() -> None:
    report = mixed_report(strict=True)
    read = GateReport.from_row(json.loads(report.to_json()))
    assert read.decision is report.decision
    assert read.strict is True
    assert read.candidate_eval_sha256 == SHA
    assert [r.model_dump(exclude={"actual"}) for r in read.results] == [
        r.model_dump(exclude={"actual"}) for r in report.results
    ]
    assert math.isnan(read.results[3].actual or 0.0)


def test_raise_if_blocked_raises_gate_blocked_carrying_the_report() -> None:
    report = mixed_report()
    with pytest.raises(GateBlocked) as caught:
        report.raise_if_blocked()
    assert caught.value.report is report
    assert str(caught.value).startswith("regression gate blocked: block: 1 of 4 conditions passed")
    assert "eval_loss 1.92 > baseline 1.8 + 0.05 (lower is better)" in str(caught.value)


def test_raise_if_blocked_returns_the_report_otherwise() -> None:
    report = evaluate([Condition(metric="m", kind="max", threshold=1.0, severity="warning")], {"m": 2.0})
    assert report.decision is Decision.WARN
    assert report.raise_if_blocked() is report
    assert not report.blocked


def test_from_error_records_the_error_and_fails_open() -> None:
    report = GateReport.from_error(RuntimeError("baseline lookup timed out"), strict=True)
    assert report.decision is Decision.WARN
    assert report.error == "RuntimeError: baseline lookup timed out"
    assert report.summary == "warn: the gate could not run (RuntimeError: baseline lookup timed out); failing open"
    assert report.to_row()["summary"]["error"] == "RuntimeError: baseline lookup timed out"
    assert report.raise_if_blocked() is report
    assert GateReport.from_row(report.to_row()).error == report.error
    assert GateReport.from_error("plain text").error == "plain text"


def test_recorded_only_distinguishes_info_failures_from_passes() -> None:
    report = mixed_report()
    assert [r.recorded_only for r in report.results] == [False, False, False, True]
    assert [r.status for r in report.with_effect(Decision.BLOCK)] == [ConditionStatus.FAIL]


def test_rich_rendering_shows_every_condition_and_the_summary() -> None:
    console = Console(width=160, record=True, color_system=None)
    console.print(mixed_report())
    text = console.export_text()
    for expected in (
        "eval_loss delta [critical]",
        "missing_baseline",
        "recorded",
        "1.8 (champion)",
        "block: 1 of 4",
    ):
        assert expected in text


def test_render_returns_plain_text_without_markup_eating_brackets() -> None:
    report = evaluate([Condition(metric="loss[bold]", kind="max", threshold=1.0)], {"loss[bold]": 2.0})
    text = report.render(width=200)
    assert "loss[bold] max [critical]" in text
    assert "\x1b[" not in text


def test_html_rendering_escapes_values() -> None:
    report = evaluate([Condition(metric="<script>", kind="max", threshold=1.0)], {"<script>": 2.0})
    page = report._repr_html_()
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert page.count("<tr") == 2  # header and one result


def test_html_of_an_error_report_is_its_summary() -> None:
    page = GateReport.from_error(ValueError("x")).render()
    assert "failing open" in page
    assert "failing open" in GateReport.from_error(ValueError("x"))._repr_html_()


def test_public_api_is_pinned() -> None:
    assert sorted(gates.__all__) == sorted(
        [
            "DEFAULT_DELTA_TOLERANCE",
            "DEFAULT_RATIO_BOUND",
            "REL_EPSILON",
            "Aggregation",
            "BaselineInput",
            "BaselineSource",
            "Baselines",
            "CandidateMetrics",
            "Condition",
            "ConditionResult",
            "ConditionStatus",
            "Decision",
            "Direction",
            "GateReport",
            "Kind",
            "OnMissing",
            "ResolvedBaseline",
            "Severity",
            "evaluate",
        ]
    )
    for name in gates.__all__:
        assert hasattr(gates, name)


def test_enum_values_match_the_sql_checks() -> None:
    assert [k.value for k in gates.Kind] == ["min", "max", "delta", "ratio"]
    assert [d.value for d in gates.Direction] == ["higher_is_better", "lower_is_better"]
    assert [s.value for s in gates.Severity] == ["critical", "warning", "info"]
    assert [a.value for a in gates.Aggregation] == ["last", "min", "max"]
    assert [o.value for o in gates.OnMissing] == ["fail", "warn", "skip"]
    assert [s.value for s in gates.BaselineSource] == ["pinned", "champion", "job"]
    assert [d.value for d in gates.Decision] == ["pass", "warn", "block"]
    assert str(gates.Decision.BLOCK) == "block"
