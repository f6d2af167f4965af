"""Reading a training file into records, and the error raised when the data cannot be trained on.

Training files are small enough to hold in memory, so this reader stays simple on purpose: a JSON array, or
JSON Lines with one record a line (blank lines skipped). It does not validate; the validator does that at
upload time, and the trainer only counts what it cannot use.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import DatasetValidationError
from ..datasets.formats import KEY_FIELDS, DatasetFormat, detect_format

Record = Mapping[str, Any]


class TrainingDataError(DatasetValidationError):
    """The training data cannot be trained on: the file is unreadable, or nothing trainable is left.

    ``report`` is a dict with what was counted (records, dropped examples by reason, the path).
    """


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file or a JSON array file, in file order.

    Raises:
        TrainingDataError: the file is missing, a line is not JSON, or a record is not an object.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TrainingDataError(f"cannot read training data {path}: {error}", report={"path": str(path)}) from error
    if text.lstrip().startswith("["):
        return _objects(_parse(text, path, line=None), path)
    return [
        _object(_parse(line, path, line=number), path, number)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def load_records(source: str | Path | Iterable[Record]) -> Sequence[Record]:
    """Records from a path, or the records themselves when ``source`` already is an iterable of them."""
    if isinstance(source, (str, Path)):
        return read_records(source)
    return list(source)


def record_format(record: Record, dataset_format: DatasetFormat | str | None) -> DatasetFormat | None:
    """The format ``record`` is read as: the declared one when it fits the record, else the detected one."""
    if dataset_format is None:
        return detect_format(record)
    declared = DatasetFormat(dataset_format)
    return declared if all(key in record for key in KEY_FIELDS[declared]) else None


def _parse(text: str, path: Path, *, line: int | None) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        where = f"line {line}" if line is not None else f"position {error.pos}"
        raise TrainingDataError(
            f"{path} is not valid JSON Lines or JSON at {where}: {error.msg}",
            report={"path": str(path), "line": line},
        ) from error


def _objects(data: Any, path: Path) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise TrainingDataError(f"{path}: a JSON file must hold an array of records", report={"path": str(path)})
    return [_object(item, path, index + 1) for index, item in enumerate(data)]


def _object(item: Any, path: Path, number: int) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise TrainingDataError(
            f"{path}: record {number} is a {type(item).__name__}, not a JSON object",
            report={"path": str(path), "line": number},
        )
    return item
