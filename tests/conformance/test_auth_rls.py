"""A signed-in client's PostgREST and Storage calls run as ``authenticated``; after sign-out as the key's role;
an access token outlives its session everywhere but /auth/v1 (research §1.2, §6.2; checklist §9 "Auth")."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from postgrest.exceptions import APIError
from storage3.exceptions import StorageApiError
from supabase_auth.errors import AuthApiError

PASSWORD = "conformance-pass-123"
WHOAMI = "conformance_auth_whoami"
BUCKET = "conformance-auth"


@pytest.fixture(scope="module")
def whoami(target: Any) -> Iterator[str]:
    """An RPC reporting ``auth.role()``/``auth.uid()`` and the Postgres role the request ran as."""
    target.sql(f"""
        create or replace function public.{WHOAMI}() returns jsonb language sql stable as $$
          select jsonb_build_object('role', auth.role(), 'uid', auth.uid(), 'db_role', current_user::text)
        $$;
        grant execute on function public.{WHOAMI}() to anon, authenticated, service_role;
        notify pgrst, 'reload schema';""")
    _wait_until_visible(target)
    yield WHOAMI
    target.sql(f"drop function if exists public.{WHOAMI}()")


def _wait_until_visible(target: Any) -> None:
    """The schema cache reloads asynchronously after DDL, as PostgREST's does."""
    headers = {"apikey": target.service_role_key, "Authorization": f"Bearer {target.service_role_key}"}
    deadline = time.monotonic() + 5
    while httpx.post(f"{target.url}/rest/v1/rpc/{WHOAMI}", json={}, headers=headers).status_code != 200:
        assert time.monotonic() < deadline, f"{WHOAMI} never became callable"
        time.sleep(0.05)


@pytest.fixture
def private_bucket(target: Any) -> Iterator[str]:
    """A private bucket where authenticated users may write and read under ``<their uid>/``."""
    owner_folder = f"bucket_id = '{BUCKET}' and (storage.foldername(name))[1] = auth.uid()::text"
    target.sql(f"""
        insert into storage.buckets (id, name, public) values ('{BUCKET}', '{BUCKET}', false)
          on conflict (id) do nothing;
        drop policy if exists conformance_auth_insert on storage.objects;
        drop policy if exists conformance_auth_select on storage.objects;
        create policy conformance_auth_insert on storage.objects for insert to authenticated
          with check ({owner_folder});
        create policy conformance_auth_select on storage.objects for select to authenticated
          using ({owner_folder});""")
    yield BUCKET
    target.sql(f"""
        drop policy if exists conformance_auth_insert on storage.objects;
        drop policy if exists conformance_auth_select on storage.objects;
        begin;
        set local storage.allow_delete_query = 'true';
        delete from storage.objects where bucket_id = '{BUCKET}';
        delete from storage.buckets where id = '{BUCKET}';
        commit;""")


def _signed_in(sb: Any) -> tuple[Any, Any]:
    """A fresh anon-key client signed in as a new confirmed user; returns (client, session)."""
    email = f"rls-{uuid.uuid4().hex[:12]}@example.test"
    sb.run(
        lambda c: c.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}), sb.service
    )
    client = sb.anon
    session = sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}), client).session
    return client, session


def _whoami(sb: Any, client: Any) -> dict[str, Any]:
    return dict(sb.run(lambda c: c.rpc(WHOAMI), client).data)


def test_postgrest_runs_as_the_user_after_sign_in_and_as_anon_after_sign_out(sb: Any, whoami: str) -> None:
    client = sb.anon
    assert _whoami(sb, client) == {"role": "anon", "uid": None, "db_role": "anon"}
    client, session = _signed_in(sb)
    assert _whoami(sb, client) == {"role": "authenticated", "uid": session.user.id, "db_role": "authenticated"}
    sb.run(lambda c: c.auth.sign_out(), client)
    assert _whoami(sb, client) == {"role": "anon", "uid": None, "db_role": "anon"}


def test_service_client_that_signs_a_user_in_becomes_that_user(sb: Any, whoami: str) -> None:
    service = sb.service
    assert _whoami(sb, service)["db_role"] == "service_role"
    email = f"rls-{uuid.uuid4().hex[:12]}@example.test"
    sb.run(lambda c: c.auth.admin.create_user({"email": email, "password": PASSWORD, "email_confirm": True}), service)
    sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}), service)
    assert _whoami(sb, service)["db_role"] == "authenticated"


def test_old_access_token_works_on_rest_until_expiry_but_not_on_auth(sb: Any, whoami: str) -> None:
    client, session = _signed_in(sb)
    sb.run(lambda c: c.auth.sign_out(), client)
    stale = sb.client(access_token=session.access_token)
    assert _whoami(sb, stale) == {"role": "authenticated", "uid": session.user.id, "db_role": "authenticated"}
    with pytest.raises(AuthApiError) as caught:
        sb.run(lambda c: c.auth.get_user(session.access_token), stale)
    assert (caught.value.code, caught.value.status) == ("session_not_found", 403)


def test_storage_runs_as_the_user_after_sign_in_and_as_anon_after_sign_out(
    sb: Any, target: Any, private_bucket: str
) -> None:
    client, session = _signed_in(sb)
    uid = session.user.id
    sb.run(lambda c: c.storage.from_(private_bucket).upload(f"{uid}/a.txt", b"hello"), client)
    owners = target.sql(
        "select owner_id from storage.objects where bucket_id = %s and name = %s", (private_bucket, f"{uid}/a.txt")
    )
    assert owners == [(uid,)]
    stale = sb.client(access_token=session.access_token)
    sb.run(lambda c: c.auth.sign_out(), client)
    with pytest.raises(StorageApiError) as caught:
        sb.run(lambda c: c.storage.from_(private_bucket).upload(f"{uid}/b.txt", b"again"), client)
    assert caught.value.status == "403"
    assert sb.run(lambda c: c.storage.from_(private_bucket).download(f"{uid}/a.txt"), stale) == b"hello"


def test_local_stack_create_user_gives_a_token_postgrest_accepts(sb: Any, local_only: Any, whoami: str) -> None:
    user = local_only.stack.create_user(f"stack-{uuid.uuid4().hex[:12]}@example.test", PASSWORD)
    assert user.access_token and user.refresh_token
    client = sb.client(access_token=user.access_token)
    assert _whoami(sb, client) == {"role": "authenticated", "uid": user.id, "db_role": "authenticated"}
    assert local_only.stack.sign_in(user.email, PASSWORD).id == user.id
    unconfirmed = local_only.stack.create_user(f"stack-{uuid.uuid4().hex[:12]}@example.test", confirmed=False)
    assert unconfirmed.access_token == ""


def test_admin_set_role_goes_into_the_token_and_postgres_judges_it(sb: Any, whoami: str) -> None:
    email = f"rls-{uuid.uuid4().hex[:12]}@example.test"
    attributes = {"email": email, "password": PASSWORD, "email_confirm": True, "role": "conformance_no_such_role"}
    assert sb.run(lambda c: c.auth.admin.create_user(attributes), sb.service).user.role == "conformance_no_such_role"
    client = sb.anon
    session = sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}), client).session
    assert session.user.role == "conformance_no_such_role"
    with pytest.raises(APIError) as caught:
        _whoami(sb, client)
    assert caught.value.code == "22023"
