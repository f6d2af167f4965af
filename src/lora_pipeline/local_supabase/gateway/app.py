"""The gateway ASGI app: Kong-style routing to the REST, Storage and Auth services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..db import Database
from .config import GatewayConfig
from .errors import gateway_error
from .fault_log import log_fault
from .state import GatewayState

log = logging.getLogger("lora_pipeline.gateway")


class ErrorShield:
    """Turns any unexpected exception into a bare 500: the client never sees a stack trace."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as error:
            log_fault(log, error, "unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                response = JSONResponse({"message": "An internal error occurred", "code": "500"}, status_code=500)
                await response(scope, receive, send)


async def health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def no_route(_: Request) -> Response:
    """Kong's answer for a path no service serves here (``/functions/v1``, ``/realtime/v1``, ``/graphql/v1``)."""
    return gateway_error(404, "no Route matched with those values")


def create_app(config: GatewayConfig) -> Starlette:
    """Build the gateway for ``config``; the database pools open in the app's lifespan."""
    from .auth import build as build_auth
    from .rest import build as build_rest
    from .storage import build as build_storage

    state = GatewayState(config=config, db=Database(config.authenticator_dsn, config.admin_dsn))
    rest, storage, auth = build_rest(state), build_storage(state), build_auth(state)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await state.db.open()
        for service in (rest, storage, auth):
            startup = getattr(service, "startup", None)
            if startup is not None:
                await startup()
        yield
        for service in (rest, storage, auth):
            shutdown = getattr(service, "shutdown", None)
            if shutdown is not None:
                await shutdown()
        await state.db.close()

    routes = [
        Route("/", health),
        Mount("/rest/v1", app=rest),
        Mount("/storage/v1", app=storage),
        Mount("/auth/v1", app=auth),
        Route("/{path:path}", no_route, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = state
    app.add_middleware(ErrorShield)
    return app


__all__ = ["ErrorShield", "create_app"]
