"""Writes to ``/<relation>``: the request body, and INSERT / UPDATE / DELETE shaped like PostgREST's
(research §4.5-4.6).

- Bodies are JSON only; keys come from the object or the first array element (all elements must have the same
  keys) unless ``?columns=`` names them. The text goes to Postgres unchanged as one ``json`` parameter expanded
  by ``json_to_record(set)`` with the catalog's column types, so Postgres' input functions coerce values
  (``"NaN"`` -> float8 NaN; bad input is 22P02).
- ``RETURNING 1`` for ``return=minimal``: no column is referenced, so no SELECT policy applies. With
  ``return=representation`` the returned columns make Postgres apply SELECT policies as a WITH CHECK.
- Upserts: ``ON CONFLICT (...) DO UPDATE``/``DO NOTHING``; ``pgrst.inserted`` counts inserted rows (201 vs 200).
- PATCH/DELETE without a filter is 21000, as Supabase's ``safeupdate`` answers (it is not installed here).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

from ..json_limits import parse_json
from .errors import ApiError, column_not_found
from .fragments import Frag, condition, ident, join, param, qualified
from .query_params import QueryParams
from .reads import SOURCE, PlanContext, ReadPlan, build_read_plan, compile_read, returning_columns
from .responses import ResultRow, change_response, insert_response
from .schema_cache import Catalog, Column, Table
from .statements import Context, Prepared, max_affected_check, singular_check, write_statement
from .syntax import Condition, EmbedScope, Range

_WHITESPACE = b" \t\r\n"


@dataclass(frozen=True)
class Payload:
    """``text`` is sent to Postgres; ``is_object`` picks ``json_to_record`` vs ``json_to_recordset``."""

    text: str
    is_object: bool
    keys: tuple[str, ...]


EMPTY_OBJECT = Payload("{}", True, ())


def parse_payload(
    body: bytes, content_type: str | None, columns: tuple[str, ...] | None, *, is_rpc: bool = False
) -> Payload:
    """Validate ``body``; ``columns`` (``?columns=``) skips parsing: Postgres then validates the JSON."""
    mime = (content_type or "application/json").split(";")[0].strip().lower()
    if mime not in ("application/json", "application/vnd.pgrst.object+json", "application/vnd.pgrst.array+json"):
        raise ApiError(400, "PGRST102", f"Content-Type not acceptable: {mime}")
    stripped = body.strip(_WHITESPACE)
    if is_rpc and not stripped:
        return EMPTY_OBJECT
    text = _decode(body)
    if columns is not None:
        return Payload(text, stripped[:1] == b"{", columns)
    try:
        document = parse_json(text, max_depth=None)
    except ValueError:
        raise ApiError(400, "PGRST102", "Empty or invalid json") from None
    return _from_document(text, document)


def _decode(body: bytes) -> str:
    try:
        return body.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "PGRST102", "Empty or invalid json") from None


def _from_document(text: str, document: object) -> Payload:
    if isinstance(document, dict):
        return Payload(text, True, tuple(document))
    if not isinstance(document, list) or not document:
        return Payload("[]", False, ())
    first = document[0]
    if not isinstance(first, dict):
        raise ApiError(400, "PGRST102", "All object keys must match")
    keys = set(first)
    if any(not isinstance(row, dict) or set(row) != keys for row in document):
        raise ApiError(400, "PGRST102", "All object keys must match")
    return Payload(text, False, tuple(first))


_INSERTED_UP = (
    "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, 0)"
    " + 1)::text, true) <> '0'"
)
_INSERTED_DOWN = (
    "set_config('pgrst.inserted', (coalesce(nullif(current_setting('pgrst.inserted', true), '')::int, "
    "0) - 1)::text, true) <> '-1'"
)


def catalog_text(text: str) -> str:
    """SQL text read from the catalog (a type name, a DEFAULT expression), made safe for placeholders."""
    return text.replace("%", "%%")


def resolve_columns(table: Table, names: tuple[str, ...]) -> list[Column]:
    """Payload/``columns`` keys as catalog columns; an unknown one is PGRST204."""
    columns = []
    for name in names:
        found = table.columns.get(name)
        if found is None:
            raise column_not_found(table.name, name)
        columns.append(found)
    return columns


def json_body(payload: Payload, columns: list[Column], *, select: bool, defaults: bool) -> Frag:
    """``[SELECT cols] FROM (SELECT $1 AS json_data) pgrst_payload, LATERAL (json_to_record...) pgrst_body``."""
    names = ", ".join(ident(c.name) for c in columns)
    head = Frag(f"SELECT {', '.join('pgrst_body.' + ident(c.name) for c in columns)} ") if select else Frag()
    source = "pgrst_json_defs.val" if defaults else "pgrst_payload.json_data"
    prefix = "jsonb" if defaults else "json"
    sql = (
        head + "FROM (SELECT " + param(payload.text, "::jsonb" if defaults else "::json") + " AS json_data) "
        "pgrst_payload, "
    )
    if defaults:
        sql = sql + _defaults_lateral(payload, columns)
    if columns:
        typed = ", ".join(f"{ident(c.name)} {catalog_text(c.type)}" for c in columns)
        function = f"{prefix}_to_record" if payload.is_object else f"{prefix}_to_recordset"
        return sql + f"LATERAL (SELECT {names} FROM {function}({source}) AS _({typed})) pgrst_body"
    rows = "(values(1)) _" if payload.is_object else f"{prefix}_array_elements({source}) _"
    return sql + f"LATERAL (SELECT FROM {rows}) pgrst_body"


def _defaults_lateral(payload: Payload, columns: list[Column]) -> Frag:
    """``missing=default``: merge each row onto ``jsonb_build_object(col, DEFAULT-expression, ...)``."""
    pairs = [param(c.name, "::text") + ", " + catalog_text(c.default) for c in columns if c.default is not None]
    defaults = "jsonb_build_object(" + join(", ", pairs) + ")"
    if payload.is_object:
        return "LATERAL (SELECT " + defaults + " || pgrst_payload.json_data AS val) pgrst_json_defs, "
    return (
        "LATERAL (SELECT jsonb_agg(" + defaults + " || elem) AS val FROM "
        "jsonb_array_elements(pgrst_payload.json_data) elem) pgrst_json_defs, "
    )


def returning(table: Table, columns: list[str] | None) -> str:
    """``RETURNING 1`` (nothing returned), ``RETURNING t.*`` (None) or the listed columns."""
    name = qualified(table.schema, table.name)
    if columns is None:
        return f"RETURNING {name}.*"
    if not columns:
        return "RETURNING 1"
    return "RETURNING " + ", ".join(f"{name}.{ident(c)}" for c in columns)


def insert_sql(
    table: Table,
    payload: Payload,
    columns: list[Column],
    *,
    resolution: str | None,
    conflict: tuple[str, ...],
    returned: list[str] | None,
    defaults: bool,
) -> Frag:
    name = qualified(table.schema, table.name)
    target = f"({', '.join(ident(c.name) for c in columns)}) " if columns else " "
    sql = f"INSERT INTO {name}{target}" + json_body(payload, columns, select=True, defaults=defaults)
    merge = resolution == "merge-duplicates"
    if merge:
        sql = sql + f" WHERE {_INSERTED_UP}"
    if resolution and conflict:
        sql = sql + f" ON CONFLICT({', '.join(ident(c) for c in conflict)}) "
        if merge and columns:
            updates = ", ".join(f"{ident(c.name)} = EXCLUDED.{ident(c.name)}" for c in columns)
            sql = sql + f"DO UPDATE SET {updates} WHERE {_INSERTED_DOWN}"
        else:
            sql = sql + "DO NOTHING"
    return sql + " " + returning(table, returned)


def update_sql(
    table: Table,
    payload: Payload,
    columns: list[Column],
    conditions: list[Condition],
    *,
    returned: list[str] | None,
    defaults: bool,
) -> Frag:
    name = qualified(table.schema, table.name)
    if not columns:
        picked = "NULL" if returned == [] else returning(table, returned).removeprefix("RETURNING ")
        return Frag(f"SELECT {picked} FROM {name} WHERE false")
    assignments = ", ".join(f"{ident(c.name)} = pgrst_body.{ident(c.name)}" for c in columns)
    sql = f"UPDATE {name} SET {assignments} " + json_body(payload, columns, select=False, defaults=defaults)
    return sql + _where(name, conditions) + " " + returning(table, returned)


def delete_sql(table: Table, conditions: list[Condition], *, returned: list[str] | None) -> Frag:
    name = qualified(table.schema, table.name)
    return f"DELETE FROM {name}" + _where(name, conditions) + " " + returning(table, returned)


def _where(qualifier: str, conditions: list[Condition]) -> Frag:
    if not conditions:
        return Frag()
    return " WHERE " + join(" AND ", (condition(qualifier, c) for c in conditions))


def _representation_plan(ctx: Context, catalog: Catalog, table: Table, params: QueryParams) -> ReadPlan:
    """The select applied to the mutated rows (``pgrst_source``) for return=representation.

    Root filters already chose the rows (they sit in the mutation's WHERE); only embeds and order remain.
    """
    context = PlanContext(catalog.tables, replace(params, root=EmbedScope([], params.root.order)), None)
    return build_read_plan(context, table, "pgrst_source", SOURCE, Range())


def _returned(ctx: Context, plan: ReadPlan, table: Table) -> list[str] | None:
    if ctx.prefs.get("return") in ("representation", "headers-only"):
        return returning_columns(plan, table.primary_key)
    return []


def plan_insert(ctx: Context, catalog: Catalog, table: Table, params: QueryParams, payload: Payload) -> Prepared:
    columns = resolve_columns(table, payload.keys)
    conflict = params.on_conflict or table.primary_key
    resolution = ctx.prefs.get("resolution")
    plan = _representation_plan(ctx, catalog, table, params)
    representation = ctx.prefs.get("return") == "representation"
    mutation = insert_sql(
        table,
        payload,
        columns,
        resolution=resolution,
        conflict=conflict,
        returned=_returned(ctx, plan, table),
        defaults=ctx.prefs.get("missing") == "default",
    )
    merge = resolution == "merge-duplicates" and bool(conflict)
    location = list(table.primary_key) if ctx.prefs.get("return") == "headers-only" else None
    sql = write_statement(
        mutation,
        compile_read(plan, catalog.type_names) if representation else None,
        ctx.media.rendering,
        location_keys=location,
        track_inserts=resolution == "merge-duplicates",
    )
    applied = ctx.prefs.applied("return", "count", "missing", *(("resolution",) if conflict else ()))
    respond = partial(
        insert_response,
        content_type=ctx.media.content_type,
        table=table.name,
        representation=representation,
        merge=merge,
        count=ctx.prefs.count is not None,
        applied=applied,
    )
    return Prepared(sql, False, ResultRow.from_write, respond, singular_check(ctx.media))


def plan_update(ctx: Context, catalog: Catalog, table: Table, params: QueryParams, payload: Payload) -> Prepared:
    columns = resolve_columns(table, payload.keys)
    if columns and not params.conditions:
        raise ApiError(400, "21000", "UPDATE requires a WHERE clause")
    plan = _representation_plan(ctx, catalog, table, params)
    mutation = update_sql(
        table,
        payload,
        columns,
        params.conditions,
        returned=_returned(ctx, plan, table),
        defaults=ctx.prefs.get("missing") == "default",
    )
    return _change(ctx, catalog, plan, mutation, is_update=True)


def plan_delete(ctx: Context, catalog: Catalog, table: Table, params: QueryParams) -> Prepared:
    if not params.conditions:
        raise ApiError(400, "21000", "DELETE requires a WHERE clause")
    plan = _representation_plan(ctx, catalog, table, params)
    mutation = delete_sql(table, params.conditions, returned=_returned(ctx, plan, table))
    return _change(ctx, catalog, plan, mutation, is_update=False)


def _change(ctx: Context, catalog: Catalog, plan: ReadPlan, mutation: Frag, *, is_update: bool) -> Prepared:
    representation = ctx.prefs.get("return") == "representation"
    shaped = compile_read(plan, catalog.type_names) if representation else None
    sql = write_statement(mutation, shaped, ctx.media.rendering, location_keys=None, track_inserts=False)
    applied = ctx.prefs.applied("return", "count", "handling", "max-affected", *(("missing",) if is_update else ()))
    respond = partial(
        change_response,
        content_type=ctx.media.content_type,
        is_update=is_update,
        representation=representation,
        count=ctx.prefs.count is not None,
        applied=applied,
    )
    checks = singular_check(ctx.media) + max_affected_check(ctx.prefs)
    return Prepared(sql, False, ResultRow.from_write, respond, checks)


__all__ = [
    "EMPTY_OBJECT",
    "Payload",
    "catalog_text",
    "delete_sql",
    "insert_sql",
    "json_body",
    "parse_payload",
    "plan_delete",
    "plan_insert",
    "plan_update",
    "resolve_columns",
    "returning",
    "update_sql",
]
