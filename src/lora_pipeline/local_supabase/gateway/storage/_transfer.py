"""``POST /object/move`` and ``POST /object/copy`` (storage/object.ts moveObject / copyObject).

Move: the caller must be able to SELECT the source and UPDATE it into its new name (tested by running the
UPDATE as the caller and rolling back). Copy: SELECT on the source, then the destination's upload
permission test. The bytes get a new version (a hard link: committed files are never modified), and the
row is written as service_role.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import Response

from . import _errors as errors
from . import _sql as sql
from ._context import Caller, StorageContext, authenticate, read_json, service_identity, user_identity
from ._render import iso, json_response, object_json
from ._uploads import RolledBack, check_can_upload, decode_header_metadata
from ._validation import must_be_valid_bucket_name, must_be_valid_key, owner_uuid

_MOVE = "storage.object.move"
_COPY = "storage.object.copy"


async def move_object(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    source_bucket, source_key, target_bucket, target_key = _endpoints(await read_json(request))
    version = str(uuid.uuid4())
    changes = {"name": target_key, "bucket_id": target_bucket, "version": version, **_owner(caller)}
    await _test_move(context, request, caller, source_bucket, source_key, changes)
    async with context.db.transaction(service_identity(request, context, _MOVE)) as conn:
        source = await sql.find_object(conn, source_bucket, source_key, ("id", "version", "metadata"))
    if source is None:
        raise errors.no_such_key()
    if (source_bucket, source_key) == (target_bucket, target_key):
        return _moved(source["id"], target_key)
    context.store.link(source["version"], version)
    try:
        async with context.db.transaction(service_identity(request, context, _MOVE)) as conn:
            await sql.lock_object(conn, target_bucket, target_key)
            if await sql.find_object(conn, source_bucket, source_key, ("id",), for_update=True) is None:
                raise errors.no_such_key()
            changes["metadata"] = Jsonb(_touched(source["metadata"]))
            await sql.update_object(conn, source_bucket, source_key, changes)
    except BaseException:
        context.store.remove(version)
        raise
    context.store.remove(source["version"])
    return _moved(source["id"], target_key)


async def copy_object(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    body = await read_json(request)
    source_bucket, source_key, target_bucket, target_key = _endpoints(body)
    async with context.db.transaction(user_identity(request, caller, _COPY)) as conn:
        origin = await sql.find_object(
            conn, source_bucket, source_key, ("bucket_id", "metadata", "user_metadata", "version")
        )
    if origin is None:
        raise errors.no_such_key()
    metadata = _copied_metadata(origin.get("metadata") or {}, body)
    copy_user_metadata = body.get("copyMetadata", True) is not False
    user_metadata = (
        origin.get("user_metadata") if copy_user_metadata else decode_header_metadata(request.headers.get("x-metadata"))
    )
    upsert = request.headers.get("x-upsert") == "true"
    probe = sql.ObjectDraft(target_bucket, target_key, caller.sub, metadata, user_metadata, "1")
    await check_can_upload(context, user_identity(request, caller, _COPY), probe, upsert=upsert)
    version = str(uuid.uuid4())
    context.store.link(origin["version"], version)
    draft = sql.ObjectDraft(target_bucket, target_key, caller.sub, _touched(metadata), user_metadata, version)
    row = await _write_copy(context, request, draft)
    body_out = {"Id": str(row["id"]), "Key": f"{target_bucket}/{target_key}", **object_json(row)}
    return json_response(body_out)


async def _test_move(
    context: StorageContext, request: Request, caller: Caller, bucket_id: str, key: str, changes: dict[str, Any]
) -> None:
    """SELECT the source and UPDATE it as the caller, then roll back."""
    try:
        async with context.db.transaction(user_identity(request, caller, _MOVE)) as conn:
            if await sql.find_object(conn, bucket_id, key, ("id",)) is None:
                raise errors.no_such_key()
            if await sql.update_object(conn, bucket_id, key, changes) is None:
                raise errors.no_such_key()
            raise RolledBack
    except RolledBack:
        return


async def _write_copy(context: StorageContext, request: Request, draft: sql.ObjectDraft) -> sql.Row:
    try:
        async with context.db.transaction(service_identity(request, context, _COPY)) as conn:
            await sql.lock_object(conn, draft.bucket_id, draft.name)
            existing = await sql.find_object(conn, draft.bucket_id, draft.name, ("version",), for_update=True)
            row = await sql.upsert_object(conn, draft)
    except BaseException:
        context.store.remove(draft.version)
        raise
    if existing and existing["version"] != draft.version:
        context.store.remove(existing["version"])
    return row


def _endpoints(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """(source bucket, source key, destination bucket, destination key), all validated."""
    for name in ("bucketId", "sourceKey", "destinationKey"):
        if not isinstance(body.get(name), str):
            raise errors.invalid_request(f"body must have required property '{name}'")
    source_bucket = must_be_valid_bucket_name(body["bucketId"])
    target_bucket = body.get("destinationBucket") or source_bucket
    if not isinstance(target_bucket, str):
        raise errors.invalid_request("body/destinationBucket must be string")
    target_key = must_be_valid_key(body["destinationKey"])
    source_key = must_be_valid_key(body["sourceKey"])
    return source_bucket, source_key, must_be_valid_bucket_name(target_bucket), target_key


def _owner(caller: Caller) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if owner_uuid(caller.sub):
        columns["owner"] = owner_uuid(caller.sub)
    if caller.sub:
        columns["owner_id"] = caller.sub
    return columns


def _copied_metadata(metadata: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The source's metadata; ``copyMetadata: false`` lets ``metadata.cacheControl/mimetype`` override."""
    copied = dict(metadata)
    overrides = body.get("metadata")
    if body.get("copyMetadata", True) is False and isinstance(overrides, dict):
        for name in ("cacheControl", "mimetype"):
            if isinstance(overrides.get(name), str):
                copied[name] = overrides[name]
    return copied


def _touched(metadata: dict[str, Any] | None) -> dict[str, Any]:
    return {**(metadata or {}), "lastModified": iso(datetime.now(timezone.utc))}


def _moved(object_id: Any, key: str) -> Response:
    return json_response({"message": "Successfully moved", "Id": str(object_id), "Key": key})


__all__ = ["copy_object", "move_object"]
