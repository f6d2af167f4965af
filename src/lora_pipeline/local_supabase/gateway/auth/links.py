"""``POST /admin/generate_link``: GoTrue's email action links, made without sending mail.

For ``signup``, ``invite``, ``magiclink``, ``recovery``, ``email_change_current`` and ``email_change_new`` it
stores the hashed token where GoTrue does (``confirmation_token``, ``recovery_token``,
``email_change_token_*``) and answers with the user plus ``action_link``, ``email_otp``, ``hashed_token``,
``verification_type`` and ``redirect_to``. As in GoTrue: a magic link for an unknown address signs the address
up (with a random password); other types need an existing user (404 ``user_not_found``); ``signup`` and
``invite`` refuse an address that is already confirmed (422 ``email_exists``). The hashed token is the hex
SHA-224 of the address followed by the six-digit OTP. The stack serves no ``/verify`` (see the README), so
the link is for the caller to hand on, as with a custom email provider.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from starlette.requests import Request
from starlette.responses import Response

from .errors import bad_request, database_failure, json_response, not_found, unprocessable
from .guards import AuthContext, require_admin
from .params import check_password_strength, decode_body, read_body, validate_email
from .serialize import timestamp, user_json
from .tokens import request_audience
from .users import NewUser, User, email_taken, find_by_email, find_by_id, identity_data, insert_user, merge_metadata
from .users import hash_password as bcrypt_hash

LINK_FIELDS = {"type": str, "email": str, "new_email": str, "password": str, "data": dict, "redirect_to": str}
LINK_TYPES = ("signup", "invite", "magiclink", "recovery", "email_change_current", "email_change_new")
SITE_URL = "http://127.0.0.1:3000"
"""The Supabase CLI's default ``site_url``: where a link redirects when no allowed ``redirect_to`` is given."""
DUPLICATE_EMAIL = "A user with this email address has already been registered"
_TOKEN_COLUMN = {
    "signup": "confirmation_token",
    "invite": "confirmation_token",
    "magiclink": "recovery_token",
    "recovery": "recovery_token",
    "email_change_current": "email_change_token_current",
    "email_change_new": "email_change_token_new",
}


def token_hash(address: str, otp: str) -> str:
    """GoTrue's ``GenerateTokenHash``: what the link carries and the row stores (never the OTP itself)."""
    return hashlib.sha224((address + otp).encode()).hexdigest()


def new_otp() -> str:
    return f"{secrets.randbelow(10**6):06d}"


def redirect_target(request: Request, params: dict[str, Any]) -> str:
    """``redirect_to`` (body or query) when it points at the local machine, else the site URL."""
    wanted = params.get("redirect_to") or request.query_params.get("redirect_to") or ""
    try:
        parts = urlsplit(wanted)
        local = parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost")
    except ValueError:  # "http://[::1" and other unparseable URLs: not allowed, like any other
        return SITE_URL
    return wanted if local else SITE_URL


async def generate_link(context: AuthContext, request: Request) -> Response:
    """Checks in GoTrue's order: admin, JSON, email, the user (or its absence), the type, then the row."""
    raw = await read_body(request)
    async with context.db.admin() as conn:
        claims = await require_admin(context, request, conn)
        params = decode_body(raw, LINK_FIELDS)
        email = validate_email(params.get("email", ""))
        referrer = redirect_target(request, params)
        aud = request_audience(request, claims)
        kind = params.get("type", "")
        user = await find_by_email(conn, email, aud)
        if user is None and kind == "magiclink":
            kind, params["password"] = "signup", secrets.token_urlsafe(48)
        elif user is None and kind in ("recovery", "email_change_current", "email_change_new"):
            raise not_found("user_not_found", "User with this email not found")
        if kind not in LINK_TYPES:
            raise bad_request("validation_failed", f"Invalid email action link type requested: {kind}")
        otp = new_otp()
        try:
            user, token, extra = await _prepare(context, conn, kind, email, aud, user, params, otp)
        except psycopg.Error as error:
            raise database_failure(error, "Database error updating user") from error
    link = f"{context.config.public_url}/auth/v1/verify?" + urlencode(
        {"token": token, "type": "email_change" if kind.startswith("email_change") else kind, "redirect_to": referrer}
    )
    body = {**user_json(user), **extra, "action_link": link, "email_otp": otp, "hashed_token": token}
    return json_response(body | {"verification_type": kind, "redirect_to": referrer})


async def _prepare(
    context: AuthContext,
    conn: AsyncConnection[Any],
    kind: str,
    email: str,
    aud: str,
    user: User | None,
    params: dict[str, Any],
    otp: str,
) -> tuple[User, str, dict[str, Any]]:
    """Create or update the user for ``kind`` and store its hashed token; returns extra response fields."""
    extra: dict[str, Any] = {}
    token = token_hash(email, otp)
    if kind in ("signup", "invite"):
        if user is not None and user.confirmed_at is not None:
            raise unprocessable("email_exists", DUPLICATE_EMAIL)
        if user is None:
            user = await _sign_up(context, conn, email, aud, params, with_password=kind == "signup")
        elif kind == "signup" and params.get("data"):
            merged = merge_metadata(user.user_metadata, params["data"])
            await conn.execute("update auth.users set raw_user_meta_data = %s where id = %s", (Jsonb(merged), user.id))
    assert user is not None
    if kind.startswith("email_change"):
        new_email = validate_email(params.get("new_email", ""))
        if await email_taken(conn, new_email, user.aud, other_than=user.id):
            raise unprocessable("email_exists", DUPLICATE_EMAIL)
        if kind == "email_change_new":
            token = token_hash(new_email, otp)
        extra = {"new_email": new_email, "email_change_sent_at": timestamp(datetime.now(timezone.utc))}
        await _store_email_change(conn, user.id, kind, new_email, token)
    else:
        sent = "recovery_sent_at" if _TOKEN_COLUMN[kind] == "recovery_token" else "confirmation_sent_at"
        invited = ", invited_at = now()" if kind == "invite" else ""
        await conn.execute(
            f"update auth.users set {_TOKEN_COLUMN[kind]} = %s, {sent} = now(){invited} where id = %s",
            (token, user.id),
        )
    stored = await find_by_id(conn, user.id)
    assert stored is not None
    return stored, token, extra


async def _sign_up(
    context: AuthContext,
    conn: AsyncConnection[Any],
    email: str,
    aud: str,
    params: dict[str, Any],
    *,
    with_password: bool,
) -> User:
    """An unconfirmed email user, as GoTrue's ``signupNewUser`` leaves it (an invite has no password)."""
    password_hash = None
    if with_password:
        password = params.get("password", "")
        if not password:
            raise bad_request("validation_failed", "Signup requires a valid password")
        check_password_strength(password)
        password_hash = await bcrypt_hash(conn, password, context.config.bcrypt_cost)
    user_id, data = uuid.uuid4(), params.get("data", {})
    new = NewUser(
        email=email,
        phone=None,
        password_hash=password_hash,
        aud=aud,
        role="authenticated",
        app_metadata={"provider": "email", "providers": ["email"]},
        user_metadata=identity_data(user_id, "email", email, extras=data),
        id=user_id,
        identity_extras=data,
    )
    return await insert_user(conn, new)


async def _store_email_change(
    conn: AsyncConnection[Any], user_id: uuid.UUID, kind: str, new_email: str, token: str
) -> None:
    current = token if kind == "email_change_current" else ""
    new = token if kind == "email_change_new" else ""
    await conn.execute(
        """update auth.users set email_change = %s, email_change_token_current = %s, email_change_token_new = %s,
               email_change_sent_at = now(), email_change_confirm_status = 0 where id = %s""",
        (new_email, current, new, user_id),
    )


__all__ = ["LINK_TYPES", "SITE_URL", "generate_link", "new_otp", "redirect_target", "token_hash"]
