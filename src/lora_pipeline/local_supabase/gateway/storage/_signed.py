"""Signed URLs (research §5.6): HS256 tokens, signed with the project JWT secret, bound to ``bucket/key``.

Signing is where access is decided: a download URL is issued only if the caller can SELECT the object, an
upload URL only if the caller passes the upload permission test. Serving a signed URL then runs as
service_role. A token carries a ``scope`` so a download token can never be replayed to upload.
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any
from urllib.parse import quote

import jwt
from starlette.requests import Request
from starlette.responses import Response

from . import _errors as errors
from . import _sql as sql
from ._context import (
    StorageContext,
    authenticate,
    object_target,
    read_json,
    service_identity,
    user_identity,
    verify_jwt,
)
from ._render import asset_response, json_response
from ._uploads import check_can_upload, decode_header_metadata, upload_from_request
from ._validation import must_be_valid_bucket_name, parse_expires_in

DOWNLOAD = "download"
UPLOAD = "upload"
UPLOAD_URL_SECONDS = 2 * 3600
"""Signed upload URLs live two hours, as on hosted Supabase (the server code's default is 60 s)."""
MAX_PATHS = 1000
LAST_HTTP_DATE = 253402300799
"""9999-12-31T23:59:59Z, the last instant an HTTP date (and Python's datetime) can express."""
_NO_ACCESS = "Either the object does not exist or you do not have access to it"


def sign(secret: str, claims: dict[str, Any], expires_in: int) -> str:
    now = int(time.time())
    return jwt.encode({**claims, "iat": now, "exp": now + expires_in}, secret, algorithm="HS256")


def verify(context: StorageContext, token: str, bucket_id: str, key: str, scope: str) -> dict[str, Any]:
    """Signature and expiry (InvalidJWT), scope and ``url == bucket/key`` (InvalidSignature)."""
    payload = verify_jwt(token, context.config.jwt_secret, failure=errors.invalid_jwt)
    token_scope = payload.get("scope")
    legacy_upload = token_scope is None and "upsert" in payload
    allowed = token_scope == scope or (token_scope is None and legacy_upload == (scope == UPLOAD))
    if not allowed:
        raise errors.invalid_signature(f"Token is not scoped for {scope}")
    if payload.get("url") != f"{bucket_id}/{key}":
        raise errors.invalid_signature()
    expiry = payload.get("exp", 0)
    if not isinstance(expiry, int | float) or expiry < time.time():
        raise errors.expired_token()
    return payload


def url_path(bucket_id: str, key: str) -> str:
    """``bucket/key`` with each segment percent-encoded (clients join it onto the storage URL)."""
    return "/".join(quote(part, safe="!$&'()*+,;=:@-._~") for part in [bucket_id, *key.split("/")])


async def sign_object_url(context: StorageContext, request: Request) -> Response:
    """``POST /object/sign/{bucket}/{key}``: issued only if the caller can SELECT the object."""
    caller = authenticate(request, context)
    bucket_id, key = object_target(request)
    expires_in = parse_expires_in(await read_json(request))
    async with context.db.transaction(user_identity(request, caller, "storage.object.sign")) as conn:
        if await sql.find_object(conn, bucket_id, key, ("id",)) is None:
            raise errors.no_such_key()
    token = sign(context.config.jwt_secret, {"url": f"{bucket_id}/{key}", "scope": DOWNLOAD}, expires_in)
    return json_response({"signedURL": f"/object/sign/{url_path(bucket_id, key)}?token={token}"})


async def sign_object_urls(context: StorageContext, request: Request) -> Response:
    """``POST /object/sign/{bucket}`` with ``paths``: one entry per path, an error for invisible ones."""
    caller = authenticate(request, context)
    bucket_id = must_be_valid_bucket_name(request.path_params["bucket"])
    body = await read_json(request)
    expires_in = parse_expires_in(body)
    paths = body.get("paths")
    if not isinstance(paths, list) or not all(isinstance(path, str) for path in paths):
        raise errors.invalid_request("body must have required property 'paths'")
    if not 1 <= len(paths) <= MAX_PATHS:
        raise errors.invalid_request(f"body/paths must have between 1 and {MAX_PATHS} items")
    async with context.db.transaction(user_identity(request, caller, "storage.object.sign_many")) as conn:
        visible = await sql.visible_names(conn, bucket_id, paths)
    return json_response([_signed_entry(context, bucket_id, path, path in visible, expires_in) for path in paths])


def _signed_entry(context: StorageContext, bucket_id: str, path: str, visible: bool, expires_in: int) -> dict[str, Any]:
    if not visible:
        return {"error": _NO_ACCESS, "path": path, "signedURL": None}
    token = sign(context.config.jwt_secret, {"url": f"{bucket_id}/{path}", "scope": DOWNLOAD}, expires_in)
    return {"error": None, "path": path, "signedURL": f"/object/sign/{url_path(bucket_id, path)}?token={token}"}


async def get_signed_object(context: StorageContext, request: Request) -> Response:
    """``GET /object/sign/{bucket}/{key}?token=``: no Authorization needed; served as service_role."""
    bucket_id, key = object_target(request)
    payload = verify(context, _token(request), bucket_id, key, DOWNLOAD)
    async with context.db.transaction(service_identity(request, context, "storage.object.get_signed")) as conn:
        row = await sql.find_object(conn, bucket_id, key)
    if row is None:
        raise errors.no_such_key()
    return asset_response(request, context.store, row, expires=http_date(payload["exp"]))


def http_date(expiry: float) -> str:
    """``Expires`` for a token's ``exp``; HTTP dates end at year 9999, later expiries are shown as that."""
    return formatdate(min(expiry, LAST_HTTP_DATE), usegmt=True)


async def sign_upload_url(context: StorageContext, request: Request) -> Response:
    """``POST /object/upload/sign/{bucket}/{key}``: the signer must pass the upload permission test."""
    caller = authenticate(request, context)
    bucket_id, key = object_target(request)
    upsert = request.headers.get("x-upsert") == "true"
    metadata: dict[str, Any] = {}
    if request.headers.get("content-type"):
        metadata["mimetype"] = request.headers["content-type"]
    if (request.headers.get("content-length") or "").isdigit():
        metadata["contentLength"] = int(request.headers["content-length"])
    probe = sql.ObjectDraft(
        bucket_id, key, caller.sub, metadata, decode_header_metadata(request.headers.get("x-metadata")), "1"
    )
    operation = "storage.object.sign_upload_url"
    await check_can_upload(context, user_identity(request, caller, operation), probe, upsert=upsert)
    claims: dict[str, Any] = {"url": f"{bucket_id}/{key}", "upsert": upsert, "scope": UPLOAD}
    if caller.sub:
        claims["owner"] = caller.sub
    token = sign(context.config.jwt_secret, claims, UPLOAD_URL_SECONDS)
    return json_response({"url": f"/object/upload/sign/{url_path(bucket_id, key)}?token={token}", "token": token})


async def upload_to_signed_url(context: StorageContext, request: Request) -> Response:
    """``PUT /object/upload/sign/{bucket}/{key}?token=``: owner and upsert come from the signer's token."""
    bucket_id, key = object_target(request)
    payload = verify(context, _token(request), bucket_id, key, UPLOAD)
    owner = payload.get("owner") if isinstance(payload.get("owner"), str) else None
    operation = "storage.object.upload_signed"
    await upload_from_request(
        context,
        request,
        bucket_id=bucket_id,
        key=key,
        owner=owner,
        upsert=bool(payload.get("upsert")),
        tester=service_identity(request, context, operation),
        operation=operation,
    )
    return json_response({"Key": f"{bucket_id}/{key}"})


def _token(request: Request) -> str:
    token = request.query_params.get("token")
    if not token:
        raise errors.invalid_request("querystring must have required property 'token'")
    return token


__all__ = [
    "DOWNLOAD",
    "UPLOAD",
    "get_signed_object",
    "sign",
    "sign_object_url",
    "sign_object_urls",
    "sign_upload_url",
    "upload_to_signed_url",
    "url_path",
    "verify",
]
