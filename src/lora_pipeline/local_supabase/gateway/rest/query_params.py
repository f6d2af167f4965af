"""Split a request's query string into PostgREST's parts: select, filters, or/and trees, order, ranges,
``columns``, ``on_conflict`` and (for GET RPC) function arguments.

Keys are classified as PostgREST does: ``select``/``columns``/``on_conflict`` are reserved; a key whose last
dot-separated word is ``order``/``limit``/``offset``/``and``/``or`` applies to the root or to an embed; every
other key is a filter (``rel.col`` filters inside the embed ``rel``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from . import grammar
from .errors import ApiError
from .syntax import Condition, EmbedScope, Field, Range, SelectField, SelectItem

_RESERVED = frozenset({"select", "columns", "on_conflict"})
_EMBEDDABLE = frozenset({"order", "limit", "offset", "and", "or"})
_DEFAULT_SELECT: tuple[SelectItem, ...] = (SelectField(Field("*")),)


@dataclass
class QueryParams:
    """Everything the query string says, still unresolved against the schema."""

    select: tuple[SelectItem, ...] = _DEFAULT_SELECT
    root: EmbedScope = field(default_factory=EmbedScope)
    embeds: dict[tuple[str, ...], EmbedScope] = field(default_factory=dict)
    columns: tuple[str, ...] | None = None
    on_conflict: tuple[str, ...] | None = None
    rpc_args: dict[str, str] = field(default_factory=dict)

    @property
    def conditions(self) -> list[Condition]:
        return self.root.conditions

    @property
    def select_is_default(self) -> bool:
        return self.select == _DEFAULT_SELECT


def split_query_string(query: str) -> list[tuple[str, str]]:
    """``a=1&b`` -> ``[("a", "1")]``: keys without ``=`` carry no value and are dropped, as in PostgREST."""
    pairs = []
    for piece in query.split("&"):
        if "=" not in piece:
            continue
        key, _, value = piece.partition("=")
        pairs.append((unquote_plus(key), unquote_plus(value)))
    return pairs


def parse_query(query: str, *, rpc_read: bool = False) -> QueryParams:
    """Parse a raw query string; ``rpc_read`` makes operator-less keys function arguments (GET/HEAD RPC)."""
    params = QueryParams()
    limits: dict[tuple[str, ...], tuple[int | None, int | None]] = {}
    for key, value in split_query_string(query):
        if key == "apikey":
            continue
        _apply(params, limits, key, value, rpc_read)
    for path, (limit, offset) in limits.items():
        _scope(params, path).range = _range(limit, offset)
    return params


def _apply(
    params: QueryParams,
    limits: dict[tuple[str, ...], tuple[int | None, int | None]],
    key: str,
    value: str,
    rpc_read: bool,
) -> None:
    if key in _RESERVED:
        _apply_reserved(params, key, value)
        return
    words = key.split(".")
    last = words[-1]
    if last in _EMBEDDABLE:
        path = tuple(word for word in words[:-1] if word != "not" or last not in ("and", "or"))
        if last in ("and", "or"):
            tree = grammar.logic_tree(
                grammar.Cursor(("not." if "not" in words[:-1] else "") + last + value, "logic tree")
            )
            _scope(params, path).conditions.append(tree)
        elif last == "order":
            _scope(params, path).order = list(grammar.order_terms(grammar.Cursor(value, "order")))
        else:
            limit, offset = limits.get(path, (None, None))
            number = _integer(value)
            limits[path] = (number, offset) if last == "limit" else (limit, number)
        return
    _apply_filter(params, key, value, rpc_read)


def _apply_reserved(params: QueryParams, key: str, value: str) -> None:
    if key == "select":
        params.select = grammar.select_items(grammar.Cursor(value, "select parameter")) or _DEFAULT_SELECT
    elif key == "columns":
        params.columns = grammar.column_list(grammar.Cursor(value, "columns parameter"))
    else:
        params.on_conflict = grammar.column_list(grammar.Cursor(value, "on_conflict parameter"))


def _apply_filter(params: QueryParams, key: str, value: str, rpc_read: bool) -> None:
    path, target = grammar.key_path(grammar.Cursor(key, "tree path"))
    try:
        condition = grammar.filter_expression(grammar.Cursor(value, "filter"), target, grammar.rest_value)
    except ApiError:
        if rpc_read and not path and not target.json_path:
            params.rpc_args[target.name] = value
            return
        raise
    _scope(params, path).conditions.append(condition)


def _scope(params: QueryParams, path: tuple[str, ...]) -> EmbedScope:
    if not path:
        return params.root
    return params.embeds.setdefault(path, EmbedScope())


def _integer(text: str) -> int | None:
    try:
        return int(text.strip())
    except ValueError:
        return None


def _range(limit: int | None, offset: int | None) -> Range:
    if limit is not None and limit < 0:
        raise ApiError(
            416, "PGRST103", "Requested range not satisfiable", details="Limit should be greater than or equal to zero."
        )
    return Range(max(offset or 0, 0), limit)


def parse_range_header(header: str | None) -> tuple[int, int | None] | None:
    """``Range: 0-9`` -> ``(0, 9)``; anything else is ignored, as PostgREST ignores it."""
    if not header:
        return None
    lower, sep, upper = header.strip().partition("-")
    if not sep or not lower.isdigit() or (upper and not upper.isdigit()):
        return None
    return int(lower), int(upper) if upper else None


def top_level_range(query_range: Range, header: tuple[int, int | None] | None) -> Range:
    """Intersect ``limit``/``offset`` with a ``Range`` header (GET only); an empty intersection is 416."""
    if header is None or query_range.limit == 0:
        return query_range
    lower = max(header[0], query_range.offset)
    uppers = [
        u
        for u in (header[1], None if query_range.limit is None else query_range.offset + query_range.limit - 1)
        if u is not None
    ]
    upper = min(uppers) if uppers else None
    if upper is not None and upper < lower:
        raise ApiError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            details="The lower boundary must be lower than or equal to the upper boundary in the Range header.",
        )
    return Range(lower, None if upper is None else upper - lower + 1)


__all__ = ["QueryParams", "parse_query", "parse_range_header", "split_query_string", "top_level_range"]
