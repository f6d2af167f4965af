"""ONE function maps every service failure onto the error tree: :func:`map_error`.

Inputs arrive in several shapes (DESIGN §10, research/supabase-stack.md §4.8, §5.2, §6.3, runpod.md §1.9):

- PostgREST: ``{"code", "message", "hint", "details"}``; supabase-py drops the HTTP status, so it is
  re-derived from the code the way PostgREST derives it (42501 is 401 for anon, 403 otherwise).
- Storage: HTTP 400 for every client error with the real status as a *string* in ``statusCode``.
- Auth: ``{"code", "message"}`` (API version 2024-01-01) or the legacy ``{"error_code", "msg"}``.
- RunPod GraphQL: ``{"errors": [{"message", "extensions": {"code"}}]}`` whatever the HTTP status.
- RunPod REST v2: RFC 9457 ``application/problem+json``, ``{"title", "status", "detail", "errors": [str]}``.
- Gateway key errors: ``{"message", "hint"}`` without a code.

:func:`error_from_exception` adapts the exceptions of supabase-py's sub-clients and httpx to the same call.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

from . import _exceptions as exc

_NOT_NULL_COLUMN = re.compile(r'null value in column "(?P<column>[^"]+)"(?: of relation "(?P<table>[^"]+)")?')
_TRANSITION = re.compile(r"cannot move job")
_TOKEN_ERRORS: dict[str, type[exc.APIError]] = {
    "LPT01": exc.TokenNotFound,
    "LPT02": exc.TokenExpired,
    "LPT03": exc.TokenAlreadyUsed,
    "LPT04": exc.TokenRevoked,
}
_CODE_CLASSES: dict[str, type[exc.APIError]] = {
    "23502": exc.NotNullViolation,
    "42501": exc.PermissionDenied,
    "23505": exc.Conflict,
    "23503": exc.Conflict,
    "LP001": exc.InvalidTransition,
    "57014": exc.Timeout,
    "PGRST301": exc.AuthenticationError,
    "PGRST302": exc.AuthenticationError,
    "PGRST303": exc.AuthenticationError,
    "PGRST202": exc.NotFound,
    "PGRST205": exc.NotFound,
    "42P01": exc.NotFound,
    "42883": exc.NotFound,
    "PGRST204": exc.BadRequest,
    "PGRST100": exc.BadRequest,
    "PGRST102": exc.BadRequest,
    **_TOKEN_ERRORS,
    # Storage error codes (the body's "code" or legacy "error").
    "NoSuchKey": exc.NotFound,
    "NoSuchBucket": exc.NotFound,
    "not_found": exc.NotFound,
    "Bucket not found": exc.NotFound,
    "InvalidJWT": exc.AuthenticationError,
    "KeyAlreadyExists": exc.Conflict,
    "BucketAlreadyExists": exc.Conflict,
    "ResourceAlreadyExists": exc.Conflict,
    "Duplicate": exc.Conflict,
    "ResourceNotEmpty": exc.Conflict,
    "EntityTooLarge": exc.PayloadTooLarge,
    "Payload too large": exc.PayloadTooLarge,
    "InvalidMimeType": exc.UnsupportedMediaType,
    "invalid_mime_type": exc.UnsupportedMediaType,
    "InvalidKey": exc.BadRequest,
    "InvalidBucketName": exc.BadRequest,
    "InvalidRequest": exc.BadRequest,
    # Auth error codes.
    "invalid_credentials": exc.AuthenticationError,
    "bad_jwt": exc.AuthenticationError,
    "no_authorization": exc.AuthenticationError,
    "session_not_found": exc.AuthenticationError,
    "refresh_token_not_found": exc.AuthenticationError,
    "refresh_token_already_used": exc.AuthenticationError,
    "email_not_confirmed": exc.AuthenticationError,
    "not_admin": exc.PermissionDenied,
    "user_not_found": exc.NotFound,
    "email_exists": exc.Conflict,
    "user_already_exists": exc.Conflict,
    "over_request_rate_limit": exc.RateLimited,
    "over_email_send_rate_limit": exc.RateLimited,
    "validation_failed": exc.BadRequest,
    "weak_password": exc.BadRequest,
    # RunPod extension codes.
    "SUPPLY_CONSTRAINT": exc.CapacityError,
    "INSUFFICIENT_BALANCE": exc.InsufficientFunds,
    "POD_NOT_FOUND": exc.NotFound,
    "FORBIDDEN": exc.PermissionDenied,
    "GRAPHQL_VALIDATION_FAILED": exc.BadRequest,
    "GRAPHQL_PARSE_FAILED": exc.BadRequest,
    "INTERNAL_SERVER_ERROR": exc.ServiceUnavailable,
}
_STATUS_CLASSES: dict[int, type[exc.APIError]] = {
    400: exc.BadRequest,
    401: exc.AuthenticationError,
    403: exc.PermissionDenied,
    404: exc.NotFound,
    402: exc.InsufficientFunds,
    408: exc.Timeout,
    409: exc.Conflict,
    410: exc.APIRetired,
    413: exc.PayloadTooLarge,
    415: exc.UnsupportedMediaType,
    422: exc.BadRequest,
    429: exc.RateLimited,
}
_RUNPOD_MESSAGES: tuple[tuple[str, type[exc.APIError]], ...] = (
    ("api has been retired", exc.APIRetired),
    ("no longer any instances available", exc.CapacityError),
    ("no instances available", exc.CapacityError),
    ("not enough free gpus", exc.CapacityError),
    ("insufficient_balance", exc.InsufficientFunds),
    ("spending limit", exc.InsufficientFunds),
    ("not enough credit", exc.InsufficientFunds),
    ("pod not found", exc.NotFound),
    # runpod-python keeps only errors[0].message (no status, no extensions) and turns any non-JSON reply
    # into JSONDecodeError, so these are classified by text; rate limits first, since a 429 page is non-JSON.
    ("too many requests", exc.RateLimited),
    ("rate limit", exc.RateLimited),
    ("error code: 1015", exc.RateLimited),
    ("unreadable reply from runpod", exc.ServiceUnavailable),
    ("something went wrong", exc.ServiceUnavailable),
    ("forbidden", exc.PermissionDenied),
    ("syntax error", exc.BadRequest),
    ("cannot query field", exc.BadRequest),
    ("is not defined by type", exc.BadRequest),
    ("unknown field", exc.BadRequest),
)


def map_error(
    *,
    service: str,
    status: int | None = None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    role: str | None = None,
    resource: str | None = None,
) -> exc.APIError:
    """Build the typed error for one failed request.

    Args:
        service: ``postgrest``, ``storage``, ``auth``, ``runpod`` or ``http``.
        status: the HTTP status, when known (supabase-py's PostgREST errors lose it).
        body: the decoded JSON body (a dict) or the raw text.
        headers: response headers, for ``Retry-After`` and request ids.
        role: the key role the request ran as, for the 42501 status and the message.
        resource: the table, bucket, function or id the request was about.
    """
    fields = _normalise(service, status, body)
    code, message = fields["code"], fields["message"] or "request failed"
    status = fields["status"]
    if service == "postgrest" and status is None:
        status = postgrest_status(code, role, message)
    cls = _pick_class(service, code, status, message)
    kwargs: dict[str, Any] = {
        "status": status,
        "code": code,
        "hint": fields["hint"],
        "details": fields["details"],
        "request_id": _request_id(headers),
        "role": role,
        "resource": resource,
        "service": service,
    }
    kwargs["suggestion"] = suggest(cls, code=code, role=role, message=message, resource=resource)
    if cls is exc.NotNullViolation:
        match = _NOT_NULL_COLUMN.search(message)
        kwargs["column"] = match.group("column") if match else None
    if cls is exc.RateLimited:
        kwargs["retry_after"] = retry_after_seconds(headers)
    return cls(message, **kwargs)


def _normalise(service: str, status: int | None, body: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"status": status, "code": None, "message": None, "hint": None, "details": None}
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        fields["message"] = body.strip()[:500] or None
        return fields
    if not isinstance(body, Mapping):
        return fields
    if service == "runpod" and _is_problem(body):
        return _problem_fields(status, body)
    if service == "runpod" and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0] if isinstance(body["errors"][0], Mapping) else {}
        fields["message"] = str(first.get("message") or "")
        extensions = first.get("extensions")
        fields["code"] = extensions.get("code") if isinstance(extensions, Mapping) else None
        return fields
    if service == "storage" and body.get("statusCode") is not None:
        try:
            fields["status"] = int(str(body["statusCode"]))
        except ValueError:
            pass
    code = body.get("code") if service != "storage" else (body.get("code") or body.get("error"))
    if code is None or isinstance(code, int):  # legacy Auth bodies carry the HTTP status in "code"
        code = body.get("error_code", code)
    fields["code"] = None if code is None else str(code)
    fields["message"] = _first(body, "message", "msg", "error_description", "error")
    fields["hint"] = body.get("hint")
    fields["details"] = body.get("details")
    return fields


def _is_problem(body: Mapping[str, Any]) -> bool:
    """An RFC 9457 problem document (RunPod REST v2): ``title``/``detail`` and, when present, string ``errors``."""
    errors = body.get("errors")
    return "detail" in body and "title" in body and (errors is None or all(isinstance(e, str) for e in errors))


def _problem_fields(status: int | None, body: Mapping[str, Any]) -> dict[str, Any]:
    detail = str(body.get("detail") or body.get("title") or "")
    errors = [str(e) for e in body.get("errors") or []]
    declared = body.get("status")
    return {
        "status": status if status is not None else (declared if isinstance(declared, int) else None),
        "code": None,
        "message": f"{detail}: {'; '.join(errors)}" if errors else detail,
        "hint": None,
        "details": errors or None,
    }


def _first(body: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _pick_class(service: str, code: str | None, status: int | None, message: str) -> type[exc.APIError]:
    if status == 410:  # before the text: a retired API must never read as a transient "unreadable reply"
        return exc.APIRetired
    if service == "runpod":
        lowered = message.lower()
        for needle, cls in _RUNPOD_MESSAGES:
            if needle in lowered:
                return cls
    if code == "PGRST116":
        return exc.NotFound if "0 rows" in message or "contains 0" in message else exc.Conflict
    if code in _CODE_CLASSES:
        return _CODE_CLASSES[code]
    if code and (code.startswith("08") or (code.startswith("53") and code != "53400")):
        return exc.ServiceUnavailable
    if code in {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}:
        return exc.ServiceUnavailable
    if status is not None:
        if status in _STATUS_CLASSES:
            return _STATUS_CLASSES[status]
        if status >= 500:
            return exc.ServiceUnavailable
    return exc.APIError


def postgrest_status(code: str | None, role: str | None, message: str = "") -> int | None:
    """The HTTP status PostgREST sends for a code (its Error.hs table), for errors that lost theirs."""
    if code is None:
        return 401 if "api key" in message.lower() else None
    if code == "42501":
        return 401 if role in (None, "anon", "pod") else 403
    table = {"23505": 409, "23503": 409, "25006": 405, "42883": 404, "42P01": 404, "57014": 500}
    if code in table:
        return table[code]
    if code.startswith("PGRST"):
        return {"116": 406, "202": 404, "205": 404, "204": 400, "301": 401, "302": 401, "303": 401}.get(code[5:], 400)
    if code.startswith(("08", "53")):
        return 503
    if len(code) == 3 and code.isdigit():  # not PostgREST at all: a plain web server's own status
        return int(code)
    return 400


def suggest(
    cls: type[exc.APIError], *, code: str | None, role: str | None, message: str, resource: str | None
) -> str | None:
    """One line on what to check for this error (DESIGN §3 explains the reasons)."""
    lowered = message.lower()
    if cls is exc.PermissionDenied and code == "42501":
        if "job token" in lowered:
            return "the job token is wrong, expired or its job has ended; issue a new one with lp.jobs.issue_token"
        if role in ("anon", "pod") and "row-level security" in lowered:
            return (
                "this ran as the anon role: an insert with return=representation also needs a SELECT policy; "
                "send returning='minimal', sign in as the owning user, or use the service role on the server"
            )
        if role in ("anon", "pod"):
            return (
                "the anon role has no table privileges by design: pods write through job-token functions, "
                "apps sign in as a user or use the service role on the server (not the anon key)"
            )
        if role == "user":
            return (
                "row-level security refused it for the signed-in user: rows must have user_id = auth.uid(), "
                "and UPDATE/DELETE also need a SELECT policy"
            )
        return "a grant or SECURITY DEFINER check refused it; the service role bypasses RLS but not grants"
    if cls is exc.NotNullViolation:
        return "send a value for the column named above, or omit it so its DEFAULT applies (metrics: epoch=0)"
    if cls is exc.AuthenticationError:
        return "check the key or access token for this role: expired, from another project, or not a JWT"
    if cls is exc.NotFound and code in ("PGRST205", "PGRST202", "42P01", "42883"):
        return "the schema is missing this object: run `lora-pipeline db migrate --db-url ...`"
    if cls is exc.PayloadTooLarge:
        return "the file is over the bucket's file_size_limit (datasets 500 MB, models 5 GB) or the service's"
    if cls is exc.UnsupportedMediaType:
        return "upload with a content type the bucket allows (datasets: JSON/JSONL/text)"
    if cls is exc.CapacityError:
        return "no GPU of this type is free; add more offers or retry later"
    if cls is exc.APIRetired:
        return (
            "RunPod switched this API off (410 Gone): use RunPodBackend(transport='rest'), the default, and "
            "upgrade lora-pipeline if the REST v2 transport itself was retired; this is never retried"
        )
    if cls is exc.InsufficientFunds:
        return "add RunPod credit or raise the spend limit (deploying needs at least one hour of credit)"
    if code == "PGRST125" or (code is not None and len(code) == 3 and code.isdigit()) or "<html" in lowered:
        return (
            "this URL does not serve a Supabase API: set SUPABASE_URL (or url=) to the project URL, "
            "https://<project-ref>.supabase.co without /rest/v1, or the URL `lora-pipeline dev env` prints"
        )
    return None


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Parse ``Retry-After`` (seconds or an HTTP date) into seconds, capped at two minutes."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        seconds = parsed.timestamp() - time.time()
    return max(0.0, min(seconds, 120.0))


def _request_id(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() in ("x-request-id", "sb-request-id", "x-sb-request-id", "cf-ray"):
            return value
    return None


def error_from_exception(
    error: BaseException, *, role: str | None = None, resource: str | None = None
) -> exc.LoraPipelineError:
    """Adapt an exception raised by supabase-py's sub-clients or httpx into the error tree."""
    if isinstance(error, exc.LoraPipelineError):
        return error
    import httpx

    if isinstance(error, httpx.TimeoutException):
        return exc.Timeout(f"no response in time: {type(error).__name__}", role=role, resource=resource)
    if isinstance(error, httpx.HTTPStatusError):
        return error_from_response(error.response, service="http", role=role, resource=resource)
    if isinstance(error, httpx.TransportError):
        return exc.APIConnectionError(
            f"could not reach the service: {type(error).__name__}: {error}", role=role, resource=resource
        )
    mapped = _from_supabase_exception(error, role=role, resource=resource)
    if mapped is not None:
        return mapped
    return exc.APIError(f"{type(error).__name__}: {error}", role=role, resource=resource)


def _from_supabase_exception(error: BaseException, *, role: str | None, resource: str | None) -> exc.APIError | None:
    name = type(error).__name__
    module = type(error).__module__
    if module.startswith("postgrest") and name == "APIError":
        body = error.json() if hasattr(error, "json") else {}
        return map_error(service="postgrest", body=body, role=role, resource=resource)
    if module.startswith("storage3") and hasattr(error, "status"):
        body = {"statusCode": getattr(error, "status", None), "error": getattr(error, "code", None)}
        body["message"] = getattr(error, "message", str(error))
        return map_error(service="storage", status=400, body=body, role=role, resource=resource)
    if module.startswith(("supabase_auth", "gotrue")):
        status = getattr(error, "status", None)
        body = {"code": getattr(error, "code", None), "message": getattr(error, "message", str(error))}
        if name == "AuthRetryableError":
            return exc.ServiceUnavailable(body["message"], status=status, role=role, resource=resource)
        return map_error(
            service="auth", status=status if isinstance(status, int) else None, body=body, role=role, resource=resource
        )
    return None


def error_from_response(
    response: Any, *, service: str, role: str | None = None, resource: str | None = None
) -> exc.APIError:
    """Map an ``httpx.Response`` with a non-2xx status (or a GraphQL ``errors`` body)."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    return map_error(
        service=service,
        status=response.status_code,
        body=body,
        headers=response.headers,
        role=role,
        resource=resource,
    )


__all__ = ["error_from_exception", "error_from_response", "map_error", "postgrest_status", "retry_after_seconds"]
