"""JSON decoding that a hostile body cannot turn into a 500.

``json.loads`` raises ``RecursionError`` (not ``ValueError``) past about 1000 levels, and a document just under
that depth makes the next ``json.dumps`` of it fail the same way. Every service catches ``ValueError`` for bad
JSON, so :func:`parse_json` turns both cases into :class:`JsonTooDeep`, a ``ValueError``: the caller's usual
"invalid JSON" answer (a 400 in the service's own error shape) covers them.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 128
"""Deepest nesting accepted in Storage and Auth bodies (no real client sends more than a handful)."""

_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


class JsonTooDeep(ValueError):
    """The document nests arrays/objects deeper than the service accepts."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"JSON nested deeper than {limit} levels")
        self.limit = limit


def exceeds_depth(text: str, limit: int) -> bool:
    """Whether ``text`` opens more than ``limit`` arrays/objects at once (brackets inside strings don't count)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for match in _TOKENS.finditer(text):
        lexeme = match.group()
        if lexeme in ("[", "{"):
            depth += 1
            if depth > limit:
                return True
        elif lexeme in ("]", "}"):
            depth -= 1
    return False


def parse_json(text: str | bytes | bytearray, *, max_depth: int | None = MAX_JSON_DEPTH, **options: Any) -> Any:
    """``json.loads(text, **options)``, raising :class:`JsonTooDeep` instead of recursing without bound.

    ``max_depth=None`` skips the up-front scan (for large bodies that are only inspected shallowly); the
    decoder's own recursion limit is still reported as :class:`JsonTooDeep`.
    """
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8")
    if max_depth is not None and exceeds_depth(text, max_depth):
        raise JsonTooDeep(max_depth)
    try:
        return json.loads(text, **options)
    except RecursionError:
        raise JsonTooDeep(max_depth or 1000) from None


__all__ = ["MAX_JSON_DEPTH", "JsonTooDeep", "exceeds_depth", "parse_json"]
