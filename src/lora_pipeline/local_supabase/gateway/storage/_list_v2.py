"""``POST /object/list-v2/{bucket}``: cursor-paginated listing, as Storage's ``listObjectsV2`` serves it.

Body: ``prefix``, ``limit`` (1..1000, default 1000), ``cursor`` (from a previous ``nextCursor``),
``with_delimiter`` (collapse deeper keys into ``folders``), ``sortBy`` ``{column: name|created_at|updated_at,
order: asc|desc}``. The answer is ``{hasNext, nextCursor, nextCursorKey, folders, objects}``; one row more than
the page is read to know ``hasNext``. The query runs as the caller, so RLS decides what is listed.

The cursor is Storage's: base64 of ``l:<last name>``, ``o:<order>``, ``c:<column>``, ``a:<last column value>``
lines. Without a delimiter every key under the prefix is an object; with one, a key with a ``/`` after the
prefix becomes the folder ``<prefix><segment>/`` (listed once, without id or timestamps, sorting as the epoch
when sorting by time).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from psycopg import sql as pgsql
from psycopg.rows import dict_row
from starlette.requests import Request
from starlette.responses import Response

from . import _errors as errors
from . import _sql as sql
from ._context import StorageContext, authenticate, read_json, user_identity
from ._render import iso, json_response
from ._validation import must_be_valid_bucket_name

MAX_KEYS = 1000
_COLUMNS = ("name", "created_at", "updated_at")
_CURSOR_PARTS = {"l": "start_after", "o": "order", "c": "column", "a": "after"}
_CURSOR_LINE = re.compile(r"^(\S):(.*)$")


@dataclass(frozen=True)
class Listing:
    """One list-v2 request, validated."""

    prefix: str
    limit: int
    delimited: bool
    column: str
    order: str
    start_after: str
    after: str | None


def _cursor(token: str) -> dict[str, str]:
    try:
        text = base64.b64decode(token, validate=False).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise errors.StorageError(400, "InvalidParameter", "Invalid Parameter continuation token") from None
    parts: dict[str, str] = {}
    for line in text.split("\n"):
        match = _CURSOR_LINE.match(line)
        if match is None or match.group(1) not in _CURSOR_PARTS:
            raise errors.StorageError(400, "InvalidParameter", "Invalid Parameter continuation token")
        parts[_CURSOR_PARTS[match.group(1)]] = match.group(2)
    return parts


def encode_cursor(start_after: str, order: str, column: str | None, after: str | None) -> str:
    lines = [f"l:{start_after}", f"o:{order}"]
    if column:
        lines.append(f"c:{column}")
    if after:
        lines.append(f"a:{after}")
    return base64.b64encode("\n".join(lines).encode()).decode()


def parse_listing(body: dict[str, Any]) -> Listing:
    """Storage's body schema, with its messages; a cursor's sort overrides the body's."""
    prefix = body.get("prefix", "")
    if not isinstance(prefix, str):
        raise errors.invalid_request("body/prefix must be string")
    limit = body.get("limit", MAX_KEYS)
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise errors.invalid_request("body/limit must be integer")
    if limit < 1:
        raise errors.invalid_request("body/limit must be >= 1")
    delimited = body.get("with_delimiter", False)
    if not isinstance(delimited, bool):
        raise errors.invalid_request("body/with_delimiter must be boolean")
    column, order = _sort(body.get("sortBy"))
    cursor = body.get("cursor")
    if cursor is not None and not isinstance(cursor, str):
        raise errors.invalid_request("body/cursor must be string")
    parts = _cursor(cursor) if cursor else {}
    order = parts.get("order", order) if parts.get("order") in ("asc", "desc") else order
    column = parts.get("column", column) if parts.get("column") in _COLUMNS else column
    after = parts.get("after")
    return Listing(prefix, min(limit, MAX_KEYS), delimited, column, order, parts.get("start_after", ""), after)


def _sort(value: Any) -> tuple[str, str]:
    if value is None:
        return "name", "asc"
    if not isinstance(value, dict) or "column" not in value:
        raise errors.invalid_request("body/sortBy must have required property 'column'")
    if value["column"] not in _COLUMNS:
        raise errors.invalid_request("body/sortBy/column must be equal to one of the allowed values")
    order = value.get("order", "asc")
    if order not in ("asc", "desc"):
        raise errors.invalid_request("body/sortBy/order must be equal to one of the allowed values")
    return str(value["column"]), str(order)


def listing_query(listing: Listing) -> pgsql.Composed:
    """Entries under the prefix (folders collapsed when delimited), sorted, after the cursor, one past the page."""
    rest = pgsql.SQL("substr(name, char_length(%(prefix)s) + 1)")
    slash = pgsql.SQL("strpos({rest}, '/')").format(rest=rest)
    entry: pgsql.Composable = pgsql.SQL("name")
    if listing.delimited:
        entry = pgsql.SQL(
            "case when {slash} > 0 then left(name, char_length(%(prefix)s) + {slash}) else name end"
        ).format(slash=slash)
    by_time = listing.column != "name"
    sort_value = (
        pgsql.SQL("coalesce(date_trunc('milliseconds', {column}), 'epoch'::timestamptz)").format(
            column=pgsql.Identifier(listing.column)
        )
        if by_time
        else pgsql.SQL("null::timestamptz")
    )
    direction = pgsql.SQL("desc" if listing.order == "desc" else "asc")
    operator = pgsql.SQL("<" if listing.order == "desc" else ">")
    position = (
        pgsql.SQL(
            "(sort_value, entry collate \"C\") {op} (coalesce(nullif(%(after)s, '')::timestamptz, 'epoch'), %(start)s)"
        )
        if by_time
        else pgsql.SQL('entry collate "C" {op} %(start)s')
    ).format(op=operator)
    query = pgsql.SQL(
        "with entries as ("
        " select {entry} as entry, id, name, metadata, created_at, updated_at, last_accessed_at"
        " from storage.objects"
        " where bucket_id = %(bucket)s and name like %(pattern)s escape '\\'"
        "), collapsed as ("
        " select entry, (entry <> name) as is_folder, id, name, metadata, created_at, updated_at,"
        " last_accessed_at from entries where entry = name"
        " union all"
        " select distinct entry, true, null::uuid, entry, null::jsonb, null::timestamptz, null::timestamptz,"
        " null::timestamptz from entries where entry <> name"
        "), sorted as (select *, {sort_value} as sort_value from collapsed)"
        " select * from sorted where %(start)s = '' or {position}"
        ' order by sort_value {direction}, entry collate "C" {direction} limit %(limit)s'
    )
    return query.format(entry=entry, sort_value=sort_value, position=position, direction=direction)


async def list_objects_v2(context: StorageContext, request: Request) -> Response:
    """``POST /object/list-v2/{bucket}`` as the caller (RLS on ``storage.objects`` decides)."""
    caller = authenticate(request, context)
    bucket_id = must_be_valid_bucket_name(request.path_params["bucket"])
    listing = parse_listing(await read_json(request))
    query = listing_query(listing)
    params = {
        "bucket": bucket_id,
        "prefix": listing.prefix,
        "pattern": sql.escape_like(listing.prefix) + "%",
        "start": listing.start_after,
        "after": listing.after or "",
        "limit": listing.limit + 1,
    }
    identity = user_identity(request, caller, "storage.object.list_v2")
    async with context.db.transaction(identity) as conn, conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, params)
        rows = await cursor.fetchall()
    return json_response(page_json(listing, rows))


def page_json(listing: Listing, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The response body for ``rows`` (at most one more than the page)."""
    has_next = len(rows) > listing.limit
    page = rows[: listing.limit]
    folders = [_entry_json(row, listing) for row in page if row["is_folder"]]
    objects = [_entry_json(row, listing) for row in page if not row["is_folder"]]
    body: dict[str, Any] = {"hasNext": has_next, "folders": folders, "objects": objects}
    if has_next:
        last = page[-1]
        column = listing.column if listing.column != "name" else None
        after = iso(last.get(listing.column)) if column else None
        body["nextCursor"] = encode_cursor(last["entry"], listing.order, column, after)
        body["nextCursorKey"] = last["entry"]
    return body


def _entry_json(row: dict[str, Any], listing: Listing) -> dict[str, Any]:
    body: dict[str, Any] = {"id": str(row["id"]) if row["id"] is not None else None, "name": row["entry"]}
    if listing.delimited:
        body["key"] = row["entry"][len(listing.prefix) :].rstrip("/").split("/")[0] or row["entry"]
    for name in ("metadata", "updated_at", "created_at", "last_accessed_at"):
        body[name] = iso(row[name])
    return body


__all__ = ["MAX_KEYS", "Listing", "encode_cursor", "list_objects_v2", "listing_query", "page_json", "parse_listing"]
