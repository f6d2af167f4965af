"""Auth's error responses (research/supabase-stack.md §6.3).

Handlers raise :class:`AuthFailure` (GoTrue's ``HTTPError``) or :class:`OAuthFailure`; :func:`render` turns them
into the body the client expects. A request carrying ``X-Supabase-Api-Version: 2024-01-01`` or later gets
``{"code","message"}`` and the version echoed back; without it GoTrue answers in its legacy shape
``{"code": <status>, "error_code", "msg"}``. supabase_auth only reads ``code`` when the version is echoed.
"""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

import psycopg
from starlette.requests import Request
from starlette.responses import Response

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024 = "2024-01-01"
_VERSION_FORMAT = re.compile(r"^\d{4}-\d{2}-\d{2}$")
UNEXPECTED_FAILURE = "Unexpected failure, please check server logs for more information"


class AuthFailure(Exception):
    """An error answer: HTTP status, GoTrue error code and message (plus ``extra`` body fields)."""

    def __init__(self, status: int, code: str, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.extra = extra or {}


class OAuthFailure(Exception):
    """GoTrue's OAuth-shaped error, always 400: ``{"error", "error_description"}`` (no error code)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def bad_request(code: str, message: str) -> AuthFailure:
    return AuthFailure(400, code, message)


def forbidden(code: str, message: str) -> AuthFailure:
    return AuthFailure(403, code, message)


def not_found(code: str, message: str) -> AuthFailure:
    return AuthFailure(404, code, message)


def unprocessable(code: str, message: str) -> AuthFailure:
    return AuthFailure(422, code, message)


def internal(message: str) -> AuthFailure:
    """GoTrue's 500 for a failed database step (a trigger on auth.users raising, a constraint...)."""
    return AuthFailure(500, "unexpected_failure", message)


def weak_password(message: str, reasons: list[str]) -> AuthFailure:
    return AuthFailure(422, "weak_password", message, extra={"weak_password": {"reasons": reasons}})


def api_version(request: Request) -> str | None:
    """The API version GoTrue settles on: 2024-01-01 for any valid date on or after it, else the legacy one."""
    raw = request.headers.get(API_VERSION_HEADER, "")
    if not _VERSION_FORMAT.match(raw):
        return None
    try:
        requested = date.fromisoformat(raw)
    except ValueError:
        return None
    return API_VERSION_2024 if requested >= date(2024, 1, 1) else None


INPUT_SQLSTATES = frozenset({"22P05", "22021", "22001", "22003", "22007", "22008", "54000", "54001"})
"""Postgres refusing the value itself (NUL bytes, out of range, too large for an index): the caller's input."""


def database_failure(error: Exception, message: str) -> AuthFailure:
    """GoTrue's 500 ``message`` for a database error, or 400 ``validation_failed`` when the input caused it."""
    sqlstate = getattr(error, "sqlstate", None)
    client_side = sqlstate is None and isinstance(error, psycopg.DataError)  # psycopg refuses NUL before sending
    if sqlstate in INPUT_SQLSTATES or client_side:
        detail = getattr(getattr(error, "diag", None), "message_primary", None) or str(error) or "invalid value"
        return bad_request("validation_failed", f"{message}: {detail}")
    return internal(message)


def render(request: Request, error: AuthFailure | OAuthFailure) -> Response:
    """The response GoTrue sends for ``error`` to this request."""
    version = api_version(request)
    headers = {API_VERSION_HEADER: version} if version else {}
    if isinstance(error, OAuthFailure):
        return json_response({"error": error.error, "error_description": error.description}, 400, headers)
    headers["x-sb-error-code"] = error.code
    if version:
        body: dict[str, Any] = {"code": error.code, "message": error.message}
    else:
        body = {"code": error.status, "error_code": error.code, "msg": error.message}
    return json_response({**body, **error.extra}, error.status, headers)


def render_unexpected(request: Request) -> Response:
    """An unhandled exception: GoTrue's generic 500, never a stack trace."""
    return render(request, internal(UNEXPECTED_FAILURE))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Compact JSON as Go's encoder writes it."""
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return Response(text, status_code=status, media_type="application/json", headers=headers)


__all__ = [
    "API_VERSION_2024",
    "API_VERSION_HEADER",
    "AuthFailure",
    "OAuthFailure",
    "api_version",
    "bad_request",
    "forbidden",
    "internal",
    "json_response",
    "not_found",
    "render",
    "render_unexpected",
    "unprocessable",
    "weak_password",
]
