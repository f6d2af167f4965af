"""``/object`` endpoints for one bucket: upload, download, info, list, remove (research §5.3).

Reads of private buckets run as the caller (an invisible object is ``NoSuchKey``); public buckets are read
as service_role, and a request without a valid JWT only ever sees public buckets.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from . import _errors as errors
from . import _sql as sql
from ._context import (
    Caller,
    StorageContext,
    authenticate,
    object_target,
    read_json,
    service_identity,
    user_identity,
)
from ._render import asset_response, info_response, json_response, list_item_json, object_json
from ._uploads import upload_from_request
from ._validation import must_be_valid_bucket_name

_ANONYMOUS = Caller(None, {"role": "anon"}, authenticated=False)
_SORT_COLUMNS = ("name", "updated_at", "created_at", "last_accessed_at")


async def upload_object(context: StorageContext, request: Request) -> Response:
    """``POST`` (``x-upsert: true`` to overwrite) and ``PUT`` (always an upsert)."""
    caller = authenticate(request, context)
    bucket_id, key = object_target(request)
    is_put = request.method == "PUT"
    operation = "storage.object.upload_update" if is_put else "storage.object.upload"
    upsert = is_put or request.headers.get("x-upsert") == "true"
    row = await upload_from_request(
        context,
        request,
        bucket_id=bucket_id,
        key=key,
        owner=caller.sub,
        upsert=upsert,
        tester=user_identity(request, caller, operation),
        operation=operation,
    )
    return json_response({"Id": str(row["id"]), "Key": f"{bucket_id}/{key}"})


async def get_object(context: StorageContext, request: Request) -> Response:
    """``GET``/``HEAD /object/{bucket}/{key}``: a missing or invalid JWT still reads public buckets."""
    caller = authenticate(request, context, optional=True)
    row = await find_readable(context, request, caller, "storage.object.get_authenticated")
    return asset_response(request, context.store, row)


async def get_authenticated_object(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    row = await find_readable(context, request, caller, "storage.object.get_authenticated")
    return asset_response(request, context.store, row)


async def get_public_object(context: StorageContext, request: Request) -> Response:
    row = await find_readable(context, request, _ANONYMOUS, "storage.object.get_public")
    return asset_response(request, context.store, row)


async def get_object_info(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context, optional=True)
    return info_response(
        await find_readable(context, request, caller, "object.get_authenticated_info", sql.INFO_COLUMNS)
    )


async def get_authenticated_object_info(context: StorageContext, request: Request) -> Response:
    caller = authenticate(request, context)
    return info_response(
        await find_readable(context, request, caller, "object.get_authenticated_info", sql.INFO_COLUMNS)
    )


async def get_public_object_info(context: StorageContext, request: Request) -> Response:
    return info_response(
        await find_readable(context, request, _ANONYMOUS, "storage.object.info_public", sql.INFO_COLUMNS)
    )


async def find_readable(
    context: StorageContext,
    request: Request,
    caller: Caller,
    operation: str,
    columns: tuple[str, ...] = ("id", "version", "metadata"),
) -> sql.Row:
    """The object row the caller may read: public buckets as service_role, private ones through RLS."""
    bucket_id, key = object_target(request)
    async with context.db.transaction(service_identity(request, context, operation)) as conn:
        bucket = await sql.find_bucket(conn, bucket_id, ("id", "public"))
    if bucket is None or (not caller.authenticated and not bucket["public"]):
        raise errors.no_such_bucket()
    identity = (
        service_identity(request, context, operation) if bucket["public"] else user_identity(request, caller, operation)
    )
    async with context.db.transaction(identity) as conn:
        row = await sql.find_object(conn, bucket_id, key, columns)
    if row is None:
        raise errors.no_such_key()
    return row


async def list_objects(context: StorageContext, request: Request) -> Response:
    """``POST /object/list/{bucket}``: direct children of ``prefix`` through ``storage.search`` as the caller."""
    caller = authenticate(request, context)
    bucket_id = must_be_valid_bucket_name(request.path_params["bucket"])
    body = await read_json(request)
    prefix = body.get("prefix")
    if not isinstance(prefix, str):
        raise errors.invalid_request("body must have required property 'prefix'")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    column, order = _sort_by(body.get("sortBy"))
    search = body.get("search") or ""
    if not isinstance(search, str):
        raise errors.invalid_request("body/search must be string")
    async with context.db.transaction(user_identity(request, caller, "storage.object.list")) as conn:
        rows = await sql.search(
            conn,
            bucket_id,
            prefix,
            limit=_body_int(body, "limit") or 100,
            offset=_body_int(body, "offset") or 0,
            search=search,
            sort_column=column,
            sort_order=order,
        )
    return json_response([list_item_json(row) for row in rows])


async def remove_objects(context: StorageContext, request: Request) -> Response:
    """``DELETE /object/{bucket}`` with ``{"prefixes": [...]}``: exact keys; invisible ones are skipped."""
    caller = authenticate(request, context)
    bucket_id = must_be_valid_bucket_name(request.path_params["bucket"])
    names = (await read_json(request)).get("prefixes")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise errors.invalid_request("body must have required property 'prefixes'")
    if not names:
        raise errors.invalid_request("body/prefixes must NOT have fewer than 1 items")
    async with context.db.transaction(user_identity(request, caller, "storage.object.delete_many")) as conn:
        rows = await sql.delete_objects(conn, bucket_id, names)
    for row in rows:
        context.store.remove(row.get("version"))
    return json_response([object_json(row) for row in rows])


async def delete_object(context: StorageContext, request: Request) -> Response:
    """``DELETE /object/{bucket}/{key}``: must exist; deleting it is the caller's DELETE policy's call."""
    caller = authenticate(request, context)
    bucket_id, key = object_target(request)
    operation = "storage.object.delete"
    async with context.db.transaction(service_identity(request, context, operation)) as conn:
        if await sql.find_object(conn, bucket_id, key, ("id",)) is None:
            raise errors.no_such_key()
    async with context.db.transaction(user_identity(request, caller, operation)) as conn:
        rows = await sql.delete_objects(conn, bucket_id, [key])
    if not rows:
        raise errors.access_denied("Access denied")
    context.store.remove(rows[0].get("version"))
    return json_response({"message": "Successfully deleted"})


def _sort_by(value: Any) -> tuple[str, str]:
    if value is None:
        return "name", "asc"
    if not isinstance(value, dict) or value.get("column") not in _SORT_COLUMNS:
        raise errors.invalid_request("body/sortBy/column must be equal to one of the allowed values")
    order = value.get("order", "asc")
    if order not in ("asc", "desc"):
        raise errors.invalid_request("body/sortBy/order must be equal to one of the allowed values")
    return str(value["column"]), str(order)


_MAX_INT = 2**31 - 1


def _body_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise errors.invalid_request(f"body/{name} must be integer >= 0")
    if value > _MAX_INT:  # storage.search takes int arguments
        raise errors.invalid_request(f"body/{name} must be <= {_MAX_INT}")
    return value


__all__ = [
    "delete_object",
    "find_readable",
    "get_authenticated_object",
    "get_authenticated_object_info",
    "get_object",
    "get_object_info",
    "get_public_object",
    "get_public_object_info",
    "list_objects",
    "remove_objects",
    "upload_object",
]
