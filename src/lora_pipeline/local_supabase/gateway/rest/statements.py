"""The one statement PostgREST runs per request, and everything needed to run it.

- ``Accept`` negotiation picks how Postgres renders the body (JSON array, single object, CSV, stripped nulls).
- The statement is a ``pgrst_source`` CTE wrapped by an outer SELECT returning one row: total, page count, the
  body rendered by Postgres (``json_agg``/``row_to_json``/record text, so timestamps, numerics and NaN come out
  exactly as PostgREST sends them), the response GUCs, location and inserted count.
- :class:`Prepared` carries it to the executor with its transaction mode and the checks (PGRST116, PGRST124)
  that must fail inside the transaction so the work rolls back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .errors import ApiError, singular_mismatch
from .fragments import Frag
from .request_headers import Caller, Preferences
from .responses import ResultRow

_PAGE = "pg_catalog.count(_postgrest_t)"
_GUCS = (
    "nullif(current_setting('response.headers', true), '') AS response_headers, "
    "nullif(current_setting('response.status', true), '') AS response_status"
)
_INSERTED = "nullif(current_setting('pgrst.inserted', true), '')::int"
_CSV = (
    "(SELECT coalesce(string_agg(a.k, ','), '') FROM (SELECT json_object_keys(r)::text AS k FROM "
    "(SELECT row_to_json(hh) AS r FROM pgrst_source AS hh LIMIT 1) s) a) || '\n' || "
    "coalesce(string_agg(substring(_postgrest_t::text, 2, length(_postgrest_t::text) - 2), '\n'), '')"
)


@dataclass(frozen=True)
class Rendering:
    """How the body is produced: ``json`` array, single ``object``, ``csv``; ``scalar`` for function values."""

    shape: str = "json"
    strip_nulls: bool = False
    scalar: bool = False
    set_of_scalar: bool = False

    def body_sql(self) -> str:
        if self.shape == "csv":
            return _CSV
        value = "_postgrest_t.pgrst_scalar" if self.scalar or self.set_of_scalar else "_postgrest_t"
        single = self.shape == "object" or (self.scalar and not self.set_of_scalar)
        aggregate = f"json_agg({value})" + ("->0" if single else "")
        if self.strip_nulls:
            aggregate = f"json_strip_nulls({aggregate})"
        return f"coalesce({aggregate}, '{'null' if single else '[]'}')::text"


def read_statement(source: Frag, count: Frag | None, rendering: Rendering) -> Frag:
    """GET/HEAD on a table or view."""
    total = "(SELECT pg_catalog.count(*) FROM pgrst_source_count)" if count is not None else "null::bigint"
    head = "WITH pgrst_source AS (" + source + ")"
    if count is not None:
        head = head + ", pgrst_source_count AS (" + count + ")"
    return head + (
        f" SELECT {total} AS total_result_set, {_PAGE} AS page_total, {rendering.body_sql()} AS body, "
        f"{_GUCS} FROM (SELECT * FROM pgrst_source) _postgrest_t"
    )


def call_statement(call: Frag, shaped: Frag, count: Frag | None, rendering: Rendering, *, single: bool) -> Frag:
    """``/rpc/fn``: ``shaped`` re-reads ``pgrst_source`` with the request's select/filters/order/limit."""
    total = "(SELECT pg_catalog.count(*) FROM pgrst_source_count)" if count is not None else "null::bigint"
    head = "WITH pgrst_source AS (" + call + ")"
    if count is not None:
        head = head + ", pgrst_source_count AS (" + count + ")"
    page = "1" if single else _PAGE
    return (
        head
        + (f" SELECT {total} AS total_result_set, {page} AS page_total, {rendering.body_sql()} AS body, {_GUCS} FROM (")
        + shaped
        + ") _postgrest_t"
    )


def write_statement(
    mutation: Frag,
    shaped: Frag | None,
    rendering: Rendering | None,
    *,
    location_keys: list[str] | None,
    track_inserts: bool,
) -> Frag:
    """INSERT/UPDATE/DELETE; ``shaped`` (return=representation) re-reads ``pgrst_source``, else ``*``."""
    body = rendering.body_sql() if rendering is not None and shaped is not None else "''"
    inserted = _INSERTED if track_inserts else "null::int"
    location = Frag("array[]::text[]")
    if location_keys:
        location = Frag(
            f"CASE WHEN {_PAGE} = 1 THEN (SELECT array_agg(j.key || '=' || coalesce('eq.' || j.value, "
            "'is.null')) FROM (SELECT row_to_json(_) AS row FROM pgrst_source AS _ LIMIT 1) d "
            "CROSS JOIN json_each_text(d.row) AS j WHERE j.key = ANY(%s)) END",
            [location_keys],
        )
    source = shaped if shaped is not None else Frag("SELECT * FROM pgrst_source")
    return (
        "WITH pgrst_source AS (" + mutation + f") SELECT null::bigint AS total_result_set, {_PAGE} AS "
        "page_total, " + location + f" AS header, {body} AS body, {_GUCS}, {inserted} AS response_inserted "
        "FROM (" + source + ") _postgrest_t"
    )


def planned_count(count: Frag) -> Frag:
    """``count=planned``: the planner's row estimate of the count query."""
    return "EXPLAIN (FORMAT JSON) " + count


# -- media types ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    """The negotiated response type and how Postgres renders it."""

    content_type: str
    rendering: Rendering

    @property
    def singular(self) -> bool:
        return self.rendering.shape == "object"


_JSON = Media("application/json; charset=utf-8", Rendering())


def negotiate(accept: str | None) -> Media:
    """The first producible type of ``Accept`` (by q-value); none -> 406 PGRST107."""
    if not accept or not accept.strip():
        return _JSON
    ranges = [_media_range(part) for part in accept.split(",") if part.strip()]
    ranges.sort(key=lambda item: -item[2])
    for main, params, _ in ranges:
        media = _producible(main, params)
        if media is not None:
            return media
    listed = ", ".join(main + "".join(f";{k}={v}" for k, v in params.items()) for main, params, _ in ranges)
    raise ApiError(406, "PGRST107", f"None of these media types are available: {listed}")


def _media_range(part: str) -> tuple[str, dict[str, str], float]:
    main, *raw = (piece.strip() for piece in part.split(";"))
    params: dict[str, str] = {}
    quality = 1.0
    for piece in raw:
        key, _, value = piece.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"')
        if key == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        elif key:
            params[key] = value
    return main.lower(), params, quality


def _producible(main: str, params: dict[str, str]) -> Media | None:
    stripped = params.get("nulls") == "stripped"
    if main in ("*/*", "application/*", "application/json"):
        return _JSON
    if main in ("application/vnd.pgrst.object+json", "application/vnd.pgrst.object"):
        mime = "application/vnd.pgrst.object+json" + (";nulls=stripped" if stripped else "")
        return Media(mime + "; charset=utf-8", Rendering("object", stripped))
    if main in ("application/vnd.pgrst.array+json", "application/vnd.pgrst.array"):
        return (
            Media("application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8", Rendering("json", True))
            if stripped
            else _JSON
        )
    if main in ("text/csv", "text/*"):
        return Media("text/csv; charset=utf-8", Rendering("csv"))
    return None


@dataclass
class Context:
    """The parsed request: who, which schema, what they prefer and accept."""

    request: Request
    path: str
    caller: Caller
    schema: str
    prefs: Preferences
    media: Media
    max_rows: int
    started: float

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def head(self) -> bool:
        return self.request.method == "HEAD"


@dataclass
class Prepared:
    """A planned request: one statement, its transaction mode, and how its result row becomes a response.

    ``check`` runs inside the transaction, so raising there (PGRST116, PGRST124) rolls the work back.
    """

    sql: Frag
    read_only: bool
    parse: Callable[[tuple[Any, ...] | None], ResultRow]
    respond: Callable[[ResultRow], Response]
    checks: list[Callable[[ResultRow], None]] = field(default_factory=list)
    planned_count: Frag | None = None
    estimate_above: int | None = None

    def check(self, result: ResultRow) -> None:
        for check in self.checks:
            check(result)


def singular_check(media: Media) -> list[Callable[[ResultRow], None]]:
    """``Accept: application/vnd.pgrst.object+json`` needs exactly one row."""

    def check(result: ResultRow) -> None:
        if result.page_total != 1:
            raise singular_mismatch(result.page_total)

    return [check] if media.singular else []


def max_affected_check(prefs: Preferences) -> list[Callable[[ResultRow], None]]:
    """``Prefer: handling=strict, max-affected=n``: more rows changed than n is PGRST124, rolled back."""
    limit = prefs.max_affected
    if not prefs.strict or limit is None:
        return []

    def check(result: ResultRow) -> None:
        if result.page_total > limit:
            raise ApiError(
                400,
                "PGRST124",
                "Query result exceeds max-affected preference constraint",
                details=f"The query affects {result.page_total} rows",
            )

    return [check]


__all__ = [
    "Context",
    "Media",
    "Prepared",
    "Rendering",
    "call_statement",
    "max_affected_check",
    "negotiate",
    "planned_count",
    "read_statement",
    "singular_check",
    "write_statement",
]
