"""The ASGI app mounted at ``/auth/v1``: Kong's key check, then GoTrue's routes.

Kong lets ``/verify``, ``/callback``, ``/authorize`` and ``/.well-known/jwks.json`` through without an apikey;
every other path (unknown ones included) needs a known key first. Handlers raise
:class:`~.errors.AuthFailure`; this module renders it, and turns any other exception into GoTrue's generic
500 (logged to gateway.log, never sent to the client). A path the stack does not serve (``/otp``, ``/verify``,
MFA, SSO...) gets GoTrue's JSON error shape, 404 ``not_found`` (405 for a wrong method), never Go's
plain-text ``404 page not found``, so supabase_auth raises its typed ``AuthApiError``. Each route is named
after its handler (the route-table test reads ``route.name``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import psycopg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route, Router
from starlette.types import Receive, Scope, Send

from ..apikey import check_api_key
from ..fault_log import log_fault
from ..state import GatewayState
from . import account, admin, grants, links
from .errors import AuthFailure, OAuthFailure, database_failure, render, render_unexpected
from .guards import AuthContext

log = logging.getLogger("lora_pipeline.gateway.auth")

Handler = Callable[[AuthContext, Request], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]
OPEN_PREFIXES = ("/verify", "/callback", "/authorize")
OPEN_PATHS = ("/.well-known/jwks.json",)
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


class AuthService:
    """GoTrue's endpoints behind Kong's key rules (research/supabase-stack.md §2, §6)."""

    def __init__(self, state: GatewayState) -> None:
        self.context = AuthContext(config=state.config, db=state.db)
        self.router = Router(routes=self._routes())

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
            ("/admin/generate_link", links.generate_link, ["POST"]),
        ]
        routes = [Route(path, self._endpoint(handler), methods=methods) for path, handler, methods in table]
        for route, (_, handler, _) in zip(routes, table, strict=True):
            route.name = f"{handler.__module__.rsplit('.', 1)[-1]}.{handler.__name__}"  # admin.get_user
        return [*routes, Route("/{path:path}", self._unrouted, methods=ALL_METHODS, name="not_implemented")]

    async def _unrouted(self, request: Request) -> Response:
        """GoTrue's JSON error for what the stack does not serve: 405 for a known path, else 404 (never text)."""
        known = any(route.matches(request.scope)[0] == Match.PARTIAL for route in self.router.routes[:-1])
        path = _service_path(request.scope)
        if known:
            failure = AuthFailure(405, "method_not_allowed", f"{request.method} is not allowed on {path}")
        else:
            failure = AuthFailure(404, "not_found", f"{request.method} {path} is not implemented by the local stack")
        return render(request, failure)

    def _endpoint(self, handler: Handler) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(self.context, request)
            except (AuthFailure, OAuthFailure) as failure:
                if isinstance(failure, AuthFailure) and failure.status >= 500:
                    log_fault(log, failure, "auth: %s %s: %s", request.method, request.url.path, failure.message)
                return render(request, failure)
            except psycopg.Error as error:  # a value Postgres refuses is the caller's mistake, anything else ours
                refusal = database_failure(error, "Database error")
                if refusal.status >= 500:
                    log_fault(log, error, "auth: database error in %s %s", request.method, request.url.path)
                return render(request, refusal)
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


__all__ = ["AuthService"]
