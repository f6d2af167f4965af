"""What the request headers decide before planning: who the caller is (the bearer JWT), what they
``Prefer``, and which schema (``Accept-Profile``/``Content-Profile``) they address (research §4.2-4.3).

The gateway only verifies the token; whether the role exists or may be assumed is Postgres' decision when
``set_config('role', ...)`` runs (a nonexistent role is 22023 -> 401).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request

from ...db import RequestIdentity
from ...keys import JWTError, decode_token
from ..apikey import bearer_token
from ..config import GatewayConfig
from .errors import ApiError
from .schema_cache import EXPOSED_SCHEMAS

ANON_ROLE = "anon"

# -- the caller ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    """The role a request runs as and the JWT claims policies see (``{"role": "anon"}`` without a token)."""

    role: str
    claims: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        """PostgREST's notion for 42501 mapping: any role but the anonymous one."""
        return self.role != ANON_ROLE

    def identity(self, request: Request, path: str) -> RequestIdentity:
        """The transaction settings PostgREST applies: claims, method, path, headers."""
        return RequestIdentity(
            role=self.role,
            claims=self.claims,
            method=request.method,
            path=path,
            headers=dict(request.headers.items()),
        )


def authenticate(request: Request, config: GatewayConfig) -> Caller:
    """The caller of ``request``; a bad token is PGRST301/PGRST303 with ``WWW-Authenticate``."""
    token = bearer_token(request, config)
    if token is None:
        return Caller(ANON_ROLE, {"role": ANON_ROLE})
    try:
        claims = decode_token(token, config.jwt_secret)
    except JWTError as error:
        description = json.dumps(error.message)
        raise ApiError(
            401,
            error.code,
            error.message,
            details=error.details,
            headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description={description}'},
        ) from None
    role = claims.get("role")
    return Caller(role if isinstance(role, str) and role else ANON_ROLE, claims)


# -- Prefer -------------------------------------------------------------------------------------------------------

_PREFERENCE_VALUES = {
    "return": {"minimal", "representation", "headers-only"},
    "count": {"exact", "planned", "estimated"},
    "resolution": {"merge-duplicates", "ignore-duplicates"},
    "missing": {"default", "null"},
    "handling": {"strict", "lenient"},
    "tx": {"commit", "rollback"},
}


@dataclass(frozen=True)
class Preferences:
    """The honoured ``Prefer`` values (everything else is ignored unless ``handling=strict``)."""

    values: dict[str, str]
    max_affected: int | None = None

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    @property
    def count(self) -> str | None:
        return self.values.get("count")

    @property
    def strict(self) -> bool:
        return self.values.get("handling") == "strict"

    def applied(self, *names: str) -> str | None:
        """``Preference-Applied`` for the preferences this request honoured."""
        parts = [f"{n}={self.values[n]}" for n in names if n in self.values]
        if "max-affected" in names and self.max_affected is not None:
            parts.append(f"max-affected={self.max_affected}")
        return ", ".join(parts) or None


def parse_prefer(headers: Headers) -> Preferences:
    values: dict[str, str] = {}
    max_affected: int | None = None
    invalid: list[str] = []
    for header in headers.getlist("prefer"):
        for item in (part.strip() for part in header.split(",")):
            name, _, value = item.partition("=")
            name, value = name.strip(), value.strip()
            if name == "max-affected" and value.lstrip("-").isdigit():
                max_affected = int(value)
            elif value in _PREFERENCE_VALUES.get(name, ()):
                values[name] = value
            elif item and name not in ("timezone", "params"):
                invalid.append(item)
    if invalid and values.get("handling") == "strict":
        raise ApiError(
            400,
            "PGRST122",
            "Invalid preferences given with handling=strict",
            details="Invalid preferences: " + ", ".join(invalid),
        )
    return Preferences(values, max_affected)


# -- profiles ---------------------------------------------------------------------------------------------------


def schema_for(headers: Headers, method: str) -> str:
    """``Accept-Profile`` (GET/HEAD) or ``Content-Profile`` (writes); only exposed schemas -> else 406."""
    header = "accept-profile" if method in ("GET", "HEAD") else "content-profile"
    schema = headers.get(header)
    if schema is None:
        return EXPOSED_SCHEMAS[0]
    if schema not in EXPOSED_SCHEMAS:
        raise ApiError(
            406,
            "PGRST106",
            f"Invalid schema: {schema}",
            hint="Only the following schemas are exposed: " + ", ".join(EXPOSED_SCHEMAS),
        )
    return schema


__all__ = ["ANON_ROLE", "Caller", "Preferences", "authenticate", "parse_prefer", "schema_for"]
