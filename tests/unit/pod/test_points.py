"""What log() accepts and how points are encoded, merged and cut into request-sized chunks."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch

from lora_pipeline.pod._points import (
    MAX_STEP,
    PointBuilder,
    RejectedValue,
    chunk_encoded,
    encode_row,
    json_number,
    merge_rows,
    parse_number,
    to_float,
    to_step,
)


class Rejections:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, name: str, reason: str) -> None:
        self.seen.append((name, reason))


def build(step: Any, epoch: Any = None, **values: Any) -> tuple[dict[str, Any] | None, Rejections]:
    rejections = Rejections()
    row = PointBuilder(rejections, clock=lambda: 1_700_000_000.0).build(step, epoch, values)
    return row, rejections


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.5, 1.5),
        (3, 3.0),
        (np.float32(0.25), 0.25),
        (np.int64(7), 7.0),
        (np.array([2.5]), 2.5),
        (torch.tensor(0.5), 0.5),
        (torch.tensor([4]), 4.0),
        (Decimal("1.25"), 1.25),
        (Fraction(1, 4), 0.25),
        (10**400, math.inf),
        (-(10**400), -math.inf),
        (1e308, 1e308),
    ],
)
def test_numbers_of_every_common_kind_become_floats(value: Any, expected: float) -> None:
    assert to_float(value) == expected


@pytest.mark.parametrize("value", ["1.5", b"2", True, [1.0], {"a": 1}, object(), np.array([1.0, 2.0]), complex(1, 1)])
def test_values_that_are_not_real_numbers_are_rejected(value: Any) -> None:
    with pytest.raises(RejectedValue):
        to_float(value)


def test_non_finite_numbers_are_kept_and_spelled_as_json_strings() -> None:
    assert json_number(math.nan) == "NaN"
    assert json_number(math.inf) == "Infinity"
    assert json_number(-math.inf) == "-Infinity"
    assert json_number(2.0) == 2.0
    assert math.isnan(parse_number("NaN"))
    assert parse_number("-Infinity") == -math.inf
    assert parse_number("text") == "text"


@pytest.mark.parametrize("step", [0, 5, MAX_STEP, np.int64(3), torch.tensor(9)])
def test_integer_steps_are_accepted(step: Any) -> None:
    assert to_step(step) == int(step)


@pytest.mark.parametrize("step", [-1, MAX_STEP + 1, 1.0, 2.5, "3", None, True])
def test_negative_fractional_or_huge_steps_are_rejected(step: Any) -> None:
    with pytest.raises(RejectedValue):
        to_step(step)


def test_known_names_and_aliases_fill_columns_and_the_rest_goes_to_extra() -> None:
    row, rejections = build(3, epoch=0.5, loss=1.0, lr=0.01, eval_loss=2.0, eval_accuracy=0.9, ppl=7.0)
    assert row == {
        "step": 3,
        "recorded_at": 1_700_000_000.0,
        "epoch": 0.5,
        "train_loss": 1.0,
        "learning_rate": 0.01,
        "eval_loss": 2.0,
        "perplexity": 7.0,
        "extra": {"eval_accuracy": 0.9},
    }
    assert rejections.seen == []


def test_bad_values_are_dropped_one_by_one_and_none_silently() -> None:
    row, rejections = build(1, train_loss="0.5", grad_norm=None, learning_rate=0.1, note="hello", flag=True)
    assert row is not None and row["learning_rate"] == 0.1
    assert "train_loss" not in row and "grad_norm" not in row and "extra" not in row
    assert [name for name, _ in rejections.seen] == ["train_loss", "note", "flag"]


def test_a_bad_step_drops_the_whole_call() -> None:
    row, rejections = build(-3, loss=1.0)
    assert row is None
    assert rejections.seen[0][0] == "step"


def test_reserved_names_cannot_break_the_point_they_go_to_extra() -> None:
    row, _ = build(1, recorded_at=5.0, job_id=1.0, extra={"a": 1, "b": "x"})
    assert row is not None
    assert row["recorded_at"] == 1_700_000_000.0
    assert row["extra"] == {"recorded_at": 5.0, "job_id": 1.0, "a": 1.0}


def test_duplicate_steps_merge_column_by_column_and_extra_key_by_key() -> None:
    rows = [
        {"step": 1, "train_loss": 1.0, "extra": {"a": 1.0}, "recorded_at": 1.0},
        {"step": 2, "train_loss": 0.9, "recorded_at": 2.0},
        {"step": 1, "eval_loss": 2.0, "extra": {"b": 2.0}, "recorded_at": 3.0},
        {"step": 1, "train_loss": 0.8, "recorded_at": 4.0},
    ]
    merged = merge_rows(rows)
    assert [r["step"] for r in merged] == [1, 2]
    assert merged[0] == {
        "step": 1,
        "train_loss": 0.8,
        "eval_loss": 2.0,
        "extra": {"a": 1.0, "b": 2.0},
        "recorded_at": 4.0,
    }
    assert rows[0]["extra"] == {"a": 1.0}, "inputs are not modified"


def test_encoded_points_are_strict_json_with_iso_timestamps() -> None:
    text = encode_row({"step": 1, "train_loss": "NaN", "recorded_at": 0.0})
    assert json.loads(text) == {"step": 1, "train_loss": "NaN", "recorded_at": "1970-01-01T00:00:00.000000+00:00"}


def test_chunks_respect_both_point_and_byte_limits_and_keep_order() -> None:
    points = [json.dumps({"step": i, "pad": "x" * 50}) for i in range(25)]
    chunks = list(chunk_encoded(points, max_points=10, max_bytes=10_000))
    assert [len(c) for c in chunks] == [10, 10, 5]
    by_bytes = list(chunk_encoded(points, max_points=1000, max_bytes=300))
    assert all(len("[" + ",".join(c) + "]") <= 300 for c in by_bytes)
    assert [p for c in by_bytes for p in c] == points
    huge = ["x" * 1000]
    assert list(chunk_encoded(huge, max_points=10, max_bytes=100)) == [huge]


@pytest.mark.parametrize("name", ["", "x" * 201, "nul\x00byte", "lone\ud800surrogate"])
def test_names_postgres_cannot_store_are_rejected(name: str) -> None:
    row, rejections = build(1, **{name: 1.0})
    assert row is not None and "extra" not in row
    assert len(rejections.seen) == 1
    assert build(1, **{"ünïcode/ok": 1.0})[0]["extra"] == {"ünïcode/ok": 1.0}  # type: ignore[index]
