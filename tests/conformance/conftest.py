"""Fixtures for the gateway conformance suite (research/supabase-stack.md §9).

The suite drives the UNMODIFIED supabase client. It runs against the embedded stack, or against a real
Supabase project when LORA_PIPELINE_TEST_SUPABASE_URL, _ANON_KEY, _SERVICE_ROLE_KEY and _DB_URL are set.

Every test that takes ``sb`` runs twice, with the sync and the async supabase client:
``sb.run(lambda client: client.table("t").select("*"))`` executes the builder (``.execute()``) or awaits
the coroutine, so one test body covers both flavours.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest

_ENV = "LORA_PIPELINE_TEST_SUPABASE_"


@dataclass
class Target:
    """Where the conformance suite runs."""

    url: str
    anon_key: str
    service_role_key: str
    db_url: str
    is_local: bool
    stack: Any = None

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run SQL as the database owner (setting up tables and policies for a test)."""
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def create_user(self, email: str | None = None, password: str = "conformance-pass-123") -> dict[str, Any]:
        """Create a confirmed user through the admin API and sign it in; returns the session JSON."""
        email = email or f"conf-{uuid.uuid4().hex[:10]}@example.test"
        admin = httpx.post(
            f"{self.url}/auth/v1/admin/users",
            json={"email": email, "password": password, "email_confirm": True},
            headers={"apikey": self.service_role_key, "Authorization": f"Bearer {self.service_role_key}"},
            timeout=30,
        )
        assert admin.status_code == 200, admin.text
        session = httpx.post(
            f"{self.url}/auth/v1/token",
            params={"grant_type": "password"},
            json={"email": email, "password": password},
            headers={"apikey": self.anon_key},
            timeout=30,
        )
        assert session.status_code == 200, session.text
        return dict(session.json()) | {"password": password, "email": email}


def _real_target() -> Target | None:
    names = ("URL", "ANON_KEY", "SERVICE_ROLE_KEY", "DB_URL")
    values = {n: os.environ.get(_ENV + n) for n in names}
    if not all(values.values()):
        return None
    return Target(
        values["URL"] or "",
        values["ANON_KEY"] or "",
        values["SERVICE_ROLE_KEY"] or "",
        values["DB_URL"] or "",
        is_local=False,
    )


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Target:
    real = _real_target()
    if real is not None:
        return real
    stack = request.getfixturevalue("local_supabase")
    return Target(stack.url, stack.anon_key, stack.service_role_key, stack.db_url, is_local=True, stack=stack)


@pytest.fixture
def local_only(target: Target) -> Target:
    """For checks that need the embedded stack's internals (skipped against a real project)."""
    if not target.is_local:
        pytest.skip("inspects the embedded stack's internals")
    return target


@pytest.fixture(scope="session")
def _loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


class Flavoured:
    """Builds sync or async supabase clients and runs calls on them the same way."""

    def __init__(self, flavour: str, target: Target, loop: asyncio.AbstractEventLoop) -> None:
        self.flavour = flavour
        self.target = target
        self.loop = loop

    def client(self, key: str | None = None, *, access_token: str | None = None) -> Any:
        """A fresh supabase client with ``key`` (default anon) and optionally a user's access token."""
        from supabase import AsyncClient, Client
        from supabase.lib.client_options import AsyncClientOptions, SyncClientOptions

        key = key or self.target.anon_key
        headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
        if self.flavour == "sync":
            return Client(self.target.url, key, SyncClientOptions(headers=headers, auto_refresh_token=False))
        return AsyncClient(self.target.url, key, AsyncClientOptions(headers=headers, auto_refresh_token=False))

    @property
    def anon(self) -> Any:
        return self.client()

    @property
    def service(self) -> Any:
        return self.client(self.target.service_role_key)

    def user(self, session: dict[str, Any]) -> Any:
        return self.client(access_token=session["access_token"])

    def run(self, call: Callable[[Any], Any], client: Any = None) -> Any:
        """``call(client)``; executes a request builder, awaits a coroutine (async flavour)."""
        result = call(client if client is not None else self.anon)
        if hasattr(result, "execute"):
            result = result.execute()
        if asyncio.iscoroutine(result):
            return self.loop.run_until_complete(result)
        return result

    def await_(self, value: Any) -> Any:
        return self.loop.run_until_complete(value) if asyncio.iscoroutine(value) else value


@pytest.fixture(params=["sync", "async"])
def sb(request: pytest.FixtureRequest, target: Target, _loop: asyncio.AbstractEventLoop) -> Flavoured:
    return Flavoured(request.param, target, _loop)
