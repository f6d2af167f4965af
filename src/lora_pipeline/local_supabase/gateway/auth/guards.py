"""Who is calling: GoTrue's ``requireAuthentication`` and ``requireAdminCredentials`` middlewares.

A user endpoint needs a token whose ``sub`` names an existing user and whose ``session_id`` (when present)
names a live session: so a token still valid for PostgREST after logout gets 403 ``session_not_found`` here.
Admin endpoints only look at the token's ``role`` (``service_role``/``supabase_admin``), after the same
session check for tokens that carry one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from starlette.requests import Request

from ...db import Database
from ..config import GatewayConfig
from .errors import bad_request, forbidden
from .params import parse_uuid
from .sessions import Session, find_session
from .tokens import Claims, request_bearer, verify
from .users import User, find_by_id


@dataclass(frozen=True)
class AuthContext:
    """What every Auth handler needs: the gateway configuration and the database pools."""

    config: GatewayConfig
    db: Database


@dataclass(frozen=True)
class Caller:
    """An authenticated user request: verified claims, the user row and its session (if the token has one)."""

    claims: Claims
    user: User
    session: Session | None


def bearer_claims(context: AuthContext, request: Request) -> Claims:
    """The verified claims of the request's bearer token (401 without one, 403 ``bad_jwt`` when invalid)."""
    return verify(request_bearer(request, context.config), context.config.jwt_secret)


async def require_user(context: AuthContext, request: Request, conn: AsyncConnection[Any]) -> Caller:
    """The calling user, or GoTrue's 401/403 for a missing, invalid, orphaned or logged-out token."""
    claims = bearer_claims(context, request)
    user, session = await _load_user_and_session(conn, claims)
    if user.is_banned:
        raise forbidden("user_banned", "User is banned")
    return Caller(claims, user, session)


async def require_admin(context: AuthContext, request: Request, conn: AsyncConnection[Any]) -> Claims:
    """The admin token's claims, or 403 ``not_admin`` "User not allowed" for any other role."""
    claims = bearer_claims(context, request)
    if _names_session(claims):
        _, session = await _load_user_and_session(conn, claims)
        if session is not None and session.expired:
            raise forbidden("session_expired", "Session is no longer valid")
    if not claims.is_admin:
        raise forbidden("not_admin", "User not allowed")
    return claims


def _names_session(claims: Claims) -> bool:
    return bool(claims.session_id) and claims.session_id != str(uuid.UUID(int=0))


async def _load_user_and_session(conn: AsyncConnection[Any], claims: Claims) -> tuple[User, Session | None]:
    if not claims.subject:
        raise forbidden("bad_jwt", "invalid claim: missing sub claim")
    user_id = parse_uuid(claims.subject)
    if user_id is None:
        raise bad_request("bad_jwt", "invalid claim: sub claim must be a UUID")
    user = await find_by_id(conn, user_id)
    if user is None:
        raise forbidden("user_not_found", "User from sub claim in JWT does not exist")
    if not _names_session(claims):
        return user, None
    session_id = parse_uuid(claims.session_id)
    if session_id is None:
        raise forbidden("bad_jwt", "invalid claim: session_id claim must be a UUID")
    session = await find_session(conn, session_id)
    if session is None:
        raise forbidden("session_not_found", "Session from session_id claim in JWT does not exist")
    return user, session


__all__ = ["AuthContext", "Caller", "bearer_claims", "require_admin", "require_user"]
