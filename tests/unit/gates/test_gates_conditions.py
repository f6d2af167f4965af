"""A Condition refuses inconsistent definitions when created, says how to fix them, and maps 1:1 onto a
``model_baselines`` row."""

from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from lora_pipeline.gates import (
    Aggregation,
    BaselineSource,
    Condition,
    Direction,
    Kind,
    OnMissing,
    ResolvedBaseline,
    Severity,
)

SHA = "ab" * 32

# Every column of public.model_baselines that the client may set (user_id, created_at and updated_at are
# the server's), from sql/migrations/0001_core_schema.sql.
MODEL_BASELINES_COLUMNS = {
    "id",
    "model_name",
    "version",
    "metric",
    "kind",
    "direction",
    "threshold",
    "baseline_value",
    "source",
    "baseline_job_id",
    "aggregation",
    "severity",
    "on_missing",
    "eval_dataset_sha256",
    "active",
}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"kind": "min"}, r"kind='min' needs a threshold: the value the metric must reach"),
        ({"kind": "max"}, r"kind='max' needs a threshold: the value the metric must stay under"),
        (
            {"kind": "delta", "baseline_value": 1.0},
            r"kind='delta' needs a direction: direction='lower_is_better'",
        ),
        ({"kind": "ratio", "baseline_value": 1.0}, r"kind='ratio' needs a direction"),
        (
            {"kind": "delta", "direction": "lower_is_better", "threshold": -0.1, "baseline_value": 1.0},
            r"a delta tolerance cannot be negative \(got -0.1\).*use 0 to allow no regression",
        ),
        (
            {"kind": "ratio", "direction": "higher_is_better", "threshold": -0.5, "baseline_value": 1.0},
            r"a ratio bound cannot be below 0 \(got -0.5\)",
        ),
        (
            {"kind": "delta", "direction": "lower_is_better"},
            r"source='pinned' with kind='delta' needs baseline_value.*or use source='champion'",
        ),
        (
            {"kind": "ratio", "direction": "lower_is_better", "source": "pinned"},
            r"source='pinned' with kind='ratio' needs baseline_value",
        ),
        (
            {"kind": "delta", "direction": "lower_is_better", "source": "job"},
            r"source='job' needs baseline_job_id: the training job whose metrics are the baseline",
        ),
        (
            {"kind": "delta", "direction": "lower_is_better", "source": "champion", "baseline_job_id": "j1"},
            r"baseline_job_id is only used with source='job' \(got source='champion'\)",
        ),
        ({"kind": "max", "threshold": math.nan}, r"threshold must be a finite number \(got nan\)"),
        ({"kind": "min", "threshold": math.inf}, r"threshold must be a finite number \(got inf\)"),
        (
            {"kind": "delta", "direction": "lower_is_better", "baseline_value": -math.inf},
            r"baseline_value must be a finite number \(got -inf\)",
        ),
        (
            {"kind": "max", "threshold": 1.0, "eval_dataset_sha256": "not-a-digest"},
            r"eval_dataset_sha256 must be 64 hex characters",
        ),
    ],
)
def test_inconsistent_definitions_are_refused_with_the_fix(fields: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        Condition(metric="eval_loss", **fields)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ValidationError) as caught:
        Condition(metric="eval_loss", kind="ratio", threshold=-1.0, source="job")
    text = str(caught.value)
    assert "condition on 'eval_loss'" in text
    assert "needs a direction" in text
    assert "cannot be below 0" in text
    assert "needs baseline_job_id" in text


@pytest.mark.parametrize("fields", [{"metric": ""}, {"metric": "x" * 201}, {"model_name": ""}])
def test_names_respect_the_sql_length_checks(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Condition(**{"metric": "eval_loss", "kind": "max", "threshold": 1.0, **fields})


def test_unknown_enum_values_are_refused() -> None:
    with pytest.raises(ValidationError):
        Condition(metric="eval_loss", kind="between", threshold=1.0)
    with pytest.raises(ValidationError):
        Condition(metric="eval_loss", kind="max", threshold=1.0, severity="fatal")


def test_consistent_definitions_are_accepted() -> None:
    Condition(metric="acc", kind="min", threshold=0.8)
    Condition(metric="loss", kind="max", threshold=2.0, direction="lower_is_better")
    Condition(metric="loss", kind="delta", direction="lower_is_better", source="champion")
    Condition(metric="loss", kind="delta", direction="lower_is_better", threshold=0.0, baseline_value=1.0)
    Condition(metric="tps", kind="ratio", direction="higher_is_better", threshold=0.0, baseline_value=1.0)
    Condition(metric="loss", kind="ratio", direction="lower_is_better", source="job", baseline_job_id="j1")


def test_defaults_match_the_sql_column_defaults() -> None:
    condition = Condition(metric="acc", kind="min", threshold=0.8)
    assert condition.source is BaselineSource.PINNED
    assert condition.aggregation is Aggregation.LAST
    assert condition.severity is Severity.CRITICAL
    assert condition.on_missing is OnMissing.FAIL
    assert condition.active is True


def test_bound_fills_in_the_delta_and_ratio_defaults() -> None:
    delta = Condition(metric="loss", kind="delta", direction="lower_is_better", source="champion")
    ratio = Condition(metric="loss", kind="ratio", direction="lower_is_better", source="champion")
    explicit = Condition(metric="loss", kind="ratio", direction="lower_is_better", threshold=1.05, source="champion")
    assert delta.bound == 0.0
    assert ratio.bound == 1.0
    assert explicit.bound == 1.05


def test_label_names_a_non_default_aggregation() -> None:
    assert Condition(metric="loss", kind="max", threshold=1.0).label == "loss"
    assert Condition(metric="loss", kind="max", threshold=1.0, aggregation="min").label == "min(loss)"


def test_digest_is_normalised_to_lowercase() -> None:
    condition = Condition(metric="loss", kind="max", threshold=1.0, eval_dataset_sha256=" " + SHA.upper())
    assert condition.eval_dataset_sha256 == SHA


def test_conditions_are_immutable() -> None:
    condition = Condition(metric="loss", kind="max", threshold=1.0)
    with pytest.raises(ValidationError):
        condition.threshold = 3.0  # type: ignore[misc]


def test_to_row_sets_exactly_the_model_baselines_columns() -> None:
    condition = Condition(
        model_name="llama-support",
        metric="eval_loss",
        kind="delta",
        direction="lower_is_better",
        threshold=0.05,
        source="job",
        baseline_job_id="6f1c0c2e-0000-4000-8000-000000000001",
        severity="warning",
        eval_dataset_sha256=SHA,
    )
    row = condition.to_row()
    assert set(row) == MODEL_BASELINES_COLUMNS - {"id"}
    assert row["kind"] == "delta"
    assert row["direction"] == "lower_is_better"
    assert row["source"] == "job"
    assert row["severity"] == "warning"
    assert Condition(id="c1", metric="m", kind="max", threshold=1.0).to_row()["id"] == "c1"


def test_a_database_row_reads_back_into_an_equal_condition() -> None:
    condition = Condition(id="c1", model_name="m", metric="eval_loss", kind="max", threshold=1.8)
    row = {**condition.to_row(), "user_id": "u1", "created_at": "2025-01-01T00:00:00Z", "updated_at": None}
    read = Condition.model_validate(row)
    assert read == condition
    assert read.kind is Kind.MAX


def test_direction_phrase_is_human_text() -> None:
    assert Direction.LOWER_IS_BETTER.phrase == "lower is better"


def test_pinned_baseline_carries_the_conditions_value_and_digest() -> None:
    condition = Condition(
        metric="loss", kind="delta", direction="lower_is_better", baseline_value=1.5, eval_dataset_sha256=SHA
    )
    baseline = ResolvedBaseline.pinned(condition)
    assert baseline == ResolvedBaseline(value=1.5, source="pinned", eval_dataset_sha256=SHA)
    assert ResolvedBaseline.pinned(Condition(metric="loss", kind="max", threshold=1.0)) is None
