"""``/bucket`` endpoints (research §5.3): every statement runs as the caller, so bucket policies decide.

Only the checks the real service does as "super user" — whether a bucket to delete exists and is empty —
and the actual emptying run as service_role.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import Response

from . import _errors as errors
from . import _sql as sql
from ._context import StorageContext, authenticate, read_json, service_identity, user_identity
from ._render import bucket_json, json_response
from ._validation import (
    must_be_valid_bucket_name,
    owner_uuid,
    parse_file_size_limit,
    validate_allowed_mime_types,
)

_UPDATABLE = ("public", "file_size_limit", "allowed_mime_types")
_EMPTY_QUEUED = "Empty bucket has been queued. Completion may take up to an hour."
_OLD_SUPABASE_PY = re.compile(r"supabase-py/(\d+)\.(\d+)\.(\d+)", re.IGNORECASE)
_OLD_STORAGE3 = re.compile(r"supabase-py/storage3 v(\d+)\.(\d+)\.(\d+)", re.IGNORECASE)


async def list_buckets(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    query = request.query_params
    options: dict[str, Any] = {
        "limit": _query_int(query.get("limit"), "limit", minimum=1),
        "offset": _query_int(query.get("offset"), "offset", minimum=0),
        "sort_column": _query_choice(query.get("sortColumn"), "sortColumn", sql.BUCKET_SORT_COLUMNS),
        "sort_order": _query_choice(query.get("sortOrder"), "sortOrder", ("asc", "desc")) or "asc",
        "search": query.get("search"),
    }
    async with context.db.transaction(user_identity(request, caller, "storage.bucket.list")) as conn:
        rows = await sql.list_buckets(conn, with_type=_client_reads_type(request), **options)
    return json_response([bucket_json(row) for row in rows])


async def get_bucket(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    async with context.db.transaction(user_identity(request, caller, "storage.bucket.get")) as conn:
        row = await sql.find_bucket(conn, request.path_params["bucket_id"])
    if row is None:
        raise errors.no_such_bucket()
    return json_response(bucket_json(row))


async def create_bucket(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    body = await read_json(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise errors.invalid_request("body must have required property 'name'")
    if name.strip() != name:
        raise errors.invalid_bucket_name()
    bucket_id = body.get("id") or name
    if not isinstance(bucket_id, str):
        raise errors.invalid_request("body/id must be string")
    values = {"id": must_be_valid_bucket_name(bucket_id), "name": must_be_valid_bucket_name(name)}
    values.update(_owner_columns(caller.sub))
    values.update(_bucket_options(context, body, create=True))
    try:
        async with context.db.transaction(user_identity(request, caller, "storage.bucket.create")) as conn:
            await sql.insert_bucket(conn, values)
    except psycopg.errors.UniqueViolation:
        raise errors.bucket_already_exists() from None
    return json_response({"name": name})


async def update_bucket(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    bucket_id = must_be_valid_bucket_name(request.path_params["bucket_id"])
    body = await read_json(request)
    if not any(name in body for name in _UPDATABLE):
        raise errors.invalid_request("body must match a schema in anyOf")
    fields = _bucket_options(context, body, create=False)
    async with context.db.transaction(user_identity(request, caller, "storage.bucket.update")) as conn:
        updated = await sql.update_bucket(conn, bucket_id, fields)
    if not updated:
        raise errors.no_such_bucket()
    return json_response({"message": "Successfully updated"})


async def empty_bucket(context: StorageContext, request: Request) -> Response:
    """Synchronous here (the real service queues it), deleting as service_role what the caller can see."""
    caller = authenticate(request, context)
    bucket_id = request.path_params["bucket_id"]
    async with context.db.transaction(user_identity(request, caller, "storage.bucket.empty")) as conn:
        if await sql.find_bucket(conn, bucket_id, ("name",)) is None:
            raise errors.no_such_bucket()
        visible = await sql.has_objects(conn, bucket_id)
    if visible:
        async with context.db.transaction(service_identity(request, context, "storage.bucket.empty")) as conn:
            versions = await sql.delete_all_objects(conn, bucket_id)
        for version in versions:
            context.store.remove(version)
    return json_response({"message": _EMPTY_QUEUED})


async def delete_bucket(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    bucket_id = request.path_params["bucket_id"]
    async with context.db.transaction(service_identity(request, context, "storage.bucket.delete")) as conn:
        if await sql.find_bucket(conn, bucket_id, ("id",), for_update=True) is None:
            raise errors.no_such_bucket()
        if await sql.has_objects(conn, bucket_id):
            raise errors.bucket_not_empty()
    async with context.db.transaction(user_identity(request, caller, "storage.bucket.delete")) as conn:
        deleted = await sql.delete_bucket(conn, bucket_id)
    if not deleted:
        raise errors.no_such_bucket()
    return json_response({"message": "Successfully deleted"})


def _bucket_options(context: StorageContext, body: dict[str, Any], *, create: bool) -> dict[str, Any]:
    """``public`` / ``file_size_limit`` / ``allowed_mime_types`` (and ``type`` on create), validated."""
    options: dict[str, Any] = {}
    if "public" in body or create:
        public = body.get("public", False)
        if not isinstance(public, bool):
            raise errors.invalid_request("body/public must be boolean")
        options["public"] = public
    if "file_size_limit" in body:
        options["file_size_limit"] = parse_file_size_limit(body["file_size_limit"], context.global_limit)
    if "allowed_mime_types" in body:
        options["allowed_mime_types"] = validate_allowed_mime_types(body["allowed_mime_types"])
    if create:
        kind = body.get("type") or "STANDARD"
        if kind not in ("STANDARD", "ANALYTICS"):
            raise errors.invalid_request("body/type must be equal to one of the allowed values")
        if kind == "ANALYTICS":
            raise errors.StorageError(
                409, "FeatureNotEnabled", "The feature iceberg_catalog is not enabled for this resource"
            )
        options["type"] = kind
    return options


def _owner_columns(sub: str | None) -> dict[str, Any]:
    columns: dict[str, Any] = {}
    if owner_uuid(sub):
        columns["owner"] = owner_uuid(sub)
    if sub:
        columns["owner_id"] = sub
    return columns


def _client_reads_type(request: Request) -> bool:
    """Bucket ``type`` is omitted for supabase-py < 2.18 and storage3 < 0.12.1, which choke on it."""
    client_info = request.headers.get("x-client-info", "")
    user_agent = request.headers.get("user-agent", "")
    old_py = _OLD_SUPABASE_PY.search(client_info)
    old_storage3 = _OLD_STORAGE3.search(user_agent)
    if old_py and tuple(map(int, old_py.groups())) < (2, 18, 0):
        return False
    return not (old_storage3 and tuple(map(int, old_storage3.groups())) < (0, 12, 1))


def _query_int(value: str | None, name: str, *, minimum: int) -> int | None:
    if value is None:
        return None
    if not value.strip().lstrip("-").isdigit() or int(value) < minimum:
        raise errors.invalid_request(f"querystring/{name} must be integer >= {minimum}")
    return int(value)


def _query_choice(value: str | None, name: str, choices: tuple[str, ...]) -> str | None:
    if value is not None and value not in choices:
        raise errors.invalid_request(f"querystring/{name} must be equal to one of the allowed values")
    return value


__all__ = ["create_bucket", "delete_bucket", "empty_bucket", "get_bucket", "list_buckets", "update_bucket"]
