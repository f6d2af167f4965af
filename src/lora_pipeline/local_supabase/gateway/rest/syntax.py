"""The parsed form of a PostgREST query string: fields, select items, filters, boolean trees and order terms.

Values stay text: Postgres, not the gateway, decides what they mean for each column's type.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ARRAY_OPERATORS = frozenset({"cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj", "neq"})
"""Operators that take one value and no ``(any)``/``(all)`` quantifier."""
QUANTIFIABLE_OPERATORS = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
FTS_OPERATORS = frozenset({"fts", "plfts", "phfts", "wfts"})
IS_VALUES = frozenset({"null", "not_null", "true", "false", "unknown"})


@dataclass(frozen=True)
class JsonStep:
    """One ``->key`` / ``->>key`` / ``->0`` step of a JSON path."""

    arrow: str
    key: str
    is_index: bool = False


@dataclass(frozen=True)
class Field:
    """A column, optionally followed by a JSON path (``data->a->>b``)."""

    name: str
    json_path: tuple[JsonStep, ...] = ()

    @property
    def default_alias(self) -> str | None:
        """PostgREST names a JSON-path column after its last key."""
        for step in reversed(self.json_path):
            if not step.is_index:
                return step.key
        return None


@dataclass(frozen=True)
class SelectField:
    """``alias:column->path::cast`` in ``select=`` (``aggregate`` is refused later: Supabase disables them)."""

    field: Field
    alias: str | None = None
    cast: str | None = None
    aggregate: str | None = None


@dataclass(frozen=True)
class SelectEmbed:
    """``alias:relation!hint!inner(items)``: a resource embedded through a foreign key."""

    relation: str
    items: tuple[SelectItem, ...]
    alias: str | None = None
    hint: str | None = None
    inner: bool = False
    spread: bool = False

    @property
    def name(self) -> str:
        return self.alias or self.relation


SelectItem = SelectField | SelectEmbed


@dataclass(frozen=True)
class Filter:
    """``field=[not.]op[(any|all)][(config)].value``; ``value`` is a tuple for ``in``."""

    field: Field
    operator: str
    value: str | tuple[str, ...]
    negated: bool = False
    quantifier: str | None = None
    fts_config: str | None = None


@dataclass(frozen=True)
class LogicTree:
    """``or=(...)`` / ``and=(...)``, possibly negated and nested."""

    operator: str
    children: tuple[LogicTree | Filter, ...]
    negated: bool = False


Condition = Filter | LogicTree


@dataclass(frozen=True)
class OrderTerm:
    """``column[->path][.asc|.desc][.nullsfirst|.nullslast]``."""

    field: Field
    descending: bool | None = None
    nulls_first: bool | None = None


@dataclass(frozen=True)
class Range:
    """Rows ``offset`` .. ``offset + limit - 1``; ``limit`` None means unbounded."""

    offset: int = 0
    limit: int | None = None

    @property
    def is_all(self) -> bool:
        return self.offset == 0 and self.limit is None

    def restricted(self, max_rows: int | None) -> Range:
        """Cap the limit at ``max_rows`` (db-max-rows), keeping the offset."""
        if max_rows is None or (self.limit is not None and self.limit <= max_rows):
            return self
        return Range(self.offset, max_rows)


@dataclass
class EmbedScope:
    """Filters, order and range that apply inside one embedded resource (``rel.col=eq.1``, ``rel.order=``)."""

    conditions: list[Condition] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    range: Range = field(default_factory=Range)


__all__ = [
    "ARRAY_OPERATORS",
    "FTS_OPERATORS",
    "IS_VALUES",
    "QUANTIFIABLE_OPERATORS",
    "Condition",
    "EmbedScope",
    "Field",
    "Filter",
    "JsonStep",
    "LogicTree",
    "OrderTerm",
    "Range",
    "SelectEmbed",
    "SelectField",
    "SelectItem",
]
