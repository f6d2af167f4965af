"""The admin user API: ``/admin/users`` and ``/admin/users/{id}`` (service-role tokens only).

Users created here are NOT confirmed unless ``email_confirm``/``phone_confirm`` is true, so a password sign-in
without it fails with ``email_not_confirmed``: the trap research §8 #16 describes, reproduced on purpose.
"""

from __future__ import annotations

import math
import secrets
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import psycopg
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from .errors import bad_request, database_failure, internal, json_response, not_found, unprocessable
from .guards import AuthContext, require_admin
from .params import (
    MAX_PASSWORD_LENGTH,
    check_password_strength,
    decode_body,
    parse_ban_duration,
    parse_uuid,
    read_body,
    validate_email,
    validate_phone,
)
from .serialize import user_json
from .sessions import log_out
from .tokens import request_audience
from .users import (
    NOW,
    NewUser,
    User,
    delete_user,
    email_taken,
    find_by_id,
    hash_password,
    insert_user,
    list_users,
    merge_metadata,
    phone_taken,
    set_contact,
    soft_delete_user,
    update_user,
)

ADMIN_USER_FIELDS = {
    "id": str,
    "aud": str,
    "role": str,
    "email": str,
    "phone": str,
    "password": str,
    "password_hash": str,
    "email_confirm": bool,
    "phone_confirm": bool,
    "user_metadata": dict,
    "app_metadata": dict,
    "ban_duration": str,
}
DEFAULT_PER_PAGE = 50
_BCRYPT_HASH_PREFIXES = ("$2a$", "$2b$", "$2x$", "$2y$")


async def list_users_endpoint(context: AuthContext, request: Request) -> Response:
    """One page of users, newest first, with GoTrue's ``X-Total-Count`` and ``Link`` headers."""
    async with context.db.admin() as conn:
        claims = await require_admin(context, request, conn)
        page, per_page = _page_of(request, "page", 1), _page_of(request, "per_page", DEFAULT_PER_PAGE)
        aud = request_audience(request, claims)
        users, total = await list_users(conn, aud, page, per_page)
    body = {"users": [user_json(user) for user in users], "aud": aud}
    return json_response(body, headers=_pagination_headers(request, page, per_page, total))


def _page_of(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name, "")
    if not raw:
        return default
    if not raw.isdigit():
        raise bad_request(
            "validation_failed", f'Bad Pagination Parameters: strconv.ParseUint: parsing "{raw}": invalid syntax'
        )
    if len(raw) > 20 or int(raw) > 2**64 - 1:
        raise bad_request(
            "validation_failed", f'Bad Pagination Parameters: strconv.ParseUint: parsing "{raw}": value out of range'
        )
    return max(int(raw), 1)


def _pagination_headers(request: Request, page: int, per_page: int, total: int) -> dict[str, str]:
    """``Link`` (next and last pages, relative to the Auth service as GoTrue writes it) and ``X-Total-Count``."""
    last_page = math.ceil(total / per_page)
    links = []
    if last_page > page:
        links.append(f'<{_page_url(request, page + 1)}>; rel="next"')
    links.append(f'<{_page_url(request, last_page)}>; rel="last"')
    return {"Link": ", ".join(links), "X-Total-Count": str(total)}


def _page_url(request: Request, page: int) -> str:
    query = {key: value for key, value in request.query_params.items() if key != "page"} | {"page": str(page)}
    return "/admin/users?" + urlencode(sorted(query.items()))


async def create_user(context: AuthContext, request: Request) -> Response:
    """``POST /admin/users``: a user with real rows (triggers on auth.users fire)."""
    raw = await read_body(request)  # before taking a connection: a slow client must not hold one
    async with context.db.admin() as conn:
        claims = await require_admin(context, request, conn)
        params = decode_body(raw, ADMIN_USER_FIELDS)
        new = await _new_user(context, conn, params, params.get("aud") or request_audience(request, claims))
        try:
            user = await insert_user(conn, new)
        except psycopg.Error as error:
            raise database_failure(error, "Database error creating new user") from error
    return json_response(user_json(user))


async def _new_user(context: AuthContext, conn: AsyncConnection[Any], params: dict[str, Any], aud: str) -> NewUser:
    """Validate the attributes in GoTrue's order and build the row to insert."""
    email, phone = await _unique_contacts(conn, params, aud)
    password_hash = await _password_hash(context, conn, params)
    user_id = _chosen_id(params)
    providers = [name for name, value in (("email", email), ("phone", phone)) if value]
    app_metadata = merge_metadata({"provider": providers[0], "providers": providers}, params.get("app_metadata", {}))
    user_metadata = dict(params.get("user_metadata", {}))
    if params.get("email_confirm"):
        user_metadata["email_verified"] = True
    ban = parse_ban_duration(params["ban_duration"]) if "ban_duration" in params else timedelta(0)
    return NewUser(
        email=email,
        phone=phone,
        password_hash=password_hash,
        aud=aud,
        role=(params.get("role") or "authenticated").strip(),
        app_metadata=app_metadata,
        user_metadata=user_metadata,
        email_confirmed=bool(params.get("email_confirm")),
        phone_confirmed=bool(params.get("phone_confirm")),
        banned_until=_ban_end(ban),
        id=user_id,
    )


def _chosen_id(params: dict[str, Any]) -> uuid.UUID:
    """The ``id`` the caller asked for (a non-nil UUID), else a fresh one."""
    if "id" not in params:
        return uuid.uuid4()
    user_id = parse_uuid(params["id"])
    if user_id is None:
        raise bad_request("validation_failed", "ID must conform to the uuid v4 format")
    if user_id.int == 0:
        raise bad_request("validation_failed", "ID cannot be a nil uuid")
    return user_id


async def _unique_contacts(
    conn: AsyncConnection[Any], params: dict[str, Any], aud: str
) -> tuple[str | None, str | None]:
    email = validate_email(params["email"]) if params.get("email") else None
    phone = validate_phone(params["phone"]) if params.get("phone") else None
    if email is None and phone is None:
        raise bad_request("validation_failed", "Cannot create a user without either an email or phone")
    if email is not None and await email_taken(conn, email, aud):
        raise unprocessable("email_exists", "A user with this email address has already been registered")
    if phone is not None and await phone_taken(conn, phone, aud):
        raise unprocessable("phone_exists", "Phone number already registered by another user")
    return email, phone


async def _password_hash(context: AuthContext, conn: AsyncConnection[Any], params: dict[str, Any]) -> str:
    """The bcrypt hash to store: of ``password``, a given ``password_hash``, or a random 64-character password."""
    if "password" in params and params.get("password_hash"):
        raise bad_request("validation_failed", "Only a password or a password hash should be provided")
    if params.get("password_hash"):
        if not params["password_hash"].startswith(_BCRYPT_HASH_PREFIXES) or len(params["password_hash"]) != 60:
            raise internal("Error creating user")
        return str(params["password_hash"])
    password = params.get("password") or secrets.token_urlsafe(48)
    if len(password.encode()) > MAX_PASSWORD_LENGTH:
        raise bad_request("validation_failed", "bcrypt: password length exceeds 72 bytes")
    return await hash_password(conn, password, context.config.bcrypt_cost)


def _ban_end(ban: timedelta) -> datetime | None:
    return datetime.now(timezone.utc) + ban if ban else None


async def _target(conn: AsyncConnection[Any], request: Request) -> User:
    """The user named in the path: 404 ``validation_failed`` for a non-UUID, 404 ``user_not_found``."""
    user_id = parse_uuid(request.path_params["user_id"])
    if user_id is None:
        raise not_found("validation_failed", "user_id must be an UUID")
    user = await find_by_id(conn, user_id)
    if user is None:
        raise not_found("user_not_found", "User not found")
    return user


async def get_user(context: AuthContext, request: Request) -> Response:
    async with context.db.admin() as conn:
        await require_admin(context, request, conn)
        user = await _target(conn, request)
    return json_response(user_json(user))


async def update_user_endpoint(context: AuthContext, request: Request) -> Response:
    """``PUT /admin/users/{id}``: the same attributes as create; a new password ends all sessions."""
    raw = await read_body(request)
    async with context.db.admin() as conn:
        await require_admin(context, request, conn)
        user = await _target(conn, request)
        params = decode_body(raw, ADMIN_USER_FIELDS)
        _validate_update(params)
        try:
            await _apply_update(context, conn, user, params)
        except psycopg.Error as error:
            raise database_failure(error, "Error updating user") from error
        updated = await find_by_id(conn, user.id)
    assert updated is not None
    return json_response(user_json(updated))


def _validate_update(params: dict[str, Any]) -> None:
    if params.get("email"):
        params["email"] = validate_email(params["email"])
    if params.get("phone"):
        params["phone"] = validate_phone(params["phone"])
    if "ban_duration" in params:
        params["ban"] = parse_ban_duration(params["ban_duration"])
    if "password" in params:
        check_password_strength(params["password"])


async def _apply_update(context: AuthContext, conn: AsyncConnection[Any], user: User, params: dict[str, Any]) -> None:
    if "password" in params:
        password = params["password"]
        hashed = await hash_password(conn, password, context.config.bcrypt_cost) if password else None
        await update_user(conn, user.id, {"encrypted_password": hashed})
        await log_out(conn, user.id, None, "global")
    changes: dict[str, Any] = {}
    if params.get("role"):
        changes["role"] = params["role"].strip()
    metadata = user.user_metadata
    if params.get("email_confirm"):
        changes["email_confirmed_at"] = NOW
        metadata = merge_metadata(metadata, {"email_verified": True})
    if params.get("phone_confirm"):
        changes["phone_confirmed_at"] = NOW
    if params.get("email"):
        await set_contact(conn, user.id, "email", params["email"], verified=bool(params.get("email_confirm")))
    if params.get("phone"):
        await set_contact(conn, user.id, "phone", params["phone"], verified=bool(params.get("phone_confirm")))
    if "app_metadata" in params:
        changes["raw_app_meta_data"] = merge_metadata(user.app_metadata, params["app_metadata"])
    if "user_metadata" in params or params.get("email_confirm"):
        changes["raw_user_meta_data"] = merge_metadata(metadata, params.get("user_metadata", {}))
    if "ban" in params:
        changes["banned_until"] = _ban_end(params["ban"])
    await update_user(conn, user.id, changes)


async def delete_user_endpoint(context: AuthContext, request: Request) -> Response:
    """``DELETE /admin/users/{id}``: hard delete (cascading) or, with ``should_soft_delete``, GoTrue's soft one."""
    raw = await read_body(request)
    async with context.db.admin() as conn:
        await require_admin(context, request, conn)
        user = await _target(conn, request)
        soft = bool(decode_body(raw, {"should_soft_delete": bool}).get("should_soft_delete")) if raw else False
        try:
            await _delete(conn, user, soft=soft)
        except psycopg.Error as error:
            raise database_failure(error, "Database error deleting user") from error
    return json_response({})


async def _delete(conn: AsyncConnection[Any], user: User, *, soft: bool) -> None:
    if not soft:
        await delete_user(conn, user.id)
    elif user.deleted_at is None:
        await soft_delete_user(conn, user)


__all__ = ["create_user", "delete_user_endpoint", "get_user", "list_users_endpoint", "update_user_endpoint"]
