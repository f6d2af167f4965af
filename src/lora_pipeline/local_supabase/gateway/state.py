"""Process-wide state shared by the gateway's services."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..db import Database
from .config import GatewayConfig


@dataclass
class GatewayState:
    config: GatewayConfig
    db: Database
    services: dict[str, Any] = field(default_factory=dict)
    """Per-service state (schema cache, storage backend, ...) keyed by service name."""


__all__ = ["GatewayState"]
