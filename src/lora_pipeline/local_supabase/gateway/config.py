"""Gateway configuration (written to a 0600 JSON file when the gateway runs in its own process)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class GatewayConfig(BaseModel):
    """Everything the gateway needs; secrets included, so never log it."""

    model_config = ConfigDict(frozen=True)

    host: str = "127.0.0.1"
    port: int
    jwt_secret: str = Field(repr=False)
    anon_key: str = Field(repr=False)
    service_role_key: str = Field(repr=False)
    publishable_key: str | None = Field(default=None, repr=False)
    """Optional opaque ``sb_publishable_...`` key mapped to the anon role."""
    secret_key: str | None = Field(default=None, repr=False)
    """Optional opaque ``sb_secret_...`` key mapped to the service role."""
    authenticator_dsn: str = Field(repr=False)
    admin_dsn: str = Field(repr=False)
    storage_root: Path
    db_max_rows: int = 1000
    global_file_size_limit: int = 5 * 1024**3
    """Storage's global upload cap; bucket limits apply below it."""
    max_body_bytes: int = 64 * 1024 * 1024
    """Largest request body accepted by /rest/v1 and /auth/v1 (uploads stream to disk instead)."""
    bcrypt_cost: int = 8
    """bcrypt cost of /auth/v1 password hashes; Supabase uses 10 (~85 ms a hash here), tests want it cheap."""

    @property
    def public_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json())
        path.chmod(0o600)

    @classmethod
    def read(cls, path: Path) -> GatewayConfig:
        return cls.model_validate(json.loads(path.read_text()))


__all__ = ["GatewayConfig"]
