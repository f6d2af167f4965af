"""Kong's key rules in front of Supabase (research/supabase-stack.md §2).

- ``/rest/v1`` and ``/auth/v1`` need an ``apikey`` header or ``?apikey=`` equal to a known project key: missing
  -> 401 "No API key found in request", unknown -> 401 "Invalid API key". ``/storage/v1`` needs none.
- The bearer token forwarded upstream: an ``Authorization`` that is not ``Bearer sb_...`` passes through;
  else an opaque secret key becomes the service-role JWT, a publishable key the anon JWT; else
  ``Bearer <apikey>``.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from .config import GatewayConfig
from .errors import gateway_error


def api_key_of(request: Request) -> str | None:
    return request.headers.get("apikey") or request.query_params.get("apikey")


def check_api_key(request: Request, config: GatewayConfig) -> Response | None:
    """``None`` when the request carries a known key, else Kong's 401."""
    key = api_key_of(request)
    if not key:
        return gateway_error(401, "No API key found in request", "No `apikey` request header or url param was found.")
    known = {config.anon_key, config.service_role_key, config.publishable_key, config.secret_key}
    if key not in known:
        return gateway_error(401, "Invalid API key", "Double check your Supabase `anon` or `service_role` API key.")
    return None


def bearer_token(request: Request, config: GatewayConfig) -> str | None:
    """The JWT the upstream service sees, or ``None`` when there is none (anonymous)."""
    header = request.headers.get("authorization")
    if header is not None and header.strip() == "":
        header = None
    if header and not header.startswith("Bearer sb_"):
        scheme, _, token = header.partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None
    key = api_key_of(request)
    if key and key == config.secret_key:
        return config.service_role_key
    if key and key == config.publishable_key:
        return config.anon_key
    return key


__all__ = ["api_key_of", "bearer_token", "check_api_key"]
