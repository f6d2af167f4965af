"""Key roles: which Postgres role a request runs as, and how to tell what a key really is."""

from __future__ import annotations

import base64
import json

from ._compat import StrEnum


class Role(StrEnum):
    """The identity a client talks to Supabase with. Chosen explicitly; never switched at run time.

    - ``SERVICE``: the service-role key. Bypasses row-level security. Server-side code only.
    - ``ANON``: the anon (publishable) key. Pods use it together with a job token.
    - ``USER``: the anon key plus a signed-in user's access token; RLS scopes every row to that user.
    """

    SERVICE = "service"
    ANON = "anon"
    USER = "user"

    @property
    def postgres_role(self) -> str:
        """The Postgres role requests with this key role run as."""
        return {"service": "service_role", "anon": "anon", "user": "authenticated"}[self.value]


_ROLE_ALIASES = {
    "service": Role.SERVICE,
    "service_role": Role.SERVICE,
    "anon": Role.ANON,
    "user": Role.USER,
    "authenticated": Role.USER,
}


def parse_role(value: str | Role) -> Role | None:
    """``Role`` for a name or alias (``service_role``, ``authenticated``), ``None`` when unknown."""
    if isinstance(value, Role):
        return value
    return _ROLE_ALIASES.get(str(value).strip().lower())


def jwt_claims(token: str) -> dict[str, object] | None:
    """The payload of a JWT, decoded without verifying it; ``None`` when ``token`` is not a JWT.

    Used only to catch keys pasted into the wrong setting, never to make an access decision.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def key_postgres_role(key: str) -> str | None:
    """The Postgres role a project key maps to (``anon`` / ``service_role``), when it can be told."""
    if key.startswith("sb_secret_"):
        return "service_role"
    if key.startswith("sb_publishable_"):
        return "anon"
    claims = jwt_claims(key)
    role = claims.get("role") if claims else None
    return role if isinstance(role, str) else None


__all__ = ["Role", "jwt_claims", "key_postgres_role", "parse_role"]
