"""Bad input is answered as PostgREST answers it and writes nothing (research §4.2, §4.3, §4.8; checklist §9):
JWT problems, unknown tables/functions/profiles, bad query syntax, malformed bodies, unknown paths; plus the
schema cache following DDL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from postgrest.exceptions import APIError

_SCHEMA = "create table if not exists public.conf_rest_plain (id int primary key, label text)"


@pytest.fixture
def plain(target: Any) -> Any:
    target.sql(_SCHEMA + "; truncate public.conf_rest_plain")
    return target


def wire(sb: Any, client: Any) -> list[httpx.Response]:
    """The raw responses the client received (status, headers), recorded by an httpx event hook."""
    seen: list[httpx.Response] = []
    session = client.postgrest.session
    if sb.flavour == "sync":
        session.event_hooks["response"].append(seen.append)
    else:

        async def record(response: httpx.Response) -> None:
            seen.append(response)

        session.event_hooks["response"].append(record)
    return seen


def failing(sb: Any, build: Callable[[Any], Any], client: Any = None) -> tuple[APIError, httpx.Response]:
    client = client if client is not None else sb.anon
    seen = wire(sb, client)
    with pytest.raises(APIError) as error:
        sb.run(build, client)
    return error.value, seen[-1]


def assert_nothing_written(target: Any) -> None:
    assert target.sql("select count(*) from public.conf_rest_plain") == [(0,)]


# -- JWT ----------------------------------------------------------------------------------------------------------


def _token(secret: str, **claims: Any) -> str:
    now = int(time.time())
    return jwt.encode(
        {"sub": str(uuid.uuid4()), "role": "authenticated", "iat": now, "exp": now + 600, **claims},
        secret,
        algorithm="HS256",
    )


def test_tampered_jwt_is_pgrst301(sb: Any, plain: Any) -> None:
    token = _token("not-the-project-secret-but-long-enough-0123456789")
    error, response = failing(sb, lambda c: c.table("conf_rest_plain").insert({"id": 1}), sb.client(access_token=token))
    assert (error.code, response.status_code) == ("PGRST301", 401)
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert_nothing_written(plain)


def test_two_part_jwt_is_pgrst301(sb: Any, plain: Any) -> None:
    error, response = failing(sb, lambda c: c.table("conf_rest_plain").select("id"), sb.client(access_token="abc.def"))
    assert (error.code, error.message, response.status_code) == ("PGRST301", "Expected 3 parts in JWT; got 2", 401)


def test_expired_jwt_is_pgrst303(sb: Any, plain: Any, local_only: Any) -> None:
    token = _token(plain.stack.jwt_secret, exp=int(time.time()) - 120)
    error, response = failing(sb, lambda c: c.table("conf_rest_plain").insert({"id": 1}), sb.client(access_token=token))
    assert (error.code, error.message, response.status_code) == ("PGRST303", "JWT expired", 401)
    assert 'error_description="JWT expired"' in response.headers["www-authenticate"]
    assert_nothing_written(plain)


def test_jwt_with_unknown_role_is_refused_by_postgres(sb: Any, plain: Any, local_only: Any) -> None:
    token = _token(plain.stack.jwt_secret, role="ghost")
    error, response = failing(sb, lambda c: c.table("conf_rest_plain").insert({"id": 1}), sb.client(access_token=token))
    assert (error.code, error.message, response.status_code) == ("22023", 'role "ghost" does not exist', 401)
    assert_nothing_written(plain)


# -- unknown names ----------------------------------------------------------------------------------------------


def test_unknown_table_is_pgrst205(sb: Any, plain: Any) -> None:
    error, response = failing(sb, lambda c: c.table("conf_rest_plane").select("*"))
    assert (error.code, response.status_code) == ("PGRST205", 404)
    assert error.message == "Could not find the table 'public.conf_rest_plane' in the schema cache"
    assert error.hint == "Perhaps you meant the table 'public.conf_rest_plain'"


def test_unknown_column_in_payload_is_pgrst204(sb: Any, plain: Any) -> None:
    error, response = failing(sb, lambda c: c.table("conf_rest_plain").insert({"id": 1, "colour": "red"}), sb.service)
    assert (error.code, response.status_code) == ("PGRST204", 400)
    assert error.message == "Could not find the 'colour' column of 'conf_rest_plain' in the schema cache"
    assert_nothing_written(plain)


def test_unexposed_profile_is_pgrst106(sb: Any, plain: Any) -> None:
    error, response = failing(sb, lambda c: c.schema("storage").table("objects").select("*"))
    assert (error.code, response.status_code) == ("PGRST106", 406)
    assert error.message == "Invalid schema: storage"


def test_aggregates_are_disabled(sb: Any, plain: Any) -> None:
    error, _ = failing(sb, lambda c: c.table("conf_rest_plain").select("id.sum()"))
    assert error.code == "PGRST123"


# -- bad syntax and bodies ----------------------------------------------------------------------------------------

BAD_QUERIES = [
    ("unknown operator", lambda c: c.table("conf_rest_plain").select("id").filter("id", "nope", "1")),
    ("bad select", lambda c: c.table("conf_rest_plain").select("id,(")),
    ("bad or", lambda c: c.table("conf_rest_plain").select("id").or_("id.eq.1,(")),
    ("bad order", lambda c: c.table("conf_rest_plain").select("id").order("id.sideways")),
    ("bad is value", lambda c: c.table("conf_rest_plain").select("id").filter("id", "is", "maybe")),
]


@pytest.mark.parametrize(("name", "build"), BAD_QUERIES, ids=[q[0] for q in BAD_QUERIES])
def test_bad_query_syntax_is_pgrst100(sb: Any, plain: Any, name: str, build: Callable[[Any], Any]) -> None:
    error, response = failing(sb, build)
    assert (error.code, response.status_code) == ("PGRST100", 400)
    assert (error.message or "").startswith('"failed to parse')


def _post(target: Any, path: str, content: bytes, content_type: str = "application/json") -> httpx.Response:
    return httpx.post(
        f"{target.url}/rest/v1/{path}",
        content=content,
        headers={"apikey": target.service_role_key, "Content-Type": content_type},
    )


@pytest.mark.parametrize("body", [b'{"id": 1,', b"", b"[1, 2]", b'[{"id": 1}, 5]'])
def test_malformed_json_body_is_pgrst102(plain: Any, body: bytes) -> None:
    response = _post(plain, "conf_rest_plain", body)
    assert response.status_code == 400 and response.json()["code"] == "PGRST102"
    assert response.headers["proxy-status"] == "PostgREST; error=PGRST102"
    assert_nothing_written(plain)


def test_malformed_rpc_body_and_foreign_content_type(plain: Any) -> None:
    assert _post(plain, "rpc/conf_rest_nothing", b"{oops").json()["code"] == "PGRST102"
    response = _post(plain, "conf_rest_plain", b"id\n1", "text/plain")
    assert (response.status_code, response.json()["code"]) == (400, "PGRST102")
    assert_nothing_written(plain)


def test_unknown_path_is_pgrst125_and_root_answers(plain: Any) -> None:
    headers = {"apikey": plain.anon_key}
    response = httpx.get(f"{plain.url}/rest/v1/a/b", headers=headers)
    assert (response.status_code, response.json()["code"]) == (404, "PGRST125")
    assert httpx.get(f"{plain.url}/rest/v1/", headers=headers).status_code == 200


def test_unsupported_method_on_rpc(plain: Any) -> None:
    response = httpx.patch(f"{plain.url}/rest/v1/rpc/anything", json={}, headers={"apikey": plain.service_role_key})
    assert (response.status_code, response.json()["code"]) == (405, "PGRST101")


def test_schema_cache_follows_ddl(sb: Any, target: Any) -> None:
    name = f"conf_rest_fresh_{uuid.uuid4().hex[:8]}"
    try:
        target.sql(f"create table public.{name} (id int primary key, note text)")
        sb.run(lambda c: c.table(name).insert({"id": 1, "note": "x"}, returning="minimal"), sb.service)
        target.sql(f"alter table public.{name} add column extra int")
        rows = sb.run(lambda c: c.table(name).update({"extra": 7}).eq("id", 1), sb.service).data
        assert rows == [{"id": 1, "note": "x", "extra": 7}]
    finally:
        target.sql(f"drop table if exists public.{name}")
    error, _ = failing(sb, lambda c: c.table(name).select("*"))
    assert error.code == "PGRST205"
