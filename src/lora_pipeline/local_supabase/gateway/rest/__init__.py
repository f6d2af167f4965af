"""The gateway's ``/rest/v1`` service: a PostgREST-compatible subset (research/supabase-stack.md §4).

Every request becomes one transaction run as the caller's role with PostgREST's ``request.*`` settings; access
is decided by Postgres (grants, RLS), never here.
"""

from __future__ import annotations

from ..state import GatewayState
from .service import RestService


def build(state: GatewayState) -> RestService:
    """The ASGI app mounted at ``/rest/v1``; its ``startup``/``shutdown`` run in the gateway's lifespan."""
    return RestService(state)


__all__ = ["RestService", "build"]
