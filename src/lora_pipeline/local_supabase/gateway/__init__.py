"""The embedded stack's HTTP gateway: /rest/v1 (PostgREST subset), /storage/v1, /auth/v1 behind Kong's key rules.

Rule (DESIGN §9): the gateway translates HTTP into the SQL the real services run, as the caller's role, and
decides nothing about access itself; Postgres does.
"""

from .app import create_app
from .config import GatewayConfig

__all__ = ["GatewayConfig", "create_app"]
