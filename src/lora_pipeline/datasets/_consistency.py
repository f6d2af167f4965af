"""Flag fields whose JSON type changes between lines, before ``datasets``/pyarrow fails on them at training time.

pyarrow gives every column (and every field of nested objects) one type for the whole file; a field that is a
string on one line and a list on another fails ``load_dataset("json")`` with "changed from string to array in
row N" (research/tracking.md §3.4). The typical LoRA case is ``content`` holding a string on some turns and a
list of parts on others.
"""

from __future__ import annotations

from typing import Any

from lora_pipeline.datasets._findings import FindingCode
from lora_pipeline.datasets._schema import JSON_KINDS, RecordContext, json_kind

_MAX_NAME = 200  # longer keys are not tracked: 512 paths of 10 MB keys would be 5 GB


def _a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


class TypeTracker:
    """The first JSON type seen at each field path; reports ``type_inconsistent`` for lines that differ.

    Paths go two levels deep, where LoRA datasets vary: top-level fields (``input``), the items of a top-level
    list (``messages[]``) and their fields (``messages[].content``), and the fields of a top-level object
    (``metadata.source``). Null goes with every type, as in pyarrow, and int and float are both numbers. At most
    ``max_paths`` paths are tracked, so records with ever-new keys cannot grow memory without bound.
    """

    def __init__(self, max_paths: int = 512) -> None:
        self._max_paths = max_paths
        self._top: dict[str, str] = {}
        self._items: dict[str, str] = {}
        self._item_fields: dict[str, dict[str, str]] = {}
        self._object_fields: dict[str, dict[str, str]] = {}
        self._first_line: dict[tuple[str, str], int] = {}

    def observe(self, record: dict[str, Any], ctx: RecordContext) -> None:
        """Compare ``record``'s field types with those seen first; report the differences."""
        top = self._top
        for key, value in record.items():
            kind = JSON_KINDS.get(type(value))
            if top.get(key) != kind:
                self._check(top, key, value, ctx, key)
            if key not in top:
                continue  # not tracked (over max_paths): neither are its fields
            if kind == "array":
                self._observe_items(key, value, ctx)
            elif kind == "object":
                self._observe_fields(self._object_fields.setdefault(key, {}), value, ctx, key, None)

    def _observe_items(self, key: str, items: list[Any], ctx: RecordContext) -> None:
        expected = self._items.get(key)
        fields = self._item_fields.setdefault(key, {})
        for index, item in enumerate(items):
            kind = JSON_KINDS.get(type(item))
            if kind != expected:
                self._check(self._items, key, item, ctx, key, index)
                expected = self._items.get(key)
            if kind == "object":  # _observe_fields, inlined: this loop runs for every turn of every record
                for field, value in item.items():
                    if fields.get(field) != JSON_KINDS.get(type(value)):
                        self._check(fields, field, value, ctx, key, index, field)

    def _observe_fields(
        self, fields: dict[str, str], item: dict[str, Any], ctx: RecordContext, key: str, index: int | None
    ) -> None:
        for field, value in item.items():
            if fields.get(field) != JSON_KINDS.get(type(value)):
                self._check(fields, field, value, ctx, key, index, field)

    def _check(
        self,
        table: dict[str, str],
        name: str,
        value: Any,
        ctx: RecordContext,
        key: str,
        index: int | None = None,
        field: str | None = None,
    ) -> None:
        """The slow path, taken when a type differs from the table's (or the table has none yet)."""
        kind = json_kind(value)
        expected = table.get(name)
        if kind == "null" or expected == kind or len(name) > _MAX_NAME:
            return
        signature, path = _paths(key, index, field)
        if expected is None:
            if len(self._first_line) < self._max_paths:
                table[name] = kind
                self._first_line[(signature, kind)] = ctx.line
            return
        first_expected = self._first_line[(signature, expected)]
        first_here = self._first_line.setdefault((signature, kind), ctx.line)
        message = f"{path} is {_a(kind)} here but {_a(expected)} on line {first_expected}"
        if first_here != ctx.line:
            message += f" (first {kind} on line {first_here})"
        ctx.emit(FindingCode.TYPE_INCONSISTENT, path, message)


def _paths(key: str, index: int | None, field: str | None) -> tuple[str, str]:
    """The path shared by all lines (``messages[].content``) and this line's (``messages[3].content``)."""
    signature, path = (key, key) if index is None else (f"{key}[]", f"{key}[{index}]")
    return (signature, path) if field is None else (f"{signature}.{field}", f"{path}.{field}")


__all__ = ["TypeTracker"]
