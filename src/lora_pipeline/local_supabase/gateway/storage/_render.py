"""Response shapes (research §5.5): buckets, object rows, list items, info, and object bytes.

The real service serialises with fast-json-stringify: timestamps become ``toISOString()`` text
(``2026-01-02T03:04:05.678Z``), and a NULL in a string-typed field (a bucket's or object's ``owner``)
becomes ``""`` — storage3's pydantic models depend on that.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from . import _errors as errors
from ._disk import DiskStore, read_chunks
from ._sql import Row

JSON_TYPE = "application/json; charset=utf-8"
_OBJECT_STRINGS = ("name", "bucket_id", "owner", "owner_id", "version")
_OBJECT_NULLABLE = ("id", "updated_at", "created_at", "last_accessed_at", "metadata", "user_metadata")
_LIST_FIELDS = ("name", "id", "updated_at", "created_at", "last_accessed_at", "metadata")
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def iso(value: Any) -> Any:
    """A timestamp as JavaScript's ``toISOString()`` writes it; other values unchanged."""
    if not isinstance(value, datetime):
        return value
    utc = value.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    text = json.dumps(body, separators=(",", ":"), default=str)
    return Response(text, status_code=status, media_type=JSON_TYPE, headers=headers)


def bucket_json(row: Row) -> dict[str, Any]:
    """Every key storage3's ``BaseBucket`` requires; ``owner`` is a string."""
    body: dict[str, Any] = {
        "id": row["id"],
        "name": row["name"],
        "owner": str(row["owner"]) if row.get("owner") is not None else "",
        "public": bool(row.get("public")),
    }
    if "type" in row:
        body["type"] = row["type"]
    body["file_size_limit"] = row.get("file_size_limit")
    body["allowed_mime_types"] = row.get("allowed_mime_types")
    body["created_at"] = iso(row.get("created_at"))
    body["updated_at"] = iso(row.get("updated_at"))
    return body


def object_json(row: Row) -> dict[str, Any]:
    """A ``storage.objects`` row in the API's object schema (path_tokens and unknown columns dropped)."""
    body: dict[str, Any] = {}
    for name in _OBJECT_STRINGS:
        if name in row:
            body[name] = "" if row[name] is None else str(row[name])
    for name in _OBJECT_NULLABLE:
        if name in row:
            value = row[name]
            body[name] = str(value) if name == "id" and value is not None else iso(value)
    return body


def list_item_json(row: Row) -> dict[str, Any]:
    body = {name: iso(row.get(name)) for name in _LIST_FIELDS}
    body["id"] = str(row["id"]) if row.get("id") is not None else None
    return body


def info_json(row: Row) -> dict[str, Any]:
    """``GET /object/info``: sizes and types from the row's metadata, ``metadata`` = user metadata."""
    metadata = row.get("metadata") or {}
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "version": row.get("version"),
        "bucket_id": row["bucket_id"],
        "size": metadata.get("size"),
        "content_type": metadata.get("mimetype"),
        "cache_control": metadata.get("cacheControl"),
        "etag": metadata.get("eTag"),
        "metadata": row.get("user_metadata"),
        "last_modified": iso(row.get("updated_at")),
        "created_at": iso(row.get("created_at")),
    }


def info_response(row: Row) -> Response:
    metadata = row.get("metadata") or {}
    headers = {
        "ETag": metadata.get("eTag") if isinstance(metadata.get("eTag"), str) else "",
        "Last-Modified": _http_date(str(metadata.get("lastModified") or "")),
        "Cache-Control": str(metadata.get("cacheControl") or ""),
    }
    return json_response(info_json(row), headers={name: value for name, value in headers.items() if value})


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def parse_range(header: str, size: int) -> ByteRange:
    """A single ``bytes=a-b`` / ``bytes=a-`` / ``bytes=-n`` range; anything else is InvalidRange (416)."""
    match = _RANGE.match(header.strip())
    if not match or size <= 0 or not (match.group(1) or match.group(2)):
        raise errors.invalid_range()
    first, last = match.group(1), match.group(2)
    if not first:
        suffix = int(last)
        if suffix <= 0:
            raise errors.invalid_range()
        return ByteRange(max(size - suffix, 0), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise errors.invalid_range()
    return ByteRange(start, min(end, size - 1))


def content_disposition(download: str | None) -> str | None:
    """``?download`` → attachment; ``?download=name`` → attachment with that file name."""
    if download is None:
        return None
    if download == "":
        return "attachment;"
    encoded = quote(download, safe="")
    return f"attachment; filename={encoded}; filename*=UTF-8''{encoded}"


def asset_response(request: Request, store: DiskStore, row: Row, *, expires: str | None = None) -> Response:
    """The object's bytes with Storage's headers: Range → 206, ``If-None-Match`` → 304, HEAD → no body."""
    metadata = row.get("metadata") or {}
    headers = _metadata_headers(metadata, cache_control=None if expires else metadata.get("cacheControl"))
    if request.method == "HEAD":
        return _finish_headers(Response(status_code=200, headers=headers), request, expires)
    opened = store.open(row.get("version"))
    if opened is None:
        raise errors.missing_bytes()
    handle, stat = opened
    try:
        status, span = _select_bytes(request, headers, stat)
    except errors.StorageError:
        handle.close()
        raise
    if status == 304:
        handle.close()
        return Response(status_code=304, headers={"ETag": headers["ETag"]})
    body = read_chunks(handle, span.start, span.length)
    return _finish_headers(StreamingResponse(body, status_code=status, headers=headers), request, expires)


def _select_bytes(request: Request, headers: dict[str, str], stat: os.stat_result) -> tuple[int, ByteRange]:
    """304 for a matching ``If-None-Match``, 206 + ``Content-Range`` for a ``Range``, else everything."""
    headers["Last-Modified"] = formatdate(stat.st_mtime, usegmt=True)
    if headers.get("ETag") and request.headers.get("if-none-match") == headers["ETag"]:
        return 304, ByteRange(0, -1)
    span, status = ByteRange(0, stat.st_size - 1), 200
    range_header = request.headers.get("range")
    if range_header:
        span, status = parse_range(range_header, stat.st_size), 206
        headers["Content-Range"] = f"bytes {span.start}-{span.end}/{stat.st_size}"
    headers["Content-Length"] = str(span.length)
    return status, span


def _metadata_headers(metadata: dict[str, Any], *, cache_control: str | None) -> dict[str, str]:
    mimetype = str(metadata.get("mimetype") or "application/octet-stream")
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": "text/plain" if "text/html" in mimetype else mimetype,
        "X-Robots-Tag": "none",
    }
    if isinstance(metadata.get("eTag"), str):
        headers["ETag"] = metadata["eTag"]
    if metadata.get("lastModified"):
        headers["Last-Modified"] = _http_date(str(metadata["lastModified"]))
    if metadata.get("contentLength") is not None:
        headers["Content-Length"] = str(metadata["contentLength"])
    if cache_control:
        headers["Cache-Control"] = cache_control
    return {name: value for name, value in headers.items() if value}


def _finish_headers(response: Response, request: Request, expires: str | None) -> Response:
    if expires:
        response.headers["Expires"] = expires
    disposition = content_disposition(
        request.query_params.get("download") if "download" in request.query_params else None
    )
    if disposition:
        response.headers["Content-Disposition"] = disposition
    return response


def _http_date(value: str) -> str:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return formatdate(moment.timestamp(), usegmt=True)


__all__ = [
    "ByteRange",
    "asset_response",
    "bucket_json",
    "content_disposition",
    "info_json",
    "info_response",
    "iso",
    "json_response",
    "list_item_json",
    "object_json",
    "parse_range",
]
