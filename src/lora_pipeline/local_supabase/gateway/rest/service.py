"""The ASGI app mounted at ``/rest/v1``: one request end to end.

Kong's key check, the JWT, the profile, parsing and planning (with one schema reload on a miss) happen before
the database is touched, as in PostgREST; then one transaction as the caller's role runs the planned statement.
Postgres errors are mapped with PostgREST's SQLSTATE table; nothing else escapes (no stack trace reaches the
client). ``startup`` loads the schema cache and starts following ``NOTIFY pgrst``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ...db import PgFailure
from ..apikey import check_api_key
from ..state import GatewayState
from .errors import ApiError, pg_error, table_not_found
from .query_params import QueryParams, parse_query, parse_range_header, top_level_range
from .reads import plan_read
from .request_headers import authenticate, parse_prefer, schema_for
from .rpc import choose_routine, plan_call
from .schema_cache import Catalog, SchemaCache, Table
from .statements import Context, Prepared, negotiate, planned_count
from .syntax import Range
from .writes import Payload, parse_payload, plan_delete, plan_insert, plan_update

log = logging.getLogger("lora_pipeline.gateway.rest")

_METHODS = frozenset({"GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"})
_CACHE_MISSES = frozenset({"PGRST200", "PGRST202", "PGRST204", "PGRST205"})


class RestHandler:
    """Turns a request into one planned statement and runs it."""

    def __init__(self, state: GatewayState, cache: SchemaCache) -> None:
        self.state = state
        self.cache = cache

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except ApiError as error:
            return error.response()

    async def _handle(self, request: Request) -> Response:
        rejected = check_api_key(request, self.state.config)
        if rejected is not None:
            return rejected
        if request.method not in _METHODS:
            raise ApiError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        caller = authenticate(request, self.state.config)
        path = "/" + _route_path(request.scope).strip("/")
        segments = [s for s in path.split("/") if s]
        schema = schema_for(request.headers, request.method)
        if not segments:
            return _root_response(request, self.cache.catalog, schema)
        if len(segments) > 2 or (len(segments) == 2 and segments[0] != "rpc"):
            raise ApiError(404, "PGRST125", "Invalid path specified in request URL")
        if request.method == "OPTIONS":
            return Response(status_code=200, headers={"Allow": "OPTIONS,GET,HEAD,POST,PATCH,DELETE"})
        ctx = Context(
            request,
            path,
            caller,
            schema,
            parse_prefer(request.headers),
            negotiate(request.headers.get("accept")),
            self.state.config.db_max_rows,
            time.monotonic(),
        )
        if len(segments) == 2:
            return await self._call(ctx, segments[1])
        return await self._relation(ctx, segments[0])

    # -- relations --------------------------------------------------------------------------------------------

    async def _relation(self, ctx: Context, name: str) -> Response:
        method = ctx.method
        params = parse_query(_query_string(ctx))
        top = _top_range(ctx, params)
        payload = None
        if method in ("POST", "PATCH"):
            payload = parse_payload(await self._body(ctx), ctx.request.headers.get("content-type"), params.columns)

        def plan(catalog: Catalog) -> Prepared:
            table = _table(catalog, ctx.schema, name)
            if method in ("GET", "HEAD"):
                return plan_read(ctx, catalog, table, params, top)
            if method == "DELETE":
                return plan_delete(ctx, catalog, table, params)
            assert payload is not None
            planner = plan_insert if method == "POST" else plan_update
            return planner(ctx, catalog, table, params, payload)

        return await self._execute(ctx, await self._plan(ctx, plan))

    # -- functions --------------------------------------------------------------------------------------------

    async def _call(self, ctx: Context, name: str) -> Response:
        method = ctx.method
        if method not in ("GET", "HEAD", "POST"):
            raise ApiError(405, "PGRST101", f"Cannot use the {method} method on RPC")
        reading = method in ("GET", "HEAD")
        params = parse_query(_query_string(ctx), rpc_read=reading)
        top = _top_range(ctx, params)
        payload: Payload | None = None
        if reading:
            keys = frozenset(params.rpc_args)
        else:
            payload = parse_payload(
                await self._body(ctx), ctx.request.headers.get("content-type"), params.columns, is_rpc=True
            )
            keys = frozenset(payload.keys)

        def plan(catalog: Catalog) -> Prepared:
            routine = choose_routine(catalog, ctx.schema, name, keys, is_post=not reading)
            return plan_call(ctx, catalog, routine, params, top, payload)

        return await self._execute(ctx, await self._plan(ctx, plan))

    # -- shared -----------------------------------------------------------------------------------------------

    async def _plan(self, ctx: Context, plan: Callable[[Catalog], Prepared]) -> Prepared:
        """Plan against the cache; a miss reloads it once (unless a reload began after this request did)."""
        try:
            return plan(self.cache.catalog)
        except ApiError as error:
            if error.code not in _CACHE_MISSES or not await self.cache.refresh_if_older(ctx.started):
                raise
        return plan(self.cache.catalog)

    async def _body(self, ctx: Context) -> bytes:
        limit = self.state.config.max_body_bytes
        declared = ctx.request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise ApiError(413, "PGRST102", f"Request body exceeds {limit} bytes")
        body = bytearray()
        async for chunk in ctx.request.stream():  # a chunked body has no length to check up front
            body += chunk
            if len(body) > limit:
                raise ApiError(413, "PGRST102", f"Request body exceeds {limit} bytes")
        return bytes(body)

    async def _execute(self, ctx: Context, prepared: Prepared) -> Response:
        identity = ctx.caller.identity(ctx.request, ctx.path)
        try:
            async with self.state.db.transaction(identity, read_only=prepared.read_only) as conn:
                cursor = await conn.execute(prepared.sql.text, prepared.sql.params)
                result = prepared.parse(await cursor.fetchone())
                if prepared.planned_count is not None:
                    result = replace(result, total=await _estimate(conn, prepared, result.total))
                prepared.check(result)
        except PoolTimeout:
            raise ApiError(504, "PGRST003", "Timed out acquiring connection from connection pool.") from None
        except psycopg.Error as error:
            raise _database_error(error, ctx) from None
        return prepared.respond(result)


def _top_range(ctx: Context, params: QueryParams) -> Range:
    """``limit``/``offset`` intersected with a ``Range`` header, which only GET honours (RFC 9110)."""
    header = parse_range_header(ctx.request.headers.get("range")) if ctx.method == "GET" else None
    return top_level_range(params.root.range, header)


def _route_path(scope: Scope) -> str:
    """The path below the ``/rest/v1`` mount (what PostgREST sees behind Kong's ``strip_path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _query_string(ctx: Context) -> str:
    raw: bytes = ctx.request.scope.get("query_string", b"")
    return raw.decode("latin-1")


def _table(catalog: Catalog, schema: str, name: str) -> Table:
    table = catalog.tables.get((schema, name))
    if table is None:
        raise table_not_found(schema, name, [n for (s, n) in catalog.tables if s == schema])
    return table


async def _estimate(conn: psycopg.AsyncConnection[Any], prepared: Prepared, exact: int | None) -> int | None:
    """``count=planned`` (the planner's rows) or ``count=estimated`` (exact up to max-rows, then planned)."""
    if prepared.estimate_above is not None and exact is not None and exact <= prepared.estimate_above:
        return exact
    assert prepared.planned_count is not None
    explained = planned_count(prepared.planned_count)
    row = await (await conn.execute(explained.text, explained.params)).fetchone()
    plan = row[0] if row else None
    document = json.loads(plan) if isinstance(plan, str) else plan
    rows = int(document[0]["Plan"]["Plan Rows"]) if document else None
    return max(rows, exact) if rows is not None and exact is not None else rows


def _database_error(error: psycopg.Error, ctx: Context) -> ApiError:
    if error.diag.sqlstate is None and not isinstance(error, psycopg.DataError):
        log.warning("database client error on %s %s: %s", ctx.method, ctx.path, error)
        return ApiError(
            503, "PGRST001", "Database client error. Retrying the connection.", details=str(error).strip() or None
        )
    return pg_error(PgFailure.from_error(error), authenticated=ctx.caller.authenticated)


def _root_response(request: Request, catalog: Catalog, schema: str) -> Response:
    """``GET /rest/v1/``: a small Swagger 2.0 description of the exposed tables and functions (health checks)."""
    paths: dict[str, dict[str, object]] = {"/": {}}
    for table_schema, name in sorted(catalog.tables):
        if table_schema == schema:
            paths[f"/{name}"] = {}
    for routine_schema, name in sorted(catalog.routines):
        if routine_schema == schema:
            paths[f"/rpc/{name}"] = {}
    document = {
        "swagger": "2.0",
        "info": {"title": "lora-pipeline local PostgREST", "version": "local"},
        "basePath": "/",
        "schemes": ["http"],
        "consumes": ["application/json"],
        "produces": ["application/json"],
        "paths": paths,
    }
    body = b"" if request.method == "HEAD" else json.dumps(document).encode()
    return Response(body, headers={"Content-Type": "application/openapi+json; charset=utf-8"})


class RestService:
    """PostgREST-compatible ``/rest/v1``: ``/``, ``/<relation>`` and ``/rpc/<function>``."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state
        self.cache = SchemaCache(state.db, state.config.admin_dsn)
        self.handler = RestHandler(state, self.cache)
        state.services["rest"] = self

    async def startup(self) -> None:
        """Load the schema cache and follow ``NOTIFY pgrst`` (the database pools are open by now)."""
        await self.cache.load()
        self.cache.start_listening()

    async def shutdown(self) -> None:
        await self.cache.stop_listening()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await self.handler.handle(Request(scope, receive))
        await response(scope, receive, send)


__all__ = ["RestHandler", "RestService"]
