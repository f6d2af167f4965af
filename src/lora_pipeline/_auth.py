"""Password sign-in and token refresh against Supabase Auth (``/auth/v1/token``), for role USER clients.

The request and response handling is written once here; :class:`~lora_pipeline.LoraPipeline` performs it
with a blocking httpx client and :class:`~lora_pipeline.AsyncLoraPipeline` with an async one. The tokens are
registered with the log redactor the moment they arrive.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from ._error_mapping import error_from_response
from ._exceptions import APIConnectionError, AuthenticationError, ConfigError
from ._logging import register_secret

REFRESH_MARGIN = 60.0
"""Seconds before expiry at which a session counts as stale and is refreshed before the next request."""
_API_VERSION = {"X-Supabase-Api-Version": "2024-01-01"}


@dataclass(frozen=True)
class Session:
    """A signed-in user's tokens. Secret fields stay out of ``repr``."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float
    """Unix time the access token expires."""
    user_id: str
    email: str | None = None

    def stale(self, now: float | None = None, margin: float = REFRESH_MARGIN) -> bool:
        """Whether the access token expires within ``margin`` seconds."""
        return (now if now is not None else time.time()) >= self.expires_at - margin


@dataclass(frozen=True)
class TokenRequest:
    """One call to ``/auth/v1/token``: what to send, built without I/O."""

    url: str
    params: dict[str, str]
    headers: dict[str, str]
    body: dict[str, str]
    what: str


def password_request(url: str, anon_key: str, email: str, password: str) -> TokenRequest:
    """The password grant for ``email``."""
    if not email or "@" not in email:
        raise ConfigError(f"sign_in needs an email address, got {email!r}", argument="email")
    if not password:
        raise ConfigError("sign_in needs the user's password", argument="password")
    return TokenRequest(
        url=f"{url}/auth/v1/token",
        params={"grant_type": "password"},
        headers={"apikey": anon_key, **_API_VERSION},
        body={"email": email, "password": password},
        what=f"sign in {email}",
    )


def refresh_request(url: str, anon_key: str, session: Session) -> TokenRequest:
    """The refresh-token grant that renews ``session``."""
    if not session.refresh_token:
        raise ConfigError("this session has no refresh token: sign in again with LoraPipeline.sign_in(...)")
    return TokenRequest(
        url=f"{url}/auth/v1/token",
        params={"grant_type": "refresh_token"},
        headers={"apikey": anon_key, **_API_VERSION},
        body={"refresh_token": session.refresh_token},
        what="refresh session",
    )


def session_from(response: httpx.Response, request: TokenRequest, now: float | None = None) -> Session:
    """The session in a token response, or the typed error for a refusal."""
    if response.status_code >= 400:
        error = error_from_response(response, service="auth", resource=request.what)
        if response.status_code in (400, 401) and not isinstance(error, AuthenticationError):
            raise AuthenticationError(
                f"{request.what} refused: {error.raw_message}",
                status=response.status_code,
                code=error.code,
                service="auth",
                suggestion="check the email and password (and that the user confirmed their address)",
            ) from None
        raise error
    payload: dict[str, Any] = response.json()
    access_token = str(payload["access_token"])
    refresh_token = payload.get("refresh_token")
    register_secret(access_token)
    register_secret(refresh_token)
    issued = now if now is not None else time.time()
    expires_at = float(payload.get("expires_at") or issued + float(payload.get("expires_in") or 3600))
    user = payload.get("user") or {}
    return Session(
        access_token=access_token,
        refresh_token=str(refresh_token) if refresh_token else None,
        expires_at=expires_at,
        user_id=str(user.get("id", "")),
        email=user.get("email"),
    )


def send(request: TokenRequest, timeout: float) -> Session:
    """Perform ``request`` with a blocking client."""
    try:
        with httpx.Client(timeout=timeout) as http:
            response = http.post(request.url, params=request.params, headers=request.headers, json=request.body)
    except httpx.HTTPError as error:
        raise APIConnectionError(f"{request.what}: cannot reach {request.url} ({type(error).__name__})") from error
    return session_from(response, request)


async def send_async(request: TokenRequest, timeout: float) -> Session:
    """Perform ``request`` with an async client."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as http:
            response = await http.post(request.url, params=request.params, headers=request.headers, json=request.body)
    except httpx.HTTPError as error:
        raise APIConnectionError(f"{request.what}: cannot reach {request.url} ({type(error).__name__})") from error
    return session_from(response, request)


__all__ = ["REFRESH_MARGIN", "Session", "TokenRequest", "password_request", "refresh_request", "send", "send_async"]
