"""The gateway's ``/auth/v1`` service: a GoTrue-compatible subset (research/supabase-stack.md §6).

Sign-up, password and refresh-token grants, the user's own ``/user`` and ``/logout``, and the admin user API,
all writing real rows in ``auth.users``/``auth.identities``/``auth.sessions``/``auth.refresh_tokens`` through
the gateway's privileged connection, with HS256 tokens signed by the stack's secret. Kong's apikey rule is
applied in front of it.

Modules: ``service`` (ASGI app, key rule, routing), ``grants`` (sign-up, /token), ``account`` (/user,
/logout, /settings, /health, JWKS), ``admin`` (/admin/users), ``guards`` (who is calling), ``tokens`` (JWTs),
``users`` and ``sessions`` (SQL), ``serialize`` (JSON shapes), ``params`` (bodies, validation), ``errors``.
"""

from __future__ import annotations

from ..state import GatewayState
from .service import AuthService


def build(state: GatewayState) -> AuthService:
    """The ASGI app mounted at ``/auth/v1``; its ``startup``/``shutdown`` run in the gateway's lifespan."""
    return AuthService(state)


__all__ = ["AuthService", "build"]
