"""Database access for the gateway: one transaction per request, run AS the caller's role.

The gateway logs in as ``authenticator`` (NOINHERIT, granted only anon/authenticated/service_role) and, like
PostgREST (research/supabase-stack.md §4.1), starts each request with one ``SELECT set_config(...)`` that sets,
transaction-locally: ``search_path``, the target role's own ``ALTER ROLE ... SET`` settings (so the 3 s / 8 s
statement timeouts apply), ``role``, ``request.jwt.claims``, ``request.method``, ``request.path`` and
``request.headers``. From then on every access decision is Postgres' (grants, RLS, SECURITY DEFINER
functions). The admin pool (superuser) is used only for schema introspection and the Auth service's own tables,
as the real Auth and Storage services have their own privileged database users.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool

SEARCH_PATH = "public, extensions"
_API_ROLES = ("anon", "authenticated", "service_role")


@dataclass(frozen=True)
class RequestIdentity:
    """Who a request runs as, and the request facts policies may read."""

    role: str
    claims: Mapping[str, Any]
    method: str = "GET"
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_settings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PgFailure:
    """A Postgres error, with what PostgREST/Storage need to render it."""

    sqlstate: str
    message: str
    detail: str | None = None
    hint: str | None = None

    @classmethod
    def from_error(cls, error: psycopg.Error) -> PgFailure:
        diag = error.diag
        text = str(error).strip()
        message = diag.message_primary or (text.splitlines()[0] if text else "") or "database error"
        return cls(diag.sqlstate or _client_side_sqlstate(error), message, diag.message_detail, diag.message_hint)


def _client_side_sqlstate(error: psycopg.Error) -> str:
    """psycopg refuses some input before it reaches Postgres (a NUL byte in a text parameter): report the class
    22 error Postgres itself would have raised for it, so callers answer 400 rather than a server error."""
    if isinstance(error, psycopg.DataError):
        return "22021" if "NUL" in str(error) else "22000"
    return "XX000"


class Database:
    """The gateway's two connection pools and the per-request transaction helper."""

    def __init__(self, authenticator_dsn: str, admin_dsn: str, *, max_size: int = 20) -> None:
        self.pool = AsyncConnectionPool(
            authenticator_dsn,
            min_size=2,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True},
            name="authenticator",
        )
        self.admin_pool = AsyncConnectionPool(
            admin_dsn, min_size=1, max_size=5, open=False, kwargs={"autocommit": True}, name="admin"
        )
        self.role_settings: dict[str, list[tuple[str, str]]] = {}

    async def open(self) -> None:
        await self.pool.open(wait=True, timeout=30)
        await self.admin_pool.open(wait=True, timeout=30)
        await self.load_role_settings()

    async def close(self) -> None:
        await self.pool.close()
        await self.admin_pool.close()

    async def load_role_settings(self) -> None:
        """Read ``ALTER ROLE ... SET`` settings of the API roles (re-applied in every transaction)."""
        async with self.admin_pool.connection() as conn:
            rows = await (
                await conn.execute(
                    """select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
                    where s.setdatabase = 0 and r.rolname = any(%s)""",
                    (list(_API_ROLES),),
                )
            ).fetchall()
        settings: dict[str, list[tuple[str, str]]] = {}
        for role, config in rows:
            settings[role] = [tuple(item.split("=", 1)) for item in (config or []) if "=" in item]  # type: ignore[misc]
        self.role_settings = settings

    @asynccontextmanager
    async def transaction(
        self, identity: RequestIdentity, *, read_only: bool = False
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection inside ``BEGIN ... COMMIT`` running as ``identity.role`` with its request settings.

        An exception inside the block rolls the transaction back; psycopg errors propagate to the caller.
        """
        async with self.pool.connection() as conn:
            conn.row_factory = tuple_row  # type: ignore[assignment]
            async with conn.transaction():  # READ COMMITTED, the server default, as PostgREST uses
                names, values = self._settings(identity)
                if read_only:  # one round trip: read-only mode goes with the request settings
                    names, values = ["transaction_read_only", *names], ["on", *values]
                sql = "select " + ", ".join("set_config(%s, %s, true)" for _ in names)
                params: list[str] = []
                for name, value in zip(names, values, strict=True):
                    params += [name, value]
                await conn.execute(sql, params)
                yield conn

    def _settings(self, identity: RequestIdentity) -> tuple[list[str], list[str]]:
        claims = dict(identity.claims)
        claims["role"] = identity.role
        pairs: list[tuple[str, str]] = [("search_path", SEARCH_PATH)]
        pairs += self.role_settings.get(identity.role, [])
        pairs += [
            ("role", identity.role),
            ("request.jwt.claims", json.dumps(claims, separators=(",", ":"))),
            ("request.method", identity.method),
            ("request.path", identity.path),
            (
                "request.headers",
                json.dumps(
                    {k.lower(): v for k, v in identity.headers.items() if k.lower() != "cookie"}, separators=(",", ":")
                ),
            ),
            ("request.cookies", "{}"),
        ]
        pairs += list(identity.extra_settings.items())
        return [p[0] for p in pairs], [p[1] for p in pairs]

    @asynccontextmanager
    async def admin(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A superuser connection in a transaction (schema cache, Auth tables)."""
        async with self.admin_pool.connection() as conn:
            conn.row_factory = tuple_row  # type: ignore[assignment]
            async with conn.transaction():
                yield conn


__all__ = ["SEARCH_PATH", "Database", "PgFailure", "RequestIdentity"]
