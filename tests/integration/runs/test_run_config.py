"""``json_config``: what a run stores of a configuration it was given (no stack needed)."""

from __future__ import annotations

import dataclasses
import enum
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from lora_pipeline.types._run_config import json_config


class Precision(enum.Enum):
    BF16 = "bf16"


@dataclasses.dataclass
class Args:
    output_dir: Path
    precision: Precision
    warmup: timedelta
    hub_token: str | None = None
    api_key: str = ""


def test_dataclasses_enums_paths_and_durations_convert_and_credentials_never_stored() -> None:
    stored = json_config(Args(Path("/out"), Precision.BF16, timedelta(seconds=90), hub_token="hf_abcdefgh12345"))
    assert stored == {"output_dir": "/out", "precision": "bf16", "warmup": 90.0, "hub_token": "<redacted>"}


def test_numpy_and_torch_scalars_are_read_as_numbers() -> None:
    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    assert json_config({"a": np.float32(0.5), "b": torch.tensor(3), "c": np.int64(7)}) == {"a": 0.5, "b": 3, "c": 7}


def test_what_has_no_json_form_is_dropped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    deep: dict[str, object] = {}
    node = deep
    for _ in range(12):
        node["x"] = {}
        node = node["x"]  # type: ignore[assignment]
    with caplog.at_level(logging.WARNING, logger="lora_pipeline"):
        stored = json_config({"ok": 1, "fn": print, "deep": deep, "objects": [object(), 2]})
    assert stored["ok"] == 1 and "fn" not in stored and stored["objects"] == [2]
    [record] = [r for r in caplog.records if "left out" in r.getMessage()]
    assert "config.fn (builtin_function_or_method)" in record.getMessage() and "nested too deep" in record.getMessage()


def test_a_config_that_is_not_a_mapping_records_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="lora_pipeline"):
        assert json_config(["r", 8]) == {}
    assert "is a list, not a mapping" in caplog.text
