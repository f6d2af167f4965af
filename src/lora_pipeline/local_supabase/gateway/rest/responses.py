"""HTTP responses from the statement's one result row: status (200/201/204/206/416), ``Content-Range``,
``Location``, ``Preference-Applied``, and the ``response.status``/``response.headers`` GUC overrides.

research/supabase-stack.md §4.4-4.7; PostgREST's ``Response.hs`` and ``RangeQuery.hs``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from .errors import ApiError
from .syntax import Range

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class ResultRow:
    """The outer SELECT's columns."""

    total: int | None
    page_total: int
    body: str
    guc_headers: str | None
    guc_status: str | None
    location: list[str] | None = None
    inserted: int | None = None

    @classmethod
    def from_read(cls, row: tuple[Any, ...] | None) -> ResultRow:
        assert row is not None, "the outer SELECT always returns one row"
        return cls(row[0], row[1], row[2], row[3], row[4])

    @classmethod
    def from_write(cls, row: tuple[Any, ...] | None) -> ResultRow:
        if row is None:
            return cls(None, 0, "", None, None)
        return cls(row[0], row[1], row[3], row[4], row[5], row[2], row[6])


def content_range(lower: int, upper: int, total: int | None) -> str:
    """``0-9/100``, ``*/0``, ``0-24/*``: the range part is ``*`` when nothing was returned."""
    shown = f"{lower}-{upper}" if total != 0 and lower <= upper else "*"
    return f"{shown}/{'*' if total is None else total}"


def range_status(lower: int, upper: int, total: int | None) -> int:
    if total is None:
        return 200
    if lower > total:
        return 416
    return 206 if (1 + upper - lower) < total else 200


def read_response(
    result: ResultRow, top: Range, content_type: str, *, head: bool, applied: str | None = None
) -> Response:
    """GET/HEAD on relations and functions."""
    lower = top.offset
    upper = lower + result.page_total - 1
    status = range_status(lower, upper, result.total)
    headers = {"Content-Range": content_range(lower, upper, result.total)}
    if applied:
        headers["Preference-Applied"] = applied
    if status == 416:
        error = ApiError(
            416,
            "PGRST103",
            "Requested range not satisfiable",
            details=f"An offset of {lower} was requested, but there are only {result.total} rows.",
        )
        body = json.dumps({"code": error.code, "details": error.details, "hint": None, "message": error.message})
        return _finish(status, headers, body, JSON_TYPE, result)
    return _finish(status, headers, "" if head else result.body, content_type, result)


def insert_response(
    result: ResultRow,
    content_type: str,
    *,
    table: str,
    representation: bool,
    merge: bool,
    count: bool,
    applied: str | None,
) -> Response:
    """201, or 200 when a merge-duplicates upsert inserted nothing; body only for return=representation."""
    status = 200 if merge and (result.inserted is None or result.inserted <= 0) else 201
    headers = {"Content-Range": content_range(1, 0, result.page_total if count else None)}
    if result.location:
        pairs = [item.split("=", 1) for item in result.location]
        headers["Location"] = f"/{quote(table)}?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in pairs)
    if applied:
        headers["Preference-Applied"] = applied
    if not representation:
        return _finish(status, headers, "", None, result)
    return _finish(status, headers, result.body, content_type, result)


def change_response(
    result: ResultRow, content_type: str, *, is_update: bool, representation: bool, count: bool, applied: str | None
) -> Response:
    """PATCH/DELETE: 200 with the rows for return=representation, else 204."""
    total = result.page_total if count else None
    lower, upper = (0, result.page_total - 1) if is_update else (1, 0)
    headers = {"Content-Range": content_range(lower, upper, total)}
    if applied:
        headers["Preference-Applied"] = applied
    if representation:
        return _finish(200, headers, result.body, content_type, result)
    return _finish(204, headers, "", None, result)


def void_response(result: ResultRow, top: Range) -> Response:
    upper = top.offset + result.page_total - 1
    return _finish(204, {"Content-Range": content_range(top.offset, upper, result.total)}, "", None, result)


def _finish(status: int, headers: dict[str, str], body: str, content_type: str | None, result: ResultRow) -> Response:
    """Apply ``response.status``/``response.headers`` set by SQL; they win over PostgREST's own."""
    if content_type:
        headers["Content-Type"] = content_type
    if result.guc_headers:
        headers.update(_guc_headers(result.guc_headers))
    if result.guc_status:
        status = _guc_status(result.guc_status)
    if status == 204 or status == 304:
        return Response(status_code=status, headers=headers)
    return Response(body.encode(), status_code=status, headers=headers)


def _guc_headers(text: str) -> dict[str, str]:
    try:
        items = json.loads(text)
        return {str(k): str(v) for item in items for k, v in dict(item).items()}
    except (ValueError, TypeError, AttributeError):
        raise ApiError(
            500,
            "PGRST111",
            "response.headers guc must be a JSON array composed of objects with a single key and a string value",
        ) from None


def _guc_status(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ApiError(500, "PGRST112", "response.status guc must be a valid status code") from None


__all__ = [
    "ResultRow",
    "change_response",
    "content_range",
    "insert_response",
    "range_status",
    "read_response",
    "void_response",
]
