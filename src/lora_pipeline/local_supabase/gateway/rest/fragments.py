"""SQL pieces with their bound parameters, and the SQL PostgREST emits for fields, filters and order terms.

Identifiers are quoted (``"name"``, ``"`` doubled); every value from the request is a bound parameter sent as
``unknown`` so Postgres casts it to the column's type (``eq.abc`` on an int column is Postgres' 22P02). Type
names in casts are resolved against the catalog and written as the catalog spells them, never as the request
does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .errors import ApiError
from .syntax import Condition, Field, Filter, LogicTree, OrderTerm, SelectField

_SIMPLE_SQL = {
    "neq": "<>",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
_QUANT_SQL = {
    "eq": "=",
    "gte": ">=",
    "gt": ">",
    "lte": "<=",
    "lt": "<",
    "like": "LIKE",
    "ilike": "ILIKE",
    "match": "~",
    "imatch": "~*",
}
_FTS_SQL = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
_IS_SQL = {"null": "NULL", "not_null": "NOT NULL", "true": "TRUE", "false": "FALSE", "unknown": "UNKNOWN"}
_TYPE_ALIASES = {
    "int": "int4",
    "integer": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "real": "float4",
    "float": "float8",
    "double precision": "float8",
    "boolean": "bool",
    "decimal": "numeric",
    "character varying": "varchar",
    "character": "bpchar",
    "char": "bpchar",
    "timestamp with time zone": "timestamptz",
    "timestamp without time zone": "timestamp",
    "time with time zone": "timetz",
    "time without time zone": "time",
}


class Frag:
    """SQL text (psycopg ``%s`` placeholders) travelling with its parameters, so order can never drift."""

    __slots__ = ("params", "text")

    def __init__(self, text: str = "", params: list[Any] | None = None) -> None:
        self.text = text
        self.params = params or []

    def __add__(self, other: Frag | str) -> Frag:
        if isinstance(other, str):
            return Frag(self.text + other, self.params)
        return Frag(self.text + other.text, self.params + other.params)

    def __radd__(self, other: str) -> Frag:
        return Frag(other + self.text, self.params)

    def __bool__(self) -> bool:
        return bool(self.text)

    def __repr__(self) -> str:
        return f"Frag({self.text!r}, {self.params!r})"


def param(value: Any, cast: str = "") -> Frag:
    return Frag("%s" + cast, [value])


def join(separator: str, pieces: Iterable[Frag | str]) -> Frag:
    result = Frag()
    for index, piece in enumerate(pieces):
        result = (result + separator if index else result) + piece
    return result


def ident(name: str) -> str:
    """A quoted identifier; ``%`` doubled because the text goes through psycopg's placeholder parser."""
    if "\x00" in name:
        raise ApiError(400, "PGRST100", "Identifiers cannot contain NUL characters")
    return '"' + name.replace('"', '""').replace("%", "%%") + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


# -- fields and select items ------------------------------------------------------------------------------------


def column(qualifier: str, target: Field) -> Frag:
    """``"t"."col"->$1->>$2``; JSON keys are parameters, indexes are cast to int."""
    if target.name == "*":
        return Frag(f"{qualifier}.*")
    result = Frag(f"{qualifier}.{ident(target.name)}")
    for step in target.json_path:
        result = result + step.arrow + (param(step.key, "::int") if step.is_index else param(step.key))
    return result


def select_field(qualifier: str, item: SelectField, type_names: frozenset[tuple[str, str]]) -> Frag:
    expression = column(qualifier, item.field)
    if item.cast:
        expression = "CAST(" + expression + f" AS {cast_type(item.cast, type_names)})"
    alias = item.alias or item.field.default_alias or (item.field.name if item.cast else None)
    return expression + f" AS {ident(alias)}" if alias and item.field.name != "*" else expression


def cast_type(name: str, type_names: frozenset[tuple[str, str]]) -> str:
    """The catalog's spelling of a cast target; unknown names fail as Postgres would (42704)."""
    wanted = " ".join(name.lower().split())
    canonical = _TYPE_ALIASES.get(wanted, wanted)
    for schema in ("pg_catalog", "public"):
        if (schema, canonical) in type_names:
            return qualified(schema, canonical)
    raise ApiError(400, "42704", f'type "{name}" does not exist')


# -- filters ----------------------------------------------------------------------------------------------------

EmbedTests = dict[str, tuple[Frag, Frag]]
"""Embed name -> (SQL true when the embed has rows, SQL true when it has none), for ``rel=not.is.null``."""


def condition(qualifier: str, item: Condition, embed_tests: EmbedTests | None = None) -> Frag:
    """A filter or an and/or tree; a filter naming an embed tests whether the embed is empty."""
    if isinstance(item, LogicTree):
        inner = join(f" {item.operator.upper()} ", (condition(qualifier, c, embed_tests) for c in item.children))
        return ("NOT (" if item.negated else "(") + inner + ")"
    if embed_tests and item.field.name in embed_tests and not item.field.json_path:
        return _embed_null_test(embed_tests[item.field.name], item)
    return filter_sql(qualifier, item)


def _embed_null_test(tests: tuple[Frag, Frag], item: Filter) -> Frag:
    if item.operator != "is" or item.value not in ("null", "not_null"):
        raise ApiError(
            400,
            "PGRST120",
            f"Bad operator on the '{item.field.name}' embedded resource",
            details="Only is null or not is null filters are allowed on embedded resources",
        )
    wants_empty = (item.value == "null") != item.negated
    return tests[1] if wants_empty else tests[0]


def filter_sql(qualifier: str, item: Filter) -> Frag:
    target = column(qualifier, item.field)
    body = target + " " + _operation(item)
    return "NOT (" + body + ")" if item.negated else body


def _operation(item: Filter) -> Frag:
    op, value = item.operator, item.value
    if op == "in":
        values = value if isinstance(value, tuple) else (value,)
        return Frag("= ANY('{}')") if values == ("",) else "= ANY(" + param(array_literal(values)) + ")"
    if op == "is":
        return Frag(f"IS {_IS_SQL[str(value)]}")
    assert isinstance(value, str)
    if op == "isdistinct":
        return "IS DISTINCT FROM " + param(value)
    if op in _FTS_SQL:
        config = param(item.fts_config) + ", " if item.fts_config else Frag()
        return f"@@ {_FTS_SQL[op]}(" + config + param(value) + ")"
    if op in _SIMPLE_SQL:
        return _SIMPLE_SQL[op] + " " + param(value)
    if op in ("like", "ilike"):
        value = value.replace("*", "%")
    operand = param(value)
    if item.quantifier:
        operand = f"{item.quantifier.upper()}(" + operand + ")"
    return _QUANT_SQL[op] + " " + operand


def array_literal(values: Iterable[str]) -> str:
    """``{"a","b,c"}``: every element quoted and escaped, so Postgres parses it as an array of its type."""
    escaped = (v.replace("\x00", "").replace("\\", "\\\\").replace('"', '\\"') for v in values)
    return "{" + ",".join(f'"{v}"' for v in escaped) + "}"


def order_by(qualifier: str, terms: Iterable[OrderTerm]) -> Frag:
    pieces = []
    for term in terms:
        piece = column(qualifier, term.field)
        if term.descending is not None:
            piece = piece + (" DESC" if term.descending else " ASC")
        if term.nulls_first is not None:
            piece = piece + (" NULLS FIRST" if term.nulls_first else " NULLS LAST")
        pieces.append(piece)
    return "ORDER BY " + join(", ", pieces) if pieces else Frag()


def limit_offset(limit: int | None, offset: int) -> Frag:
    if limit is None and offset == 0:
        return Frag()
    return "LIMIT " + (Frag("ALL") if limit is None else param(int(limit))) + " OFFSET " + param(int(offset))


__all__ = [
    "EmbedTests",
    "Frag",
    "array_literal",
    "cast_type",
    "column",
    "condition",
    "filter_sql",
    "ident",
    "join",
    "limit_offset",
    "order_by",
    "param",
    "qualified",
    "select_field",
]
