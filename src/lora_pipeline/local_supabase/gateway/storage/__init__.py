"""The gateway's ``/storage/v1`` service: a Supabase Storage API subset over Postgres and local disk.

Access is decided by running Storage's own SQL as the caller's role (DESIGN §9, research §5): the project's
policies on ``storage.objects``/``storage.buckets`` decide, including those that read request headers.
Object bytes live under ``<storage_root>/objects/`` named by version UUIDs (see ``_disk``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from ..state import GatewayState
from ._context import StorageContext
from ._disk import DiskStore
from ._routes import build_routes, not_found
from ._tus_store import TusStore


class StorageService:
    """The ASGI app mounted at ``/storage/v1``; the gateway's lifespan calls :meth:`startup`."""

    def __init__(self, state: GatewayState) -> None:
        config = state.config
        store = DiskStore(config.storage_root / "objects")
        self.context = StorageContext(
            config, state.db, store, _service_claims(config.service_role_key, config.jwt_secret)
        )
        self.tus = TusStore(store)
        self.router = Router(routes=build_routes(self.context, self.tus), redirect_slashes=False, default=not_found)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.router(scope, receive, send)

    async def startup(self) -> None:
        """Drop standard uploads cut off by a crash and resumable ones that expired meanwhile; make the tree
        private (0600/0700) in case an older version wrote it."""
        self.context.store.make_private()
        self.context.store.clear_staging()
        self.tus.sweep_expired()

    async def shutdown(self) -> None:
        """Nothing to release: uploads in progress are on disk and resume after a restart."""


def _service_claims(service_role_key: str, secret: str) -> Mapping[str, Any]:
    """The service key's payload, used for Storage's "super user" transactions."""
    try:
        return dict(jwt.decode(service_role_key, secret, algorithms=["HS256"], options={"verify_exp": False}))
    except jwt.InvalidTokenError:
        return {"role": "service_role"}


def build(state: GatewayState) -> StorageService:
    """The Storage service for ``state`` (also reachable as ``state.services["storage"]``)."""
    service = StorageService(state)
    state.services["storage"] = service
    return service


__all__ = ["StorageService", "build"]
