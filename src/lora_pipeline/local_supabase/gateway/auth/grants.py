"""Endpoints that hand out sessions: ``POST /signup`` and ``POST /token`` (password and refresh-token grants).

Sign-up behaves like a project with confirmations off (the Supabase CLI's default, "autoconfirm"): the new
user is confirmed at once and gets a session. Checks run in GoTrue's order, so a request that is wrong in
several ways gets the answer GoTrue gives first.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .errors import OAuthFailure, bad_request, database_failure, internal, json_response, unprocessable
from .guards import AuthContext
from .params import (
    check_password_strength,
    parse_uuid,
    read_params,
    validate_email,
    validate_phone,
    validate_pkce,
    weak_password_reason,
)
from .serialize import session_json
from .sessions import Session, find_refresh_token, find_session, rotate, start_session
from .tokens import issue_access_token, request_audience
from .users import (
    NOW,
    NewUser,
    User,
    find_by_email,
    find_by_id,
    find_by_phone,
    hash_password,
    identity_data,
    insert_user,
    password_matches,
    update_user,
)

SIGNUP_FIELDS = {
    "email": str,
    "phone": str,
    "password": str,
    "data": dict,
    "channel": str,
    "code_challenge": str,
    "code_challenge_method": str,
}
PASSWORD_GRANT_FIELDS = {"email": str, "phone": str, "password": str}
REFRESH_GRANT_FIELDS = {"refresh_token": str}
INVALID_LOGIN = "Invalid login credentials"


async def signup(context: AuthContext, request: Request) -> Response:
    """Create a confirmed user with an email (or phone) identity and sign it in."""
    params = await read_params(request, SIGNUP_FIELDS)
    email, phone = params.get("email", ""), params.get("phone", "")
    if not email and not phone:
        raise unprocessable("anonymous_provider_disabled", "Anonymous sign-ins are disabled")
    _validate_signup(params)
    aud = request_audience(request)
    email = validate_email(email) if email else ""
    phone = validate_phone(phone) if not email else ""
    async with context.db.admin() as conn:
        existing = await (find_by_email(conn, email, aud) if email else find_by_phone(conn, phone, aud))
        if existing is not None and (existing.email_confirmed_at if email else existing.phone_confirmed_at):
            raise unprocessable("user_already_exists", "User already registered")
        # Like GoTrue with autoconfirm, an existing unconfirmed user (an admin-created one without
        # email_confirm) is confirmed and signed in; its password is left as it was.
        user = existing or await _create_signup_user(context, conn, params, email, phone, aud)
        await _confirm(conn, user, by_email=bool(email))
        body = await issue_session(context, conn, user.id)
    return json_response(body)


def _validate_signup(params: dict[str, Any]) -> None:
    password = params.get("password", "")
    if not password:
        raise bad_request("validation_failed", "Signup requires a valid password")
    check_password_strength(password)
    if params.get("email") and params.get("phone"):
        raise bad_request("validation_failed", "Only an email address or phone number should be provided on signup.")
    if params.get("phone") and params.get("code_challenge"):
        raise bad_request("validation_failed", "PKCE not supported for phone signups")
    validate_pkce(params.get("code_challenge_method", ""), params.get("code_challenge", ""))


async def _create_signup_user(
    context: AuthContext, conn: AsyncConnection[Any], params: dict[str, Any], email: str, phone: str, aud: str
) -> User:
    """GoTrue's sign-up row: user metadata starts as the identity's data (``sub``, ``email``, ``data`` keys)."""
    user_id = uuid.uuid4()
    provider = "email" if email else "phone"
    data = params.get("data", {})
    password_hash = await hash_password(conn, params["password"], context.config.bcrypt_cost)
    new = NewUser(
        email=email or None,
        phone=phone or None,
        password_hash=password_hash,
        aud=aud,
        role="authenticated",
        app_metadata={"provider": provider, "providers": [provider]},
        user_metadata=identity_data(user_id, provider, email or phone, extras=data),
        id=user_id,
        identity_extras=data,
    )
    try:
        return await insert_user(conn, new)
    except psycopg.Error as error:
        raise database_failure(error, "Database error saving new user") from error


async def _confirm(conn: AsyncConnection[Any], user: User, *, by_email: bool) -> None:
    if by_email and user.email_confirmed_at is None:
        metadata = {**user.user_metadata, "email_verified": True}
        await update_user(conn, user.id, {"email_confirmed_at": NOW, "raw_user_meta_data": metadata})
    elif not by_email and user.phone_confirmed_at is None:
        await update_user(conn, user.id, {"phone_confirmed_at": NOW})


async def issue_session(
    context: AuthContext, conn: AsyncConnection[Any], user_id: uuid.UUID, weak_password: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Open a session for the user and answer with its tokens and the user as stored now."""
    session, refresh_token = await start_session(conn, user_id)
    return await _session_body(context, conn, user_id, session, refresh_token.token, weak_password)


async def _session_body(
    context: AuthContext,
    conn: AsyncConnection[Any],
    user_id: uuid.UUID,
    session: Session,
    refresh_token: str,
    weak_password: dict[str, Any] | None = None,
) -> dict[str, Any]:
    user = await find_by_id(conn, user_id)
    if user is None:
        raise internal("Database error granting user")
    access_token, expires_at = issue_access_token(context.config, user, session)
    return session_json(access_token, expires_at, refresh_token, user, weak_password)


async def token(context: AuthContext, request: Request) -> Response:
    """``POST /token?grant_type=...``: the grants supabase-py uses."""
    grant_type = request.query_params.get("grant_type", "")
    if grant_type == "password":
        return await _password_grant(context, request)
    if grant_type == "refresh_token":
        return await _refresh_grant(context, request)
    raise bad_request("invalid_credentials", "unsupported_grant_type")


async def _password_grant(context: AuthContext, request: Request) -> Response:
    params = await read_params(request, PASSWORD_GRANT_FIELDS)
    email, phone, password = params.get("email", ""), params.get("phone", ""), params.get("password", "")
    if email and phone:
        raise bad_request("validation_failed", "Only an email address or phone number should be provided on login.")
    if not email and not phone:
        raise bad_request("validation_failed", "missing email or phone")
    aud = request_audience(request)
    async with context.db.admin() as conn:
        user = await (
            find_by_email(conn, email, aud)
            if email
            else find_by_phone(conn, phone.removeprefix("+").replace(" ", ""), aud)
        )
        await _check_password_sign_in(conn, user, password, by_email=bool(email))
        assert user is not None
        body = await issue_session(context, conn, user.id, weak_password_reason(password))
    return json_response(body)


async def _check_password_sign_in(
    conn: AsyncConnection[Any], user: User | None, password: str, *, by_email: bool
) -> None:
    """GoTrue's order: unknown user or no password, banned, wrong password, then unconfirmed."""
    if user is None or not user.has_password:
        raise bad_request("invalid_credentials", INVALID_LOGIN)
    if user.is_banned:
        raise bad_request("user_banned", "User is banned")
    if not await password_matches(conn, user, password):
        raise bad_request("invalid_credentials", INVALID_LOGIN)
    if by_email and user.email_confirmed_at is None:
        raise bad_request("email_not_confirmed", "Email not confirmed")
    if not by_email and user.phone_confirmed_at is None:
        raise bad_request("phone_not_confirmed", "Phone not confirmed")


async def _refresh_grant(context: AuthContext, request: Request) -> Response:
    presented_token = (await read_params(request, REFRESH_GRANT_FIELDS)).get("refresh_token", "")
    if not presented_token:
        raise OAuthFailure("invalid_request", "refresh_token required")
    async with context.db.admin() as conn:
        presented = await find_refresh_token(conn, presented_token, for_update=True)
        user = await find_by_id(conn, user_id) if presented and (user_id := parse_uuid(presented.user_id)) else None
        if presented is None or user is None:
            raise bad_request("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        if user.is_banned:
            raise bad_request("user_banned", "Invalid Refresh Token: User Banned")
        session = await find_session(conn, presented.session_id) if presented.session_id else None
        if session is None:
            raise bad_request("session_not_found", "Invalid Refresh Token: No Valid Session Found")
        if session.expired:
            raise bad_request("session_expired", "Invalid Refresh Token: Session Expired")
        issued = await rotate(conn, presented)
        body = None if issued is None else await _session_body(context, conn, user.id, session, issued)
    if body is None:  # the session's tokens were revoked and committed above, as GoTrue does
        raise bad_request("refresh_token_already_used", "Invalid Refresh Token: Already Used")
    return json_response(body)


__all__ = ["issue_session", "signup", "token"]
