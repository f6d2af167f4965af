"""Kong's key rules in front of /rest/v1, /auth/v1 and /storage/v1 (research/supabase-stack.md §2, §7;
checklist §9 "Gateway / transport")."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from supabase_auth.errors import AuthApiError

NO_KEY = {"message": "No API key found in request", "hint": "No `apikey` request header or url param was found."}
BAD_KEY = {"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."}
WHOAMI = "conformance_gateway_whoami"
PASSWORD = "conformance-pass-123"
WHOAMI_SQL = f"""
    create or replace function public.{WHOAMI}() returns text language sql stable as $$
      select current_user::text
    $$;
    grant execute on function public.{WHOAMI}() to anon, authenticated, service_role;
    notify pgrst, 'reload schema';"""
KEYED_PATHS = [
    "/rest/v1/",
    f"/rest/v1/rpc/{WHOAMI}",
    "/auth/v1/user",
    "/auth/v1/admin/users",
    "/auth/v1/health",
    "/auth/v1/no-such-endpoint",
]


@pytest.fixture(scope="module")
def whoami(target: Any) -> Iterator[str]:
    target.sql(WHOAMI_SQL)
    _wait_for_whoami(target.url, target.service_role_key)
    yield WHOAMI
    target.sql(f"drop function if exists public.{WHOAMI}()")


def _wait_for_whoami(url: str, service_key: str) -> None:
    """The schema cache reloads asynchronously after DDL, as PostgREST's does."""
    deadline = time.monotonic() + 5
    headers = {"apikey": service_key}
    while httpx.post(f"{url}/rest/v1/rpc/{WHOAMI}", json={}, headers=headers).status_code != 200:
        assert time.monotonic() < deadline, f"{WHOAMI} never became callable"
        time.sleep(0.05)


def _role_with(url: str, headers: dict[str, str]) -> str:
    response = httpx.post(f"{url}/rest/v1/rpc/{WHOAMI}", json={}, headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json())


@pytest.mark.parametrize("path", KEYED_PATHS)
def test_rest_and_auth_without_apikey_are_401_no_api_key(target: Any, path: str) -> None:
    response = httpx.get(f"{target.url}{path}", headers={"Authorization": f"Bearer {target.service_role_key}"})
    assert (response.status_code, response.json()) == (401, NO_KEY)


@pytest.mark.parametrize("path", KEYED_PATHS)
def test_unknown_apikey_is_401_invalid_api_key(target: Any, path: str) -> None:
    response = httpx.get(f"{target.url}{path}", headers={"apikey": "not-a-project-key"})
    assert (response.status_code, response.json()) == (401, BAD_KEY)


def test_apikey_may_come_as_a_query_parameter(target: Any) -> None:
    response = httpx.get(f"{target.url}/auth/v1/health", params={"apikey": target.anon_key})
    assert response.status_code == 200


def test_open_auth_routes_and_storage_need_no_apikey(target: Any) -> None:
    assert httpx.get(f"{target.url}/auth/v1/.well-known/jwks.json").status_code == 200
    for path in ("/auth/v1/verify", "/auth/v1/callback", "/auth/v1/authorize", "/storage/v1/bucket"):
        response = httpx.get(f"{target.url}{path}")
        assert response.status_code != 401 or response.json() != NO_KEY, path


def test_apikey_alone_is_used_as_the_bearer_token(target: Any, whoami: str) -> None:
    assert _role_with(target.url, {"apikey": target.anon_key}) == "anon"
    assert _role_with(target.url, {"apikey": target.service_role_key}) == "service_role"
    user = httpx.get(
        f"{target.url}/auth/v1/user", headers={"apikey": target.anon_key, "X-Supabase-Api-Version": "2024-01-01"}
    )
    assert (user.status_code, user.json()["code"]) == (403, "bad_jwt")
    admin = httpx.get(f"{target.url}/auth/v1/admin/users", headers={"apikey": target.service_role_key})
    assert admin.status_code == 200


@pytest.fixture(scope="module")
def opaque_stack(target: Any) -> Iterator[Any]:
    """A second embedded stack that also accepts ``sb_publishable_``/``sb_secret_`` keys."""
    from lora_pipeline.local_supabase import LocalSupabase

    if not target.is_local:
        pytest.skip("starts an embedded stack of its own")

    stack = LocalSupabase.start(opaque_keys=True)
    with stack.connect() as conn:
        conn.execute(WHOAMI_SQL)
    _wait_for_whoami(stack.url, stack.service_role_key)
    yield stack
    stack.stop()


def _opaque_keys(stack: Any) -> tuple[str, str]:
    return str(stack.config.publishable_key), str(stack.config.secret_key)


def test_opaque_keys_map_to_anon_and_service_role_on_rest(opaque_stack: Any) -> None:
    publishable, secret = _opaque_keys(opaque_stack)
    assert publishable.startswith("sb_publishable_") and secret.startswith("sb_secret_")
    for key, role in ((publishable, "anon"), (secret, "service_role")):
        assert _role_with(opaque_stack.url, {"apikey": key}) == role
        assert _role_with(opaque_stack.url, {"apikey": key, "Authorization": f"Bearer {key}"}) == role
    response = httpx.get(f"{opaque_stack.url}/rest/v1/", headers={"apikey": "sb_secret_not-this-one"})
    assert (response.status_code, response.json()) == (401, BAD_KEY)


def test_opaque_keys_work_with_the_supabase_client_on_auth(sb: Any, opaque_stack: Any) -> None:
    publishable, secret = _opaque_keys(opaque_stack)
    original = sb.target
    sb.target = type(original)(opaque_stack.url, publishable, secret, opaque_stack.db_url, is_local=True)
    try:
        email = f"opaque-{uuid.uuid4().hex[:12]}@example.test"
        created = sb.run(
            lambda c: c.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}),
            sb.service,
        ).user
        with pytest.raises(AuthApiError) as caught:
            sb.run(lambda c: c.auth.admin.list_users(), sb.anon)
        assert (caught.value.code, caught.value.status) == ("not_admin", 403)
        client = sb.anon
        session = sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}), client)
        assert session.user.id == created.id
        assert sb.run(lambda c: c.auth.get_user(), client).user.email == email
    finally:
        sb.target = original
