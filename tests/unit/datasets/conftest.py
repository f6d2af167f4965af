"""Fixtures for the dataset validator tests: write a dataset file, validate it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.datasets import DatasetReport, validate_file


def _encode(content: bytes | str | list[Any]) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode("utf-8")
    lines = [item if isinstance(item, str) else json.dumps(item) for item in content]
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """``write(content, name=...)``: bytes, text (UTF-8), or a list of records (dicts become JSON lines)."""

    def _write(content: bytes | str | list[Any], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        path.write_bytes(_encode(content))
        return path

    return _write


@pytest.fixture
def validate(write: Callable[..., Path]) -> Callable[..., DatasetReport]:
    """``validate(content, **options)``: write, then validate with no example-count minimum unless given."""

    def _validate(content: bytes | str | list[Any], **options: Any) -> DatasetReport:
        options.setdefault("min_examples", 0)
        options.setdefault("recommended_examples", 0)
        return validate_file(write(content), **options)

    return _validate
