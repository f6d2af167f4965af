"""The upload pipeline (research §5.4): limits as service_role, the permission test as the caller, bytes to
disk, then the row finalised as service_role.

The permission test is the real statement — ``INSERT`` for a plain upload, ``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING *`` for an upsert — executed as the caller and rolled back, so the project's Storage
policies (which also read request headers) decide. Only then are bytes accepted.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import psycopg
from starlette.requests import ClientDisconnect, Request

from ...db import RequestIdentity
from ..json_limits import parse_json
from . import _errors as errors
from . import _sql as sql
from ._context import StorageContext, service_identity
from ._disk import StagedBytes, StagingWriter
from ._multipart import MultipartError, MultipartReader, Part, boundary_of
from ._render import iso
from ._validation import (
    effective_size_limit,
    is_empty_folder,
    must_be_valid_bucket_name,
    must_be_valid_key,
    validate_mime_type,
)

_MAX_USER_METADATA = 1024 * 1024
_MAX_FIELDS = 10


@dataclass(frozen=True)
class BucketLimits:
    """What Storage reads about a bucket, as service_role, before an upload."""

    id: str
    public: bool
    file_size_limit: int | None
    allowed_mime_types: list[str] | None

    def size_limit(self, global_limit: int, key: str) -> int:
        return effective_size_limit(self.file_size_limit, global_limit, key)

    def check_mime_type(self, mime_type: str, key: str) -> None:
        if not is_empty_folder(key):
            validate_mime_type(mime_type, self.allowed_mime_types)


@dataclass(frozen=True)
class IncomingFile:
    """An upload's declared properties and the stream of its bytes."""

    mime_type: str
    cache_control: str
    user_metadata: dict[str, Any] | None
    declared_length: int | None
    chunks: AsyncIterator[bytes]


async def bucket_limits(context: StorageContext, request: Request, bucket_id: str, operation: str) -> BucketLimits:
    async with context.db.transaction(service_identity(request, context, operation)) as conn:
        row = await sql.find_bucket(conn, bucket_id, sql.BUCKET_LIMIT_COLUMNS)
    if row is None:
        raise errors.no_such_bucket()
    return BucketLimits(row["id"], bool(row["public"]), row["file_size_limit"], row["allowed_mime_types"])


class RolledBack(Exception):
    """Ends a permission-test transaction without committing it."""


async def check_can_upload(
    context: StorageContext, identity: RequestIdentity, draft: sql.ObjectDraft, *, upsert: bool
) -> None:
    """Execute the upload's statement as ``identity`` and roll it back; Postgres says yes or no."""
    try:
        async with context.db.transaction(identity) as conn:
            if upsert:
                await sql.upsert_object(conn, draft)
            else:
                await sql.insert_object(conn, draft)
            raise RolledBack
    except RolledBack:
        return
    except psycopg.errors.UniqueViolation:
        raise errors.key_already_exists() from None


def object_metadata(staged: StagedBytes, mime_type: str, cache_control: str, modified: float) -> dict[str, Any]:
    """The ``metadata`` column Storage writes after an upload."""
    return {
        "eTag": staged.etag,
        "size": staged.size,
        "mimetype": mime_type,
        "cacheControl": cache_control,
        "lastModified": iso(datetime.fromtimestamp(modified, tz=timezone.utc)),
        "contentLength": staged.size,
        "httpStatusCode": 200,
    }


async def finalise(context: StorageContext, request: Request, draft: sql.ObjectDraft, operation: str) -> sql.Row:
    """As service_role: lock the key, upsert the row; the replaced version's bytes go after the commit.

    The new bytes must already be committed as ``draft.version``; they are removed again on failure.
    """
    try:
        async with context.db.transaction(service_identity(request, context, operation)) as conn:
            await sql.lock_object(conn, draft.bucket_id, draft.name)
            current = await sql.find_object(conn, draft.bucket_id, draft.name, ("id", "version"), for_update=True)
            row = await sql.upsert_object(conn, draft)
    except BaseException:
        context.store.remove(draft.version)
        raise
    if current and current["version"] != draft.version:
        context.store.remove(current["version"])
    return row


async def read_incoming_file(request: Request, limits: BucketLimits, key: str) -> IncomingFile:
    """Multipart (fields, then the first file part) or a raw body; MIME type checked before any bytes."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        incoming = await _read_multipart(request, content_type)
    else:
        incoming = _read_raw(request, content_type)
    limits.check_mime_type(incoming.mime_type, key)
    return incoming


async def store_incoming(context: StorageContext, incoming: IncomingFile, limit: int) -> StagedBytes:
    """Stream to a staging file; past ``limit`` nothing is kept and the answer is EntityTooLarge."""
    writer = StagingWriter(context.store.new_staging_path(), limit)
    try:
        async for chunk in incoming.chunks:
            await writer.write(chunk)
        staged = await writer.finish()
    except (ClientDisconnect, MultipartError, OSError) as error:
        writer.discard()
        if isinstance(error, MultipartError):
            raise errors.no_content(str(error)) from None
        raise
    if staged.truncated:
        staged.path.unlink(missing_ok=True)
        raise errors.entity_too_large()
    return staged


async def upload_from_request(
    context: StorageContext,
    request: Request,
    *,
    bucket_id: str,
    key: str,
    owner: str | None,
    upsert: bool,
    tester: RequestIdentity,
    operation: str,
) -> sql.Row:
    """The whole standard upload; ``tester`` is who the permission test runs as."""
    must_be_valid_bucket_name(bucket_id)
    must_be_valid_key(key)
    limits = await bucket_limits(context, request, bucket_id, operation)
    incoming = await read_incoming_file(request, limits, key)
    limit = limits.size_limit(context.global_limit, key)
    if incoming.declared_length is not None and incoming.declared_length > limit:
        raise errors.entity_too_large()
    declared = request.headers.get("content-length")
    test_metadata: dict[str, Any] = {"mimetype": incoming.mime_type}
    if declared and declared.isdigit():
        test_metadata["contentLength"] = int(declared)
    probe = sql.ObjectDraft(bucket_id, key, owner, test_metadata, incoming.user_metadata, "1")
    await check_can_upload(context, tester, probe, upsert=upsert)
    staged = await store_incoming(context, incoming, limit)
    version, modified = commit_staged(context, staged)
    metadata = object_metadata(staged, incoming.mime_type, incoming.cache_control, modified)
    draft = sql.ObjectDraft(bucket_id, key, owner, metadata, incoming.user_metadata or {}, version)
    return await finalise(context, request, draft, operation)


def commit_staged(context: StorageContext, staged: StagedBytes) -> tuple[str, float]:
    """Give the staged bytes a fresh version; returns it with the file's modification time."""
    version = str(uuid.uuid4())
    path = context.store.commit(staged.path, version)
    return version, os.stat(path).st_mtime


def _read_raw(request: Request, content_type: str) -> IncomingFile:
    declared = request.headers.get("content-length")
    user_metadata = decode_header_metadata(request.headers.get("x-metadata"))
    return IncomingFile(
        mime_type=content_type or "application/octet-stream",
        cache_control=request.headers.get("cache-control") or "no-cache",
        user_metadata=user_metadata,
        declared_length=int(declared) if declared and declared.isdigit() else None,
        chunks=request.stream(),
    )


async def _read_multipart(request: Request, content_type: str) -> IncomingFile:
    try:
        reader = MultipartReader(request.stream(), boundary_of(content_type))
        fields, file_part = await _read_fields(reader)
    except MultipartError as error:
        raise errors.no_content(str(error)) from None
    if file_part is None:
        raise errors.no_content()
    cache_time = fields.get("cacheControl")
    custom = fields.get("metadata", fields.get("userMetadata"))
    return IncomingFile(
        mime_type=fields.get("contentType") or file_part.mime_type,
        cache_control=f"max-age={cache_time}" if cache_time else "no-cache",
        user_metadata=_parse_json_object(custom) if custom is not None else None,
        declared_length=None,  # the multipart length includes the form's overhead
        chunks=reader.iter_body(),
    )


async def _read_fields(reader: MultipartReader) -> tuple[dict[str, str], Part | None]:
    fields: dict[str, str] = {}
    for _ in range(_MAX_FIELDS + 1):
        part = await reader.next_part()
        if part is None or part.is_file:
            return fields, part
        value = await reader.read_body(_MAX_USER_METADATA)
        if value is None:
            raise errors.entity_too_large("user_metadata")
        fields.setdefault(part.name, value.decode("utf-8", "replace"))
    raise errors.invalid_request("Too many form fields")


def decode_header_metadata(value: str | None) -> dict[str, Any] | None:
    """``x-metadata``: base64 of a JSON object; unreadable values are ignored, as Storage does."""
    if not value:
        return None
    try:
        return _parse_json_object(base64.b64decode(value).decode("utf-8"))
    except ValueError:  # not base64 (non-ASCII included: binascii.Error), not UTF-8: no user metadata
        return None


def _parse_json_object(text: str) -> dict[str, Any] | None:
    try:
        value = parse_json(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


__all__ = [
    "BucketLimits",
    "IncomingFile",
    "RolledBack",
    "bucket_limits",
    "check_can_upload",
    "commit_staged",
    "decode_header_metadata",
    "finalise",
    "object_metadata",
    "read_incoming_file",
    "store_incoming",
    "upload_from_request",
]
