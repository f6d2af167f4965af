"""Metric points: what ``log()`` accepts, how a value becomes JSON, and how rows become request-sized batches.

Everything here is pure and cheap; the reporter calls :class:`PointBuilder` on the training thread, so the
common case (a few ``float`` values with known names) stays on a fast path of type checks and dict stores.

Wire shape of one point (what ``public.ingest_metrics`` reads)::

    {"step": 12, "epoch": 0.5, "train_loss": 1.93, "eval_loss": "NaN", "extra": {"eval_accuracy": 0.8},
     "recorded_at": "2026-01-01T00:00:00.000000+00:00"}

Non-finite numbers travel as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (bare ``NaN`` tokens are
not JSON and Postgres refuses them); the SQL casts them back to float8.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

COLUMNS: tuple[str, ...] = (
    "train_loss",
    "eval_loss",
    "perplexity",
    "learning_rate",
    "grad_norm",
    "tokens_per_second",
    "gpu_memory_gb",
)
"""Metrics with a column of their own in ``metrics_points``; any other name goes to ``extra``."""

ALIASES: dict[str, str] = {
    "loss": "train_loss",
    "train/loss": "train_loss",
    "eval/loss": "eval_loss",
    "lr": "learning_rate",
    "train/learning_rate": "learning_rate",
    "train/grad_norm": "grad_norm",
    "ppl": "perplexity",
    "eval_perplexity": "perplexity",
    "eval/perplexity": "perplexity",
    "tokens_per_sec": "tokens_per_second",
    "train_tokens_per_second": "tokens_per_second",
    "gpu_memory": "gpu_memory_gb",
    "gpu_mem_gb": "gpu_memory_gb",
}
"""Common spellings of the column metrics (HF Trainer, Lightning, wandb-style ``train/`` prefixes)."""

NAME_TO_COLUMN: dict[str, str] = {**{name: name for name in COLUMNS}, **ALIASES}
MAX_STEP = 2**31 - 1  # metrics_points.step is an integer column
MAX_NAME_LENGTH = 200
MAX_POINTS_PER_REQUEST = 1000  # the ingest function's limit
NAN, POS_INF, NEG_INF = "NaN", "Infinity", "-Infinity"
_NON_FINITE_TEXT = {NAN: math.nan, POS_INF: math.inf, NEG_INF: -math.inf}

Row = dict[str, Any]
"""One logged point before encoding: ``step``, column values, optional ``epoch`` and ``extra``, and
``recorded_at`` as a Unix time."""


class RejectedValue(ValueError):
    """A value that is not a real number (the message says why)."""


def json_number(value: float) -> float | str:
    """``value`` itself when finite, else its JSON-safe spelling (``"NaN"``, ``"Infinity"``, ``"-Infinity"``)."""
    if value - value == 0.0:
        return value
    if value != value:
        return NAN
    return POS_INF if value > 0 else NEG_INF


def parse_number(value: Any) -> Any:
    """The inverse of :func:`json_number` for values read back from PostgREST or ``extra``."""
    if isinstance(value, str) and value in _NON_FINITE_TEXT:
        return _NON_FINITE_TEXT[value]
    return value


def to_float(value: Any) -> float:
    """A real number from ``value``: ints, floats, numpy scalars, 1-element tensors (via ``.item()``).

    Raises:
        RejectedValue: strings, bools, containers, and anything ``float()`` refuses.
    """
    kind = type(value)
    if kind is float:
        return value  # type: ignore[no-any-return]
    if kind is bool or isinstance(value, (str, bytes, bytearray)):
        raise RejectedValue(f"expected a number, got {kind.__name__} {value!r:.40}")
    if kind is int:
        return _int_to_float(value)
    item = getattr(value, "item", None)
    if callable(item):  # torch tensors, numpy scalars and 0-d/1-element arrays, without importing either
        try:
            value = item()
        except Exception as error:
            raise RejectedValue(f"{kind.__name__}.item() failed: {error}") from None
        if type(value) is not kind:
            return to_float(value)
    if isinstance(value, int):
        return _int_to_float(value)
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError) as error:
        raise RejectedValue(f"expected a number, got {kind.__name__}: {error}") from None


def _int_to_float(value: int) -> float:
    try:
        return float(value)
    except OverflowError:  # beyond float range: the honest float is an infinity of the same sign
        return math.inf if value > 0 else -math.inf


def to_step(value: Any) -> int:
    """A step: a non-negative integer that fits Postgres ``integer``.

    Raises:
        RejectedValue: floats, bools, negative or too large numbers.
    """
    if type(value) is not int:
        if isinstance(value, (bool, float)) or not hasattr(value, "__index__"):
            raise RejectedValue(f"step must be an integer, got {type(value).__name__} {value!r:.40}")
        value = value.__index__()
    if value < 0 or value > MAX_STEP:
        raise RejectedValue(f"step must be between 0 and {MAX_STEP}, got {value}")
    return value  # type: ignore[no-any-return]


class PointBuilder:
    """Turns one ``log(step, epoch=..., **values)`` call into a :data:`Row`, reporting each bad value.

    ``on_reject(name, reason)`` is called for every dropped value; the reporter rate-limits the warnings.
    """

    def __init__(self, on_reject: Callable[[str, str], None], clock: Callable[[], float] = time.time) -> None:
        self._on_reject = on_reject
        self._clock = clock

    def build(self, step: Any, epoch: Any, values: Mapping[str, Any]) -> Row | None:
        """The row for one call, or ``None`` when the step is unusable (the whole call is dropped)."""
        try:
            step = to_step(step)
        except RejectedValue as error:
            self._on_reject("step", str(error))
            return None
        row: Row = {"step": step, "recorded_at": self._clock()}
        if epoch is not None:
            self._put(row, "epoch", epoch, "epoch")
        extra: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            column = NAME_TO_COLUMN.get(name)
            if column is not None:
                self._put(row, column, value, name)
            elif name == "extra" and isinstance(value, Mapping):
                for key, inner in value.items():
                    self._put_extra(extra, str(key), inner)
            else:
                self._put_extra(extra, name, value)
        if extra:
            row["extra"] = extra
        return row

    def _put(self, target: dict[str, Any], key: str, value: Any, name: str) -> None:
        if type(value) is float:  # the fast path: HF Trainer logs plain floats
            target[key] = json_number(value)
            return
        try:
            target[key] = json_number(to_float(value))
        except RejectedValue as error:
            self._on_reject(name, str(error))

    def _put_extra(self, extra: dict[str, Any], name: str, value: Any) -> None:
        if value is None:
            return
        if not name or len(name) > MAX_NAME_LENGTH or not _storable(name):
            self._on_reject(
                name[:40] or "<empty>",
                f"metric names must be 1 to {MAX_NAME_LENGTH} characters of "
                "valid text without NUL (Postgres jsonb refuses the rest)",
            )
            return
        self._put(extra, name, value, name)


def _storable(name: str) -> bool:
    if "\x00" in name:
        return False
    if name.isascii():
        return True
    try:
        name.encode()
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def merge_rows(rows: Iterable[Row]) -> list[Row]:
    """Fold rows that share a step into one, in first-seen order (the SQL does the same per batch).

    A later value replaces an earlier one column by column; ``extra`` merges key by key; the latest
    ``recorded_at`` wins. So an eval row and a train row logged at one step become one point with both.
    """
    merged: dict[int, Row] = {}
    for row in rows:
        current = merged.get(row["step"])
        if current is None:
            merged[row["step"]] = dict(row)
            continue
        for key, value in row.items():
            current[key] = {**current.get("extra", {}), **value} if key == "extra" else value
    return list(merged.values())


_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)  # built once: json.dumps(**options) is slower
_second_text: tuple[int, str] = (-1, "")


def encode_row(row: Row) -> str:
    """One point as compact JSON text (``recorded_at`` as ISO 8601 UTC, microseconds)."""
    point = dict(row)
    stamp = point.get("recorded_at")
    if isinstance(stamp, float):
        point["recorded_at"] = iso_utc(stamp)
    return _ENCODER.encode(point)


def iso_utc(stamp: float) -> str:
    """``stamp`` (Unix time) as ``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``; the date part is formatted once a second."""
    global _second_text
    second = int(stamp)
    cached = _second_text
    if cached[0] != second:
        cached = _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return f"{cached[1]}.{int((stamp - second) * 1e6):06d}+00:00"


def chunk_encoded(points: Iterable[str], *, max_points: int, max_bytes: int) -> Iterator[list[str]]:
    """Group encoded points into chunks of at most ``max_points`` points and about ``max_bytes`` bytes.

    A single point larger than ``max_bytes`` travels alone rather than being dropped.
    """
    chunk: list[str] = []
    size = 2
    for point in points:
        cost = len(point) + 1
        if chunk and (len(chunk) >= max_points or size + cost > max_bytes):
            yield chunk
            chunk, size = [], 2
        chunk.append(point)
        size += cost
    if chunk:
        yield chunk


__all__ = [
    "ALIASES",
    "COLUMNS",
    "MAX_POINTS_PER_REQUEST",
    "MAX_STEP",
    "NAME_TO_COLUMN",
    "PointBuilder",
    "RejectedValue",
    "Row",
    "chunk_encoded",
    "encode_row",
    "json_number",
    "merge_rows",
    "parse_number",
    "to_float",
    "to_step",
]
