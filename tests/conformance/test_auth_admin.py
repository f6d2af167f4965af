"""The admin user API (``auth.admin``): who may call it, real rows, validation and pagination
(research/supabase-stack.md §6.1, checklist §9 "Auth")."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from supabase_auth.errors import AuthApiError

PASSWORD = "conformance-pass-123"
VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


def _email() -> str:
    return f"admin-{uuid.uuid4().hex[:12]}@example.test"


def _service_headers(target: Any) -> dict[str, str]:
    return {"apikey": target.service_role_key, "Authorization": f"Bearer {target.service_role_key}", **VERSION}


def _auth_error(sb: Any, call: Any, client: Any) -> AuthApiError:
    with pytest.raises(AuthApiError) as caught:
        sb.run(call, client)
    return caught.value


@pytest.fixture
def signup_trigger(target: Any) -> Iterator[str]:
    """A SECURITY DEFINER trigger on auth.users, as apps use to create profiles; yields its table."""
    target.sql("""
        create table if not exists public.conformance_auth_signups (user_id uuid primary key, email text);
        create or replace function public.conformance_auth_on_signup() returns trigger
        language plpgsql security definer set search_path = '' as $$
        begin
          insert into public.conformance_auth_signups (user_id, email) values (new.id, new.email);
          return new;
        end $$;
        drop trigger if exists conformance_auth_on_signup on auth.users;
        create trigger conformance_auth_on_signup after insert on auth.users
          for each row execute function public.conformance_auth_on_signup();""")
    yield "public.conformance_auth_signups"
    target.sql("""drop trigger if exists conformance_auth_on_signup on auth.users;
                  drop function if exists public.conformance_auth_on_signup();
                  drop table if exists public.conformance_auth_signups;""")


def test_service_key_creates_a_real_user_and_triggers_fire(sb: Any, target: Any, signup_trigger: str) -> None:
    email = _email()
    user = sb.run(
        lambda c: c.auth.admin.create_user(
            {"email": email, "password": PASSWORD, "email_confirm": True, "user_metadata": {"name": "Ada"}}
        ),
        sb.service,
    ).user
    assert (user.email, user.role, user.aud, user.user_metadata) == (
        email,
        "authenticated",
        "authenticated",
        {"name": "Ada", "email_verified": True},
    )
    assert user.email_confirmed_at is not None
    assert target.sql("select email, raw_app_meta_data from auth.users where id = %s", (user.id,)) == [
        (email, {"provider": "email", "providers": ["email"]})
    ]
    assert target.sql(f"select email from {signup_trigger} where user_id = %s", (user.id,)) == [(email,)]


def test_anon_key_is_not_admin_and_writes_nothing(sb: Any, target: Any) -> None:
    email = _email()
    error = _auth_error(sb, lambda c: c.auth.admin.create_user({"email": email, "password": PASSWORD}), sb.anon)
    assert (error.code, error.status, error.message) == ("not_admin", 403, "User not allowed")
    assert target.sql("select count(*) from auth.users where email = %s", (email,)) == [(0,)]


def test_user_token_is_not_admin(sb: Any, target: Any) -> None:
    session = target.create_user(_email())
    client = sb.user(session)
    error = _auth_error(sb, lambda c: c.auth.admin.list_users(), client)
    assert (error.code, error.status) == ("not_admin", 403)


def test_duplicate_email_is_email_exists_422(sb: Any) -> None:
    email = _email()
    sb.run(lambda c: c.auth.admin.create_user({"email": email, "password": PASSWORD}), sb.service)
    error = _auth_error(
        sb, lambda c: c.auth.admin.create_user({"email": email.upper(), "password": PASSWORD}), sb.service
    )
    assert (error.code, error.status) == ("email_exists", 422)


def test_user_without_email_or_phone_is_validation_failed(sb: Any) -> None:
    error = _auth_error(sb, lambda c: c.auth.admin.create_user({"password": PASSWORD}), sb.service)
    assert (error.code, error.status) == ("validation_failed", 400)
    error = _auth_error(sb, lambda c: c.auth.admin.create_user({"email": "not-an-email"}), sb.service)
    assert (error.code, error.status) == ("validation_failed", 400)


def test_get_update_delete_round_trip(sb: Any, target: Any) -> None:
    created = sb.run(
        lambda c: c.auth.admin.create_user({"email": _email(), "user_metadata": {"a": 1}}), sb.service
    ).user
    fetched = sb.run(lambda c: c.auth.admin.get_user_by_id(created.id), sb.service).user
    assert (fetched.id, fetched.email_confirmed_at, len(fetched.identities)) == (created.id, None, 1)
    updated = sb.run(
        lambda c: c.auth.admin.update_user_by_id(
            created.id, {"email_confirm": True, "user_metadata": {"b": 2}, "app_metadata": {"tier": "gold"}}
        ),
        sb.service,
    ).user
    assert updated.email_confirmed_at is not None
    assert updated.user_metadata == {"a": 1, "b": 2, "email_verified": True}
    assert updated.app_metadata == {"provider": "email", "providers": ["email"], "tier": "gold"}
    sb.run(lambda c: c.auth.admin.delete_user(created.id), sb.service)
    assert target.sql("select count(*) from auth.users where id = %s", (created.id,)) == [(0,)]
    error = _auth_error(sb, lambda c: c.auth.admin.get_user_by_id(created.id), sb.service)
    assert (error.code, error.status) == ("user_not_found", 404)


def test_non_uuid_user_id_is_404_validation_failed(target: Any) -> None:
    response = httpx.get(f"{target.url}/auth/v1/admin/users/not-a-uuid", headers=_service_headers(target))
    assert response.status_code == 404
    assert response.json() == {"code": "validation_failed", "message": "user_id must be an UUID"}


def test_list_users_paginates_with_total_and_link_headers(sb: Any, target: Any) -> None:
    before = int(
        httpx.get(f"{target.url}/auth/v1/admin/users", headers=_service_headers(target)).headers["X-Total-Count"]
    )
    for _ in range(3):
        sb.run(lambda c: c.auth.admin.create_user({"email": _email()}), sb.service)
    total = before + 3
    response = httpx.get(
        f"{target.url}/auth/v1/admin/users", params={"page": 1, "per_page": 2}, headers=_service_headers(target)
    )
    assert response.status_code == 200
    assert (len(response.json()["users"]), response.json()["aud"]) == (2, "authenticated")
    assert response.headers["X-Total-Count"] == str(total)
    last_page = -(-total // 2)
    assert response.headers["Link"] == (
        f'</admin/users?page=2&per_page=2>; rel="next", </admin/users?page={last_page}&per_page=2>; rel="last"'
    )
    users = sb.run(lambda c: c.auth.admin.list_users(page=last_page, per_page=2), sb.service)
    assert len(users) == total - 2 * (last_page - 1)
    beyond = httpx.get(
        f"{target.url}/auth/v1/admin/users", params={"page": 99, "per_page": 2}, headers=_service_headers(target)
    )
    assert (beyond.json()["users"], beyond.headers["X-Total-Count"]) == ([], str(total))


def test_chosen_id_and_imported_bcrypt_hash_sign_in(sb: Any, target: Any) -> None:
    user_id, email = str(uuid.uuid4()), _email()
    [(password_hash,)] = target.sql("select extensions.crypt(%s, extensions.gen_salt('bf', 4))", (PASSWORD,))
    attributes = {"id": user_id, "email": email, "password_hash": password_hash, "email_confirm": True}
    assert sb.run(lambda c: c.auth.admin.create_user(attributes), sb.service).user.id == user_id
    session = sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD})).session
    assert session.user.id == user_id
    nil = {"id": str(uuid.UUID(int=0)), "email": _email()}
    error = _auth_error(sb, lambda c: c.auth.admin.create_user(nil), sb.service)
    assert (error.code, error.message) == ("validation_failed", "ID cannot be a nil uuid")


def test_soft_delete_keeps_an_anonymised_row_that_cannot_sign_in(sb: Any, target: Any) -> None:
    email = _email()
    attributes = {"email": email, "password": PASSWORD, "email_confirm": True}
    created = sb.run(lambda c: c.auth.admin.create_user(attributes), sb.service).user
    sb.run(lambda c: c.auth.admin.delete_user(created.id, should_soft_delete=True), sb.service)
    [(stored_email, deleted)] = target.sql(
        "select email, deleted_at is not null from auth.users where id = %s", (created.id,)
    )
    assert (stored_email != email, deleted) == (True, True)
    with pytest.raises(AuthApiError) as caught:
        sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}))
    assert caught.value.code == "invalid_credentials"


def test_admin_password_change_ends_sessions_and_bans_can_be_lifted(sb: Any, target: Any) -> None:
    email = _email()
    session = target.create_user(email)
    user_id = session["user"]["id"]
    sb.run(lambda c: c.auth.admin.update_user_by_id(user_id, {"password": "brand-new-pass"}), sb.service)
    assert target.sql("select count(*) from auth.sessions where user_id = %s", (user_id,)) == [(0,)]
    banned = sb.run(lambda c: c.auth.admin.update_user_by_id(user_id, {"ban_duration": "1h30m"}), sb.service).user
    assert banned.banned_until is not None
    lifted = sb.run(lambda c: c.auth.admin.update_user_by_id(user_id, {"ban_duration": "none"}), sb.service).user
    assert lifted.banned_until is None
    signed_in = sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": "brand-new-pass"}))
    assert signed_in.user.id == user_id
    error = _auth_error(sb, lambda c: c.auth.admin.update_user_by_id(user_id, {"ban_duration": "forever"}), sb.service)
    assert (error.code, error.status) == ("validation_failed", 400)


@pytest.fixture
def failing_trigger(target: Any) -> Iterator[None]:
    """A trigger on auth.users that raises, the classic cause of "Database error saving new user"."""
    target.sql("""
        create or replace function public.conformance_auth_refuse() returns trigger language plpgsql as $$
        begin raise exception 'profiles table is broken'; end $$;
        create trigger conformance_auth_refuse before insert on auth.users
          for each row execute function public.conformance_auth_refuse();""")
    yield
    target.sql("""drop trigger if exists conformance_auth_refuse on auth.users;
                  drop function if exists public.conformance_auth_refuse();""")


def test_failing_trigger_is_a_500_and_writes_nothing(sb: Any, target: Any, failing_trigger: None) -> None:
    email = _email()
    error = _auth_error(sb, lambda c: c.auth.sign_up({"email": email, "password": PASSWORD}), sb.anon)
    assert (error.code, error.status, error.message) == ("unexpected_failure", 500, "Database error saving new user")
    error = _auth_error(sb, lambda c: c.auth.admin.create_user({"email": email}), sb.service)
    assert (error.code, error.status, error.message) == ("unexpected_failure", 500, "Database error creating new user")
    assert target.sql("select count(*) from auth.identities where email = %s", (email,)) == [(0,)]
