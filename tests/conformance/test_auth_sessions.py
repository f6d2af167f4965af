"""Auth sessions through the unmodified supabase client: sign-up, password sign-in, tokens, refresh, sign-out
(research/supabase-stack.md §6, checklist §9 "Auth")."""

from __future__ import annotations

import re
import uuid
from typing import Any

import jwt
import pytest
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

PASSWORD = "conformance-pass-123"
CLAIMS = {
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "email",
    "phone",
    "app_metadata",
    "user_metadata",
    "role",
    "aal",
    "amr",
    "session_id",
    "is_anonymous",
}


def _email() -> str:
    return f"auth-{uuid.uuid4().hex[:12]}@example.test"


def _admin_create(sb: Any, email: str, **attributes: Any) -> Any:
    return sb.run(
        lambda c: c.auth.admin.create_user({"email": email, "password": PASSWORD, **attributes}), sb.service
    ).user


def _sign_in(sb: Any, client: Any, email: str, password: str = PASSWORD) -> Any:
    return sb.run(lambda c: c.auth.sign_in_with_password({"email": email, "password": password}), client)


def _auth_error(sb: Any, call: Any, client: Any = None) -> AuthApiError:
    with pytest.raises(AuthApiError) as caught:
        sb.run(call, client)
    return caught.value


def test_password_sign_in_returns_a_session_the_client_parses(sb: Any) -> None:
    email = _email()
    created = _admin_create(sb, email, email_confirm=True)
    response = _sign_in(sb, sb.anon, email)
    session = response.session
    assert session.token_type == "bearer"
    assert session.expires_in == 3600
    assert re.fullmatch(r"[A-Za-z0-9]{12}", session.refresh_token)
    assert session.user.id == created.id
    assert session.user.email == email
    assert session.user.last_sign_in_at is not None
    assert [identity.provider for identity in session.user.identities] == ["email"]


def test_access_token_has_exactly_the_claims_supabase_auth_issues(sb: Any, target: Any) -> None:
    email = _email()
    created = _admin_create(sb, email, email_confirm=True, user_metadata={"plan": "pro"})
    token = _sign_in(sb, sb.anon, email).session.access_token
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert set(claims) == CLAIMS
    assert claims["aud"] == "authenticated"
    assert claims["role"] == "authenticated"
    assert claims["sub"] == created.id
    assert claims["exp"] == claims["iat"] + 3600
    assert claims["iss"].endswith("/auth/v1")
    assert (claims["email"], claims["phone"], claims["aal"], claims["is_anonymous"]) == (email, "", "aal1", False)
    assert claims["app_metadata"] == {"provider": "email", "providers": ["email"]}
    assert claims["user_metadata"] == {"plan": "pro", "email_verified": True}
    assert [entry["method"] for entry in claims["amr"]] == ["password"]
    assert target.sql("select user_id::text from auth.sessions where id = %s", (claims["session_id"],)) == [
        (created.id,)
    ]
    if target.is_local:
        jwt.decode(token, target.stack.jwt_secret, algorithms=["HS256"], audience="authenticated")


def test_wrong_password_is_invalid_credentials_400(sb: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True)
    error = _auth_error(sb, lambda c: c.auth.sign_in_with_password({"email": email, "password": "not-it-123"}))
    assert (error.code, error.status, error.message) == ("invalid_credentials", 400, "Invalid login credentials")


def test_unknown_email_is_invalid_credentials_too(sb: Any) -> None:
    error = _auth_error(sb, lambda c: c.auth.sign_in_with_password({"email": _email(), "password": PASSWORD}))
    assert (error.code, error.status) == ("invalid_credentials", 400)


def test_admin_created_user_without_email_confirm_cannot_sign_in(sb: Any, target: Any) -> None:
    email = _email()
    created = _admin_create(sb, email)
    assert created.email_confirmed_at is None
    error = _auth_error(sb, lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}))
    assert (error.code, error.status, error.message) == ("email_not_confirmed", 400, "Email not confirmed")
    assert target.sql("select count(*) from auth.sessions where user_id = %s", (created.id,)) == [(0,)]


def test_banned_user_cannot_sign_in(sb: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True, ban_duration="24h")
    error = _auth_error(sb, lambda c: c.auth.sign_in_with_password({"email": email, "password": PASSWORD}))
    assert (error.code, error.status) == ("user_banned", 400)


def test_sign_up_autoconfirms_and_writes_real_rows(sb: Any, target: Any) -> None:
    email = _email()
    client = sb.anon
    response = sb.run(
        lambda c: c.auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"team": "ml"}}}), client
    )
    user = response.session.user
    assert user.email_confirmed_at is not None
    assert user.user_metadata == {
        "team": "ml",
        "sub": user.id,
        "email": email,
        "email_verified": True,
        "phone_verified": False,
    }
    rows = target.sql(
        """select u.role, u.aud, u.encrypted_password like '$2a$%%', i.provider, i.provider_id
                           from auth.users u join auth.identities i on i.user_id = u.id where u.id = %s""",
        (user.id,),
    )
    assert rows == [("authenticated", "authenticated", True, "email", user.id)]
    assert sb.run(lambda c: c.auth.get_user(), client).user.id == user.id


def test_sign_up_of_a_registered_email_is_user_already_exists(sb: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True)
    error = _auth_error(sb, lambda c: c.auth.sign_up({"email": email, "password": PASSWORD}))
    assert (error.code, error.status) == ("user_already_exists", 422)


def test_sign_up_with_a_short_password_is_weak_password(sb: Any) -> None:
    with pytest.raises(AuthWeakPasswordError) as caught:
        sb.run(lambda c: c.auth.sign_up({"email": _email(), "password": "abc"}))
    assert (caught.value.code, caught.value.status, caught.value.reasons) == ("weak_password", 422, ["length"])


def test_update_user_merges_metadata_and_changes_the_password(sb: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True, user_metadata={"a": 1, "b": 2})
    client = sb.anon
    _sign_in(sb, client, email)
    other_device = _sign_in(sb, sb.anon, email).session
    updated = sb.run(lambda c: c.auth.update_user({"data": {"b": None, "c": 3}, "password": "new-pass-456"}), client)
    assert updated.user.user_metadata == {"a": 1, "c": 3, "email_verified": True}
    error = _auth_error(sb, lambda c: c.auth.get_user(other_device.access_token))
    assert (error.code, error.status) == ("session_not_found", 403)
    assert sb.run(lambda c: c.auth.get_user(), client).user.email == email
    assert _sign_in(sb, sb.anon, email, "new-pass-456").session is not None


def test_sign_out_ends_the_session_for_auth(sb: Any, target: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True)
    client = sb.anon
    session = _sign_in(sb, client, email).session
    sb.run(lambda c: c.auth.sign_out(), client)
    assert sb.run(lambda c: c.auth.get_session(), client) is None
    error = _auth_error(sb, lambda c: c.auth.get_user(session.access_token))
    assert (error.code, error.status) == ("session_not_found", 403)
    error = _auth_error(sb, lambda c: c.auth.refresh_session(session.refresh_token))
    assert (error.code, error.status) == ("refresh_token_not_found", 400)
    assert target.sql("select count(*) from auth.sessions where user_id = %s", (session.user.id,)) == [(0,)]


def test_sign_out_scope_others_keeps_the_current_session(sb: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True)
    client = sb.anon
    _sign_in(sb, client, email)
    elsewhere = _sign_in(sb, sb.anon, email).session
    sb.run(lambda c: c.auth.sign_out({"scope": "others"}), client)
    assert sb.run(lambda c: c.auth.get_user(), client).user.email == email
    assert _auth_error(sb, lambda c: c.auth.get_user(elsewhere.access_token)).code == "session_not_found"


def test_refresh_rotates_the_token_within_the_session(sb: Any, target: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True)
    client = sb.anon
    first = _sign_in(sb, client, email).session
    second = sb.run(lambda c: c.auth.refresh_session(), client).session
    assert second.refresh_token != first.refresh_token
    session_id = jwt.decode(first.access_token, options={"verify_signature": False})["session_id"]
    assert jwt.decode(second.access_token, options={"verify_signature": False})["session_id"] == session_id
    rows = target.sql(
        "select token, revoked, parent from auth.refresh_tokens where session_id = %s order by id", (session_id,)
    )
    assert rows == [(first.refresh_token, True, None), (second.refresh_token, False, first.refresh_token)]


def test_reusing_the_parent_of_the_active_token_returns_the_active_token(sb: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True)
    first = _sign_in(sb, sb.anon, email).session
    second = sb.run(lambda c: c.auth.refresh_session(first.refresh_token)).session
    again = sb.run(lambda c: c.auth.refresh_session(first.refresh_token)).session
    assert again.refresh_token == second.refresh_token


def test_reuse_after_the_grace_period_is_refused_and_revokes_the_session(sb: Any, local_only: Any) -> None:
    email = _email()
    _admin_create(sb, email, email_confirm=True)
    first = _sign_in(sb, sb.anon, email).session
    second = sb.run(lambda c: c.auth.refresh_session(first.refresh_token)).session
    sb.run(lambda c: c.auth.refresh_session(second.refresh_token))
    local_only.sql(
        "update auth.refresh_tokens set updated_at = now() - interval '11 seconds' where token = %s",
        (first.refresh_token,),
    )
    error = _auth_error(sb, lambda c: c.auth.refresh_session(first.refresh_token))
    assert (error.code, error.status) == ("refresh_token_already_used", 400)
    session_id = jwt.decode(first.access_token, options={"verify_signature": False})["session_id"]
    assert local_only.sql("select bool_and(revoked) from auth.refresh_tokens where session_id = %s", (session_id,)) == [
        (True,)
    ]


def test_unknown_refresh_token_is_refresh_token_not_found(sb: Any) -> None:
    error = _auth_error(sb, lambda c: c.auth.refresh_session("abcdefghijkl"))
    assert (error.code, error.status) == ("refresh_token_not_found", 400)


def test_update_user_email_changes_the_sign_in_address(sb: Any, target: Any) -> None:
    email, new_email, taken = _email(), _email(), _email()
    _admin_create(sb, email, email_confirm=True)
    _admin_create(sb, taken)
    client = sb.anon
    _sign_in(sb, client, email)
    error = _auth_error(sb, lambda c: c.auth.update_user({"email": taken}), client)
    assert (error.code, error.status) == ("email_exists", 422)
    updated = sb.run(lambda c: c.auth.update_user({"email": new_email.upper()}), client).user
    assert updated.email == new_email
    assert [identity.identity_data["email"] for identity in updated.identities] == [new_email]
    assert _sign_in(sb, sb.anon, new_email).user.id == updated.id
