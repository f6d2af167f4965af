"""Who is calling, and the Postgres identity each step of a request runs as (research §5.1).

Storage verifies the bearer JWT itself (jose semantics: no clock leeway, jose's messages) and runs every
user-scoped statement with ``role`` = the JWT's role plus the claims and ``request.*`` settings, in a
transaction. "Super-user" steps (bucket lookups, limits, finalising an upload) run the same way with the
service key's payload, i.e. as ``service_role``, which bypasses RLS. The gateway never decides access.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.requests import Request

from ...db import Database, RequestIdentity
from ..apikey import bearer_token
from ..config import GatewayConfig
from ..json_limits import parse_json
from . import _errors as errors
from ._disk import DiskStore
from ._validation import must_be_valid_bucket_name, must_be_valid_key

_MAX_JSON_BODY = 2 * 1024 * 1024
_ANONYMOUS: Mapping[str, Any] = {"role": "anon"}


@dataclass
class StorageContext:
    """Everything the Storage endpoints share: config, database, object store, the service identity."""

    config: GatewayConfig
    db: Database
    store: DiskStore
    service_claims: Mapping[str, Any] = field(default_factory=dict)

    @property
    def global_limit(self) -> int:
        return self.config.global_file_size_limit


@dataclass(frozen=True)
class Caller:
    """The verified bearer of a request (or an anonymous one where a route allows that)."""

    token: str | None
    claims: Mapping[str, Any]
    authenticated: bool

    @property
    def role(self) -> str:
        return str(self.claims.get("role") or "anon")

    @property
    def sub(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


def verify_jwt(
    token: str, secret: str, failure: Callable[[str], errors.StorageError] = errors.access_denied
) -> dict[str, Any]:
    """Verify like jose does for Storage (no leeway); ``failure`` builds the error from jose's message."""
    try:
        return jwt.decode(token, secret, algorithms=["HS256"], leeway=0, options={"verify_aud": False, "require": []})
    except jwt.InvalidTokenError as error:
        raise failure(_jose_message(error)) from None


def _jose_message(error: jwt.InvalidTokenError) -> str:
    if isinstance(error, jwt.ExpiredSignatureError):
        return '"exp" claim timestamp check failed'
    if isinstance(error, jwt.ImmatureSignatureError):
        return '"nbf" claim timestamp check failed'
    if isinstance(error, jwt.InvalidSignatureError):
        return "signature verification failed"
    if isinstance(error, jwt.InvalidAlgorithmError):
        return '"alg" (Algorithm) Header Parameter value not allowed'
    if isinstance(error, jwt.DecodeError):
        return "Invalid Compact JWS"
    return str(error) or "Invalid JWT"


def authenticate(request: Request, context: StorageContext, *, optional: bool = False) -> Caller:
    """The caller of ``request``; ``optional`` routes treat a missing or bad token as anonymous."""
    token = bearer_token(request, context.config)
    if not token:
        if optional:
            return Caller(None, _ANONYMOUS, authenticated=False)
        raise errors.invalid_request("headers must have required property 'authorization'")
    try:
        claims = verify_jwt(token, context.config.jwt_secret)
    except errors.StorageError:
        if optional:
            return Caller(None, _ANONYMOUS, authenticated=False)
        raise
    return Caller(token, claims, authenticated=True)


def object_target(request: Request) -> tuple[str, str]:
    """The bucket and key of the URL, validated (path-traversal keys never get further)."""
    bucket_id = must_be_valid_bucket_name(request.path_params["bucket"])
    return bucket_id, must_be_valid_key(request.path_params["name"])


def route_path(request: Request) -> str:
    """The path as Storage sees it behind the gateway (without ``/storage/v1``)."""
    path: str = request.scope.get("path", "/")
    root: str = request.scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def request_headers(request: Request) -> dict[str, str]:
    """All request headers, lower-cased names (policies read ``x-lora-job-token`` etc. from these)."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def user_identity(request: Request, caller: Caller, operation: str) -> RequestIdentity:
    """Run as the JWT's role with its claims: RLS decides."""
    return _identity(request, caller.role, caller.claims, caller.token, operation)


def service_identity(request: Request, context: StorageContext, operation: str) -> RequestIdentity:
    """Run as ``service_role`` with the service key's payload (Storage's "super user" steps)."""
    return _identity(request, "service_role", context.service_claims, context.config.service_role_key, operation)


def _identity(
    request: Request, role: str, claims: Mapping[str, Any], token: str | None, operation: str
) -> RequestIdentity:
    sub = claims.get("sub")
    extra = {
        "request.jwt.claim.role": role,
        "request.jwt.claim.sub": sub if isinstance(sub, str) else "",
        "request.jwt": token or "",
        "storage.operation": operation,
        "storage.allow_delete_query": "true",
    }
    return RequestIdentity(
        role=role,
        claims=dict(claims),
        method=request.method,
        path=route_path(request),
        headers=request_headers(request),
        extra_settings=extra,
    )


async def read_json(request: Request) -> dict[str, Any]:
    """The JSON object body; an empty body is ``{}`` (storage3 sends ``{}`` or nothing)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_JSON_BODY:
            raise errors.entity_too_large("request body")
    if not body.strip():
        return {}
    try:
        value = parse_json(body)
    except ValueError:
        raise errors.invalid_request("Body is not valid JSON but content-type is set to 'application/json'") from None
    if not isinstance(value, dict):
        raise errors.invalid_request("body must be object")
    return value


__all__ = [
    "Caller",
    "StorageContext",
    "authenticate",
    "object_target",
    "read_json",
    "request_headers",
    "route_path",
    "service_identity",
    "user_identity",
    "verify_jwt",
]
