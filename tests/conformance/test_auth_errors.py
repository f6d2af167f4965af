"""Bad input to /auth/v1 gets GoTrue's answers, writes nothing and leaks no stack trace
(research/supabase-stack.md §6.1, §6.3)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import jwt
import pytest

VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


def _auth(
    target: Any, method: str, path: str, *, token: str | None = None, versioned: bool = True, **kwargs: Any
) -> httpx.Response:
    headers = {"apikey": target.anon_key, "Authorization": f"Bearer {token or target.anon_key}"}
    headers |= VERSION if versioned else {}
    headers |= kwargs.pop("headers", {})
    return httpx.request(method, f"{target.url}/auth/v1{path}", headers=headers, timeout=30, **kwargs)


def _assert_error(response: httpx.Response, status: int, code: str, message: str | None = None) -> None:
    """The 2024-01-01 error: exactly ``{"code","message"}``, the version echoed back."""
    assert response.status_code == status, response.text
    assert response.headers["X-Supabase-Api-Version"] == "2024-01-01"
    body = response.json()
    assert set(body) == {"code", "message"}
    assert body["code"] == code
    if message is not None:
        assert body["message"] == message
    assert "Traceback" not in response.text


def _user_count(target: Any) -> int:
    return int(target.sql("select count(*) from auth.users")[0][0])


def _mint(target: Any, **claims: Any) -> str:
    now = int(time.time())
    values = {"iss": "test", "aud": "authenticated", "iat": now, "exp": now + 600, "role": "authenticated", **claims}
    return jwt.encode(values, target.stack.jwt_secret, algorithm="HS256")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/signup", b'{"email": "a@example.test", "password": '),
        ("/signup", b'["not", "an", "object"]'),
        ("/signup", b'{"email": 12, "password": "conformance-pass-123"}'),
        ("/token?grant_type=password", b"{'email': 'single-quoted'}"),
        ("/token?grant_type=password", b""),
        ("/token?grant_type=refresh_token", b'{"refresh_token": NaN}'),
    ],
)
def test_malformed_json_is_bad_json_and_writes_nothing(target: Any, path: str, body: bytes) -> None:
    before = _user_count(target)
    response = _auth(target, "POST", path, content=body, headers={"Content-Type": "application/json"})
    _assert_error(response, 400, "bad_json")
    assert response.json()["message"].startswith("Could not parse request body as JSON: ")
    assert _user_count(target) == before


def test_admin_create_with_malformed_json_writes_nothing(target: Any) -> None:
    before = _user_count(target)
    response = _auth(
        target,
        "POST",
        "/admin/users",
        token=target.service_role_key,
        content=b'{"email": "x@example.test", "email_confirm": "yes"}',
    )
    _assert_error(response, 400, "bad_json")
    assert _user_count(target) == before


def test_without_the_version_header_errors_use_the_legacy_shape(target: Any) -> None:
    response = _auth(
        target,
        "POST",
        "/token?grant_type=password",
        versioned=False,
        json={"email": "nobody@example.test", "password": "whatever-123"},
    )
    assert response.status_code == 400
    assert "X-Supabase-Api-Version" not in response.headers
    assert response.headers["x-sb-error-code"] == "invalid_credentials"
    assert response.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}


def test_user_endpoint_needs_a_bearer_token(target: Any) -> None:
    response = _auth(target, "GET", "/user", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    _assert_error(response, 401, "no_authorization", "This endpoint requires a valid Bearer token")


def test_a_key_jwt_has_no_user(target: Any) -> None:
    _assert_error(_auth(target, "GET", "/user"), 403, "bad_jwt", "invalid claim: missing sub claim")


@pytest.mark.parametrize("token", ["not-a-jwt", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."])
def test_garbage_tokens_are_bad_jwt(target: Any, token: str) -> None:
    response = _auth(target, "GET", "/user", token=token)
    _assert_error(response, 403, "bad_jwt")
    assert response.json()["message"].startswith("invalid JWT: unable to parse or verify signature, ")


def test_tampered_and_expired_tokens_are_bad_jwt(target: Any) -> None:
    session = target.create_user()
    header, payload, signature = session["access_token"].split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    _assert_error(_auth(target, "GET", "/user", token=tampered), 403, "bad_jwt")
    forged = jwt.encode(
        jwt.decode(session["access_token"], options={"verify_signature": False}),
        "some-other-secret-that-is-long-enough!",
        algorithm="HS256",
    )
    _assert_error(_auth(target, "GET", "/user", token=forged), 403, "bad_jwt")
    assert _auth(target, "GET", "/user", token=session["access_token"]).status_code == 200


def test_expired_token_is_bad_jwt(local_only: Any) -> None:
    session = local_only.create_user()
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    expired = _mint(local_only, **{**claims, "iat": claims["iat"] - 7200, "exp": claims["iat"] - 3600})
    response = _auth(local_only, "GET", "/user", token=expired)
    _assert_error(response, 403, "bad_jwt")
    assert "token is expired" in response.json()["message"]


def test_token_of_a_deleted_user_is_user_not_found(local_only: Any) -> None:
    token = _mint(local_only, sub=str(uuid.uuid4()))
    _assert_error(_auth(local_only, "GET", "/user", token=token), 403, "user_not_found")


def test_unknown_role_is_not_admin(local_only: Any) -> None:
    for role in ("superuser", "authenticated", "anon"):
        response = _auth(local_only, "GET", "/admin/users", token=_mint(local_only, role=role))
        _assert_error(response, 403, "not_admin", "User not allowed")
    assert _auth(local_only, "GET", "/admin/users", token=_mint(local_only, role="supabase_admin")).status_code == 200


def test_unsupported_grant_type(target: Any) -> None:
    response = _auth(target, "POST", "/token?grant_type=magic", json={})
    _assert_error(response, 400, "invalid_credentials", "unsupported_grant_type")


def test_refresh_without_a_token_is_an_oauth_error(target: Any) -> None:
    response = _auth(target, "POST", "/token?grant_type=refresh_token", json={})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "error_description": "refresh_token required"}


def test_bad_logout_scope_is_validation_failed_and_keeps_the_session(target: Any) -> None:
    session = target.create_user()
    response = _auth(target, "POST", "/logout?scope=everything", token=session["access_token"])
    _assert_error(response, 400, "validation_failed", 'Unsupported logout scope "everything"')
    assert _auth(target, "GET", "/user", token=session["access_token"]).status_code == 200


def test_logout_answers_204_without_a_body(target: Any) -> None:
    session = target.create_user()
    response = _auth(target, "POST", "/logout", token=session["access_token"])
    assert (response.status_code, response.content) == (204, b"")


def test_oversized_body_is_refused(target: Any) -> None:
    before = _user_count(target)
    response = _auth(target, "POST", "/signup", json={"email": "big@example.test", "password": "x" * (1 << 20)})
    _assert_error(response, 413, "request_entity_too_large")
    assert _user_count(target) == before


def test_settings_health_jwks_and_unknown_paths(target: Any) -> None:
    settings = _auth(target, "GET", "/settings").json()
    assert settings["external"]["email"] is True and settings["disable_signup"] is False
    assert _auth(target, "GET", "/health").json()["name"] == "GoTrue"
    jwks = httpx.get(f"{target.url}/auth/v1/.well-known/jwks.json")
    assert jwks.status_code == 200
    assert isinstance(jwks.json()["keys"], list)
    if target.is_local:
        assert jwks.json() == {"keys": []}
    assert _auth(target, "GET", "/no-such-endpoint").status_code == 404
