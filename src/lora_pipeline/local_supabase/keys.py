"""JWTs of the embedded stack: project keys, user access tokens, and verification with PostgREST's errors.

Everything is HS256 with one secret per stack, as a self-hosted Supabase project signs its legacy keys, user
tokens and signed-URL tokens (research/supabase-stack.md §7).
"""

from __future__ import annotations

import secrets
import time
import uuid
from typing import Any

import jwt

ISSUER = "lora-pipeline-local"
TEN_YEARS = 10 * 365 * 24 * 3600
CLOCK_SKEW = 30  # seconds, as PostgREST allows


class JWTError(Exception):
    """A token PostgREST would refuse: ``code`` is PGRST301 (malformed/signature) or PGRST303 (claims)."""

    def __init__(self, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details


def new_jwt_secret() -> str:
    """A fresh signing secret (longer than the 32 characters PostgREST requires)."""
    return secrets.token_urlsafe(48)


def mint_api_key(secret: str, role: str, *, issued_at: int | None = None) -> str:
    """A legacy-style project key (``anon`` or ``service_role``) valid for ten years."""
    now = int(time.time()) if issued_at is None else issued_at
    claims = {"iss": ISSUER, "ref": "local", "role": role, "iat": now, "exp": now + TEN_YEARS}
    return jwt.encode(claims, secret, algorithm="HS256")


def mint_access_token(
    secret: str,
    *,
    user_id: str,
    email: str | None,
    session_id: str | None = None,
    issuer: str = ISSUER,
    ttl: int = 3600,
    app_metadata: dict[str, Any] | None = None,
    user_metadata: dict[str, Any] | None = None,
    role: str = "authenticated",
    phone: str | None = None,
    audience: str = "authenticated",
    is_anonymous: bool = False,
    authenticated_at: int | None = None,
    issued_at: int | None = None,
) -> str:
    """A user access token with the claims Supabase Auth issues, in its order (research §6.2).

    ``authenticated_at`` is the ``amr`` timestamp (when the session signed in; default: now).
    """
    now = int(time.time()) if issued_at is None else issued_at
    claims = {
        "iss": issuer,
        "sub": user_id,
        "aud": audience,
        "exp": now + ttl,
        "iat": now,
        "email": email or "",
        "phone": phone or "",
        "app_metadata": {"provider": "email", "providers": ["email"]} if app_metadata is None else app_metadata,
        "user_metadata": {} if user_metadata is None else user_metadata,
        "role": role,
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": now if authenticated_at is None else authenticated_at}],
        "session_id": session_id or str(uuid.uuid4()),
        "is_anonymous": is_anonymous,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(token: str, secret: str) -> dict[str, Any]:
    """Verify ``token`` and return its claims, raising :class:`JWTError` with PostgREST's code and message."""
    if token == "":
        raise JWTError("PGRST301", "Empty JWT is sent in Authorization header")
    parts = token.split(".")
    if len(parts) != 3:
        raise JWTError("PGRST301", f"Expected 3 parts in JWT; got {len(parts)}")
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=CLOCK_SKEW,
            options={"verify_aud": False, "require": [], "verify_iat": True},
        )
    except jwt.ExpiredSignatureError:
        raise JWTError("PGRST303", "JWT expired") from None
    except jwt.ImmatureSignatureError:
        raise JWTError("PGRST303", "JWT not yet valid") from None
    except jwt.InvalidIssuedAtError:
        raise JWTError("PGRST303", "JWT issued at future") from None
    except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
        raise JWTError(
            "PGRST301", "No suitable key or wrong key type", "None of the keys was able to decode the JWT"
        ) from None
    except jwt.DecodeError as error:
        raise JWTError("PGRST301", f"JWSError: {error}") from None
    except jwt.InvalidTokenError as error:
        raise JWTError("PGRST303", str(error)) from None
    for claim in ("exp", "nbf", "iat"):
        if claim in claims and not isinstance(claims[claim], (int, float)):
            raise JWTError("PGRST303", f"The JWT '{claim}' claim must be a number")
    return claims


__all__ = ["ISSUER", "JWTError", "decode_token", "mint_access_token", "mint_api_key", "new_jwt_secret"]
