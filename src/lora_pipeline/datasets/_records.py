"""``iter_records``: the records of a dataset file, through the validator's streaming reader.

The trainer loads data with it, so a file reads the same way when it is validated and when it is trained on:
JSONL or a JSON array, BOM and CRLF tolerated, blank lines skipped, constant memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from lora_pipeline._exceptions import DatasetValidationError
from lora_pipeline.datasets._findings import CATALOGUE, FindingCode, Severity, preview
from lora_pipeline.datasets._reader import ProblemSink, RecordReader
from lora_pipeline.datasets._schema import json_kind
from lora_pipeline.datasets._validator import DEFAULT_MAX_LINE_BYTES


def iter_records(
    path: str | os.PathLike[str], *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, record)`` for each JSON object in a JSONL or JSON-array file, streaming.

    ``line`` is the 1-based physical line where the record starts. Blank lines, a BOM and CRLF endings are
    tolerated (they are warnings or info in a report); anything that is an error in a report stops iteration.

    Raises:
        DatasetValidationError: at the first line that is not a JSON object (invalid JSON or UTF-8, a NUL byte,
            a line over ``max_line_bytes``, a binary file, a non-object value). It names the line and the
            finding code; its ``report`` is None, since the file was not validated as a whole.

    Example::

        for line, record in iter_records("train.jsonl"):
            messages = to_messages(record, DatasetFormat.CHAT)
    """
    reader = RecordReader(path, max_line_bytes=max_line_bytes, sink=_raise_on_error(os.fspath(path)))
    for line, _offset, value in reader:
        if type(value) is not dict:
            message = f"expected a JSON object, got {json_kind(value)}: {preview(value)}"
            raise DatasetValidationError(f"{path}, line {line}: {FindingCode.NOT_AN_OBJECT}: {message}", report=None)
        yield line, value


def _raise_on_error(path: str) -> ProblemSink:
    def sink(
        code: FindingCode, message: str, *, line: int | None = None, offset: int | None = None, value: Any = None
    ) -> None:
        if CATALOGUE[code][0] is Severity.ERROR:
            message = message.replace("{value}", preview(value))
            raise DatasetValidationError(f"{path}, line {line}: {code}: {message}", report=None)

    return sink


__all__ = ["iter_records"]
