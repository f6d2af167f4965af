"""Access tokens: minting them for a session, and reading the bearer token of a request as GoTrue does.

Tokens are HS256 with the stack's one secret, so PostgREST and Storage accept them. GoTrue checks the
signature and ``exp`` only (no audience, no issuer, no leeway); every failure is a 403 ``bad_jwt`` whose
message starts ``invalid JWT: unable to parse or verify signature,`` followed by golang-jwt's reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt
from starlette.requests import Request

from ...keys import mint_access_token
from ..apikey import bearer_token
from ..config import GatewayConfig
from .errors import AuthFailure, forbidden
from .sessions import Session
from .users import User

ACCESS_TOKEN_TTL = 3600
ADMIN_ROLES = frozenset({"service_role", "supabase_admin"})
"""GoTrue's default ``GOTRUE_JWT_ADMIN_ROLES``."""
DEFAULT_AUDIENCE = "authenticated"
_STRING_CLAIMS = ("sub", "role", "session_id", "email", "phone")
_PARSE_FAILURE = "invalid JWT: unable to parse or verify signature, "


@dataclass(frozen=True)
class Claims:
    """The verified claims of a request's bearer token."""

    values: dict[str, Any]

    @property
    def subject(self) -> str:
        return str(self.values.get("sub") or "")

    @property
    def role(self) -> str:
        return str(self.values.get("role") or "")

    @property
    def session_id(self) -> str:
        return str(self.values.get("session_id") or "")

    @property
    def audiences(self) -> list[str]:
        audience = self.values.get("aud")
        return [audience] if isinstance(audience, str) else list(audience or [])

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES


def issuer_of(config: GatewayConfig) -> str:
    """``iss`` of user tokens: the project URL plus ``/auth/v1``, as hosted projects and the CLI set it."""
    return f"{config.public_url}/auth/v1"


def issue_access_token(config: GatewayConfig, user: User, session: Session) -> tuple[str, int]:
    """The access token for ``user`` in ``session`` and its expiry (unix seconds)."""
    now = int(time.time())
    token = mint_access_token(
        config.jwt_secret,
        user_id=str(user.id),
        email=user.email,
        phone=user.phone,
        session_id=str(session.id),
        issuer=issuer_of(config),
        ttl=ACCESS_TOKEN_TTL,
        app_metadata=user.app_metadata,
        user_metadata=user.user_metadata,
        role=user.role,
        audience=user.aud,
        is_anonymous=user.is_anonymous,
        authenticated_at=int(session.created_at.timestamp()),
        issued_at=now,
    )
    return token, now + ACCESS_TOKEN_TTL


def request_bearer(request: Request, config: GatewayConfig) -> str:
    """The token GoTrue sees after Kong's rules, or its 401 ``no_authorization``."""
    token = bearer_token(request, config)
    if not token or any(character.isspace() for character in token):
        raise AuthFailure(401, "no_authorization", "This endpoint requires a valid Bearer token")
    return token


def verify(token: str, secret: str) -> Claims:
    """Check signature and expiry; anything else wrong with the token is GoTrue's 403 ``bad_jwt``."""
    try:
        values = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=0,
            options={
                "verify_aud": False,
                "verify_iat": False,
                "verify_iss": False,
                "verify_sub": False,
                "verify_jti": False,
                "require": [],
            },
        )
    except jwt.ExpiredSignatureError:
        raise _bad_jwt("token has invalid claims: token is expired") from None
    except jwt.ImmatureSignatureError:
        raise _bad_jwt("token has invalid claims: token is not valid yet") from None
    except jwt.InvalidSignatureError:
        raise _bad_jwt("token signature is invalid: signature is invalid") from None
    except jwt.InvalidAlgorithmError:
        raise _bad_jwt("token is unverifiable: error while executing keyfunc: unrecognized JWT kid") from None
    except jwt.InvalidTokenError as error:
        raise _bad_jwt(f"token is malformed: {error}") from None
    for name in _STRING_CLAIMS:
        if name in values and not isinstance(values[name], (str, type(None))):
            raise _bad_jwt(f"token is malformed: could not JSON decode claim: {name} must be a string")
    return Claims(values)


def _bad_jwt(reason: str) -> AuthFailure:
    return forbidden("bad_jwt", _PARSE_FAILURE + reason)


def request_audience(request: Request, claims: Claims | None = None) -> str:
    """GoTrue's audience for a request: ``X-JWT-AUD``, else a non-admin token's ``aud``, else the default."""
    header = request.headers.get("x-jwt-aud")
    if header:
        return header
    if claims is not None and not claims.is_admin and claims.audiences and claims.audiences[0]:
        return claims.audiences[0]
    return DEFAULT_AUDIENCE


__all__ = [
    "ACCESS_TOKEN_TTL",
    "ADMIN_ROLES",
    "DEFAULT_AUDIENCE",
    "Claims",
    "issue_access_token",
    "issuer_of",
    "request_audience",
    "request_bearer",
    "verify",
]
