"""Error bodies exactly as each real service sends them (research/supabase-stack.md §4.8, §5.2, §6.3)."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response

JSON = "application/json; charset=utf-8"


def postgrest_error(
    status: int,
    code: str | None,
    message: str,
    *,
    details: Any = None,
    hint: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """PostgREST's ``{"code","details","hint","message"}`` with ``Proxy-Status``."""
    body = {"code": code, "details": details, "hint": hint, "message": message}
    all_headers = {"Proxy-Status": f"PostgREST; error={code}"} if code else {}
    all_headers.update(headers or {})
    return Response(json.dumps(body), status_code=status, media_type=JSON, headers=all_headers)


def storage_error(
    status_code: int, code: str, message: str, *, error: str | None = None, http_status: int | None = None
) -> Response:
    """Storage sends HTTP 400 for every client error, the real status as a string in ``statusCode``."""
    body = {"statusCode": str(status_code), "code": code, "error": error or code, "message": message}
    status = http_status if http_status is not None else (status_code if status_code >= 500 else 400)
    return Response(json.dumps(body), status_code=status, media_type=JSON)


def auth_error(status: int, code: str, message: str, **extra: Any) -> Response:
    """Auth's 2024-01-01 API format, echoing the version header so clients read ``code``."""
    body = {"code": code, "message": message, **extra}
    headers = {"X-Supabase-Api-Version": "2024-01-01"}
    return Response(json.dumps(body), status_code=status, media_type=JSON, headers=headers)


def gateway_error(status: int, message: str, hint: str | None = None) -> Response:
    """Kong's own errors (no ``code``)."""
    body: dict[str, Any] = {"message": message}
    if hint:
        body["hint"] = hint
    return Response(json.dumps(body), status_code=status, media_type=JSON)


__all__ = ["auth_error", "gateway_error", "postgrest_error", "storage_error"]
