"""``/rpc/<function>``: overload choice by argument names, the call PostgREST makes, and its plan
(research §4.7).

POST: the JSON body is one ``json`` parameter expanded by ``json_to_record`` with the parameters' catalog types;
a function whose only parameter is an unnamed json/jsonb gets the whole body. GET/HEAD: arguments come from
the query string as text cast to the parameter types (``{1,2}`` is an array literal). The call runs in the
request's transaction as the caller's role; READ ONLY for GET and for STABLE/IMMUTABLE functions. The result is
the ``pgrst_source`` CTE; ``select``, filters, ``order`` and ``limit`` shape it like a table (db-max-rows caps
it), embeds follow the keys of the table a function returns rows of.
"""

from __future__ import annotations

from functools import partial

from .errors import ApiError, function_not_found
from .fragments import Frag, ident, join, param, qualified
from .query_params import QueryParams
from .reads import SOURCE, PlanContext, build_read_plan, compile_count, compile_read
from .responses import ResultRow, read_response, void_response
from .schema_cache import Catalog, Routine
from .statements import Context, Prepared, Rendering, call_statement, max_affected_check, singular_check
from .syntax import Range
from .writes import Payload, catalog_text


def find_routine(
    candidates: tuple[Routine, ...], known: list[str], schema: str, name: str, keys: frozenset[str], *, is_post: bool
) -> Routine:
    """PostgREST's ``findProc``: named-parameter matches first, then a single unnamed json/jsonb parameter."""
    named = [r for r in candidates if r.accepts(keys)]
    fallback = [r for r in candidates if is_post and r.single_unnamed_json]
    chosen = named or fallback
    if not chosen:
        raise function_not_found(schema, name, keys, known, is_post=is_post)
    if len(chosen) > 1:
        listed = ", ".join(
            f"{r.schema}.{r.name}({', '.join(f'{p.name} => {p.type}' for p in r.parameters)})" for r in chosen
        )
        raise ApiError(
            300,
            "PGRST203",
            f"Could not choose the best candidate function between: {listed}",
            hint="Try renaming the parameters or the function itself in the database so function "
            "overloading can be resolved",
        )
    return chosen[0]


def rendering_for(routine: Routine, media: Rendering) -> Rendering:
    """Scalars render as bare values, single composites as an object, sets as arrays (CSV stays CSV)."""
    if media.shape == "csv":
        return media
    if routine.returns != "composite":
        return Rendering(
            media.shape, media.strip_nulls, scalar=not routine.returns_set, set_of_scalar=routine.returns_set
        )
    if not routine.returns_set:
        return Rendering("object", media.strip_nulls)
    return media


def call_with_body(routine: Routine, payload: Payload) -> Frag:
    """The ``pgrst_source`` query of a POST call."""
    function = qualified(routine.schema, routine.name)
    if routine.single_unnamed_json:
        return _shape(routine, function + "(" + param(payload.text, "::" + routine.parameters[0].type) + ")")
    given = [p for p in routine.parameters if p.name in payload.keys]
    if not given:
        return _shape(routine, Frag(function + "()"))
    typed = ", ".join(f"{ident(p.name)} {catalog_text(p.type)}" for p in given)
    names = ", ".join(ident(p.name) for p in given)
    reader = "json_to_record" if payload.is_object else "json_to_recordset"
    limit = " LIMIT 1" if payload.is_object else ""
    arguments = ", ".join(
        f"{'VARIADIC ' if p.variadic else ''}{ident(p.name)} := pgrst_body.{ident(p.name)}" for p in given
    )
    source = (
        "FROM (SELECT " + param(payload.text, "::json") + " AS json_data) pgrst_payload, "
        f"LATERAL (SELECT {names} FROM {reader}(pgrst_payload.json_data) AS _({typed}){limit}) pgrst_body, "
    )
    return _shape(routine, Frag(f"{function}({arguments})"), source)


def call_with_query(routine: Routine, arguments: dict[str, str]) -> Frag:
    """The ``pgrst_source`` query of a GET/HEAD call: each argument cast to its parameter's type."""
    function = qualified(routine.schema, routine.name)
    pieces = [
        f"{'VARIADIC ' if p.variadic else ''}{ident(p.name)} := "
        + param(arguments[p.name], "::" + catalog_text(p.type))
        for p in routine.parameters
        if p.name in arguments
    ]
    return _shape(routine, function + "(" + join(", ", pieces) + ")")


def _shape(routine: Routine, call: Frag, source: Frag | None = None) -> Frag:
    """``SELECT pgrst_call.* FROM fn(...) pgrst_call``, or the scalar form ``(SELECT fn(...) pgrst_scalar)``."""
    start = source + "LATERAL " if source is not None else Frag("FROM ")
    if routine.returns == "composite":
        return "SELECT pgrst_call.* " + start + call + " pgrst_call"
    return "SELECT pgrst_call.pgrst_scalar " + start + "(SELECT " + call + " pgrst_scalar) pgrst_call"


def choose_routine(catalog: Catalog, schema: str, name: str, keys: frozenset[str], *, is_post: bool) -> Routine:
    known = [n for (s, n) in catalog.routines if s == schema]
    return find_routine(catalog.routines.get((schema, name), ()), known, schema, name, keys, is_post=is_post)


def plan_call(
    ctx: Context, catalog: Catalog, routine: Routine, params: QueryParams, top: Range, payload: Payload | None
) -> Prepared:
    """``payload`` is None for GET/HEAD (arguments come from ``params.rpc_args``)."""
    if ctx.prefs.strict and ctx.prefs.max_affected is not None and not routine.returns_set:
        raise ApiError(
            400,
            "PGRST128",
            "Function must return SETOF or TABLE when max-affected preference is used with handling=strict",
        )
    call = call_with_query(routine, params.rpc_args) if payload is None else call_with_body(routine, payload)
    table = catalog.tables.get(routine.return_table) if routine.return_table else None
    context = PlanContext(catalog.tables, params, ctx.max_rows)
    plan = build_read_plan(context, table, "pgrst_source", SOURCE, top)
    count = compile_count(plan) if ctx.prefs.count else None
    rendering = rendering_for(routine, ctx.media.rendering)
    sql = call_statement(call, compile_read(plan, catalog.type_names), count, rendering, single=not routine.returns_set)
    read_only = payload is None or routine.read_only
    if routine.returns == "void":
        respond = partial(void_response, top=top)
    else:
        respond = partial(
            read_response,
            top=top,
            content_type=ctx.media.content_type,
            head=ctx.head,
            applied=ctx.prefs.applied("count"),
        )
    checks = singular_check(ctx.media) + max_affected_check(ctx.prefs)
    return Prepared(sql, read_only, ResultRow.from_read, respond, checks)


__all__ = [
    "call_with_body",
    "call_with_query",
    "choose_routine",
    "find_routine",
    "plan_call",
    "rendering_for",
]
