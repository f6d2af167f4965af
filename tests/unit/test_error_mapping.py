"""One mapping function turns PostgREST, Storage, Auth and RunPod failures into the error tree."""

from __future__ import annotations

import pickle

import httpx
import pytest

from lora_pipeline import (
    APIConnectionError,
    AuthenticationError,
    BadRequest,
    CapacityError,
    Conflict,
    InsufficientFunds,
    InvalidTransition,
    NotFound,
    NotNullViolation,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    TokenAlreadyUsed,
    TokenExpired,
    TokenNotFound,
    TokenRevoked,
    UnsupportedMediaType,
)
from lora_pipeline._error_mapping import error_from_exception, map_error, retry_after_seconds


def pg(code: str, message: str = "m", **kw: object) -> dict[str, object]:
    return {"code": code, "message": message, "hint": kw.get("hint"), "details": kw.get("details")}


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("23505", Conflict),
        ("23503", Conflict),
        ("42501", PermissionDenied),
        ("57014", Timeout),
        ("PGRST301", AuthenticationError),
        ("PGRST303", AuthenticationError),
        ("PGRST205", NotFound),
        ("PGRST202", NotFound),
        ("PGRST204", BadRequest),
        ("22P02", BadRequest),
        ("P0001", BadRequest),
        ("08006", ServiceUnavailable),
        ("53300", ServiceUnavailable),
        ("LP001", InvalidTransition),
        ("LPT01", TokenNotFound),
        ("LPT02", TokenExpired),
        ("LPT03", TokenAlreadyUsed),
        ("LPT04", TokenRevoked),
    ],
)
def test_postgrest_codes(code: str, cls: type) -> None:
    assert type(map_error(service="postgrest", body=pg(code))) is cls


def test_42501_status_depends_on_role_like_postgrest() -> None:
    anon = map_error(service="postgrest", body=pg("42501"), role="anon")
    user = map_error(service="postgrest", body=pg("42501"), role="user")
    assert (anon.status, user.status) == (401, 403)


def test_permission_denied_for_anon_insert_explains_return_representation() -> None:
    error = map_error(
        service="postgrest",
        role="anon",
        resource="metrics_points",
        body=pg("42501", 'new row violates row-level security policy for table "metrics_points"'),
    )
    assert isinstance(error, PermissionDenied)
    assert "anon" in str(error) and "returning='minimal'" in str(error) and "metrics_points" in str(error)


def test_permission_denied_for_user_explains_owner_policies() -> None:
    error = map_error(service="postgrest", role="user", body=pg("42501", "new row violates row-level security"))
    assert "auth.uid()" in str(error)


def test_not_null_violation_names_the_column() -> None:
    message = 'null value in column "epoch" of relation "metrics_points" violates not-null constraint'
    error = map_error(service="postgrest", body=pg("23502", message))
    assert isinstance(error, NotNullViolation)
    assert error.column == "epoch"
    assert "epoch" in str(error) and error.status == 400


@pytest.mark.parametrize("details", ["The result contains 0 rows", "Results contain 0 rows"])
def test_single_with_no_row_is_not_found(details: str) -> None:
    error = map_error(
        service="postgrest", body=pg("PGRST116", "Cannot coerce the result to a single JSON object", details=details)
    )
    assert isinstance(error, (NotFound, Conflict))


def test_pgrst116_message_with_zero_rows_is_not_found() -> None:
    assert isinstance(map_error(service="postgrest", body=pg("PGRST116", "JSON object requested, 0 rows")), NotFound)


@pytest.mark.parametrize(
    ("status_code", "code", "cls"),
    [
        ("404", "NoSuchKey", NotFound),
        ("404", "NoSuchBucket", NotFound),
        ("403", "AccessDenied", PermissionDenied),
        ("409", "Duplicate", Conflict),
        ("413", "Payload too large", PayloadTooLarge),
        ("415", "invalid_mime_type", UnsupportedMediaType),
        ("400", "InvalidKey", BadRequest),
        ("400", "InvalidJWT", AuthenticationError),
    ],
)
def test_storage_bodies_use_the_status_string_not_http_400(status_code: str, code: str, cls: type) -> None:
    error = map_error(service="storage", status=400, body={"statusCode": status_code, "error": code, "message": "x"})
    assert isinstance(error, cls)
    assert error.status == int(status_code)


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("invalid_credentials", 400, AuthenticationError),
        ("not_admin", 403, PermissionDenied),
        ("email_exists", 422, Conflict),
        ("over_request_rate_limit", 429, RateLimited),
        ("user_not_found", 404, NotFound),
    ],
)
def test_auth_bodies(code: str, status: int, cls: type) -> None:
    assert isinstance(map_error(service="auth", status=status, body={"code": code, "message": "x"}), cls)


def test_auth_legacy_body_reads_error_code() -> None:
    error = map_error(service="auth", status=400, body={"code": 400, "error_code": "invalid_credentials", "msg": "bad"})
    assert isinstance(error, AuthenticationError) and error.raw_message == "bad"


@pytest.mark.parametrize(
    ("body", "cls"),
    [
        (
            {
                "errors": [
                    {
                        "message": "There are no longer any instances available with the requested specifications. "
                        "Please refresh and try again.",
                        "extensions": {"code": "SUPPLY_CONSTRAINT"},
                    }
                ]
            },
            CapacityError,
        ),
        (
            {"errors": [{"message": "INSUFFICIENT_BALANCE: Renting this pod would put you over your limit"}]},
            InsufficientFunds,
        ),
        ({"errors": [{"message": "pod not found to terminate"}]}, NotFound),
        (
            {"errors": [{"message": "Something went wrong", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]},
            ServiceUnavailable,
        ),
    ],
)
def test_runpod_graphql_errors(body: dict[str, object], cls: type) -> None:
    assert isinstance(map_error(service="runpod", status=200, body=body), cls)


def test_html_5xx_and_429_with_retry_after() -> None:
    assert isinstance(map_error(service="runpod", status=503, body="<html>error code: 1010</html>"), ServiceUnavailable)
    limited = map_error(service="runpod", status=429, body="slow down", headers={"Retry-After": "7"})
    assert isinstance(limited, RateLimited) and limited.retry_after == 7


def test_retry_after_is_capped_and_parses_dates() -> None:
    assert retry_after_seconds({"retry-after": "9999"}) == 120
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert retry_after_seconds({}) is None


def test_gateway_key_errors_without_code() -> None:
    error = map_error(service="postgrest", body={"message": "No API key found in request", "hint": "h"})
    assert isinstance(error, AuthenticationError) and error.status == 401


def test_transport_errors() -> None:
    request = httpx.Request("GET", "http://127.0.0.1:1/")
    assert isinstance(error_from_exception(httpx.ConnectError("refused", request=request)), APIConnectionError)
    assert isinstance(error_from_exception(httpx.ReadTimeout("slow", request=request)), Timeout)


def test_supabase_client_exceptions_are_adapted() -> None:
    from postgrest.exceptions import APIError as PostgrestAPIError
    from storage3.exceptions import StorageApiError
    from supabase_auth.errors import AuthApiError

    assert isinstance(error_from_exception(PostgrestAPIError(pg("23505"))), Conflict)
    assert isinstance(error_from_exception(StorageApiError("Object not found", "not_found", "404")), NotFound)
    assert isinstance(
        error_from_exception(AuthApiError("Invalid login", 400, "invalid_credentials")), AuthenticationError
    )


def test_errors_carry_context_and_pickle() -> None:
    error = map_error(
        service="postgrest",
        body=pg("23505", "duplicate key", hint="h"),
        role="user",
        resource="datasets",
        headers={"x-request-id": "req-1"},
    )
    assert (error.status, error.code, error.request_id, error.role, error.resource) == (
        409,
        "23505",
        "req-1",
        "user",
        "datasets",
    )
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is Conflict and str(clone) == str(error)
