"""The ASGI app mounted at ``/auth/v1``: Kong's key check, then GoTrue's routes.

Kong lets ``/verify``, ``/callback``, ``/authorize`` and ``/.well-known/jwks.json`` through without an apikey;
every other path (unknown ones included) needs a known key first. Handlers raise
:class:`~.errors.AuthFailure`; this module renders it, and turns any other exception into GoTrue's generic
500 (logged to gateway.log, never sent to the client).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from ..apikey import check_api_key
from ..fault_log import log_fault
from ..state import GatewayState
from . import account, admin, grants
from .errors import AuthFailure, OAuthFailure, render, render_unexpected
from .guards import AuthContext

log = logging.getLogger("lora_pipeline.gateway.auth")

Handler = Callable[[AuthContext, Request], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
OPEN_PREFIXES = ("/verify", "/callback", "/authorize")
OPEN_PATHS = ("/.well-known/jwks.json",)


class AuthService:
    """GoTrue's endpoints behind Kong's key rules (research/supabase-stack.md §2, §6)."""

    def __init__(self, state: GatewayState) -> None:
        self.context = AuthContext(config=state.config, db=state.db)
        self.router = Router(routes=self._routes(), default=_not_found)

    def _routes(self) -> list[Route]:
        table: list[tuple[str, Handler, list[str]]] = [
            ("/signup", grants.signup, ["POST"]),
            ("/token", grants.token, ["POST"]),
            ("/user", account.get_user, ["GET"]),
            ("/user", account.update_user_endpoint, ["PUT"]),
            ("/logout", account.logout, ["POST"]),
            ("/settings", account.settings, ["GET"]),
            ("/health", account.health, ["GET"]),
            ("/.well-known/jwks.json", account.jwks, ["GET"]),
            ("/admin/users", admin.list_users_endpoint, ["GET"]),
            ("/admin/users", admin.create_user, ["POST"]),
            ("/admin/users/{user_id}", admin.get_user, ["GET"]),
            ("/admin/users/{user_id}", admin.update_user_endpoint, ["PUT"]),
            ("/admin/users/{user_id}", admin.delete_user_endpoint, ["DELETE"]),
        ]
        return [Route(path, self._endpoint(handler), methods=methods) for path, handler, methods in table]

    def _endpoint(self, handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(self.context, request)
            except (AuthFailure, OAuthFailure) as failure:
                if isinstance(failure, AuthFailure) and failure.status >= 500:
                    log_fault(log, failure, "auth: %s %s: %s", request.method, request.url.path, failure.message)
                return render(request, failure)
            except Exception as error:
                log_fault(log, error, "auth: unhandled error in %s %s", request.method, request.url.path)
                return render_unexpected(request)

        return endpoint

    async def startup(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _is_open(_service_path(scope)):
            refusal = check_api_key(Request(scope), self.context.config)
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.router(scope, receive, send)


def _service_path(scope: Scope) -> str:
    """The path below the mount point (``/user`` for ``/auth/v1/user``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or any(path == prefix or path.startswith(prefix + "/") for prefix in OPEN_PREFIXES)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """Go's router answer for an unknown path."""
    await PlainTextResponse("404 page not found\n", status_code=404)(scope, receive, send)


__all__ = ["AuthService"]
