"""pytest plugin (registered as ``pytest11`` entry point ``lora_pipeline``).

Fixtures:

- ``local_supabase`` (session): a running :class:`~lora_pipeline.local_supabase.LocalSupabase`.
- ``service_client`` / ``anon_client``: :class:`~lora_pipeline.LoraPipeline` with the service role / anon key.
- ``user_factory``: ``user_factory(email=None)`` creates a fresh signed-in user and returns
  ``(LocalUser, LoraPipeline)``.
- ``fake_runpod``: a :class:`~lora_pipeline.testing.fake_runpod.FakeRunPod` the real runpod SDK talks to.

Isolation: before every test that uses ``local_supabase`` (directly or through the fixtures above) the stack is
reset (rows of lora-pipeline's tables, users and stored objects removed), so tests never see each other's data.
Set ``LORA_PIPELINE_TEST_NO_RESET=1`` to keep data for debugging. Nothing starts unless a test asks for it.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from lora_pipeline import LoraPipeline
    from lora_pipeline.local_supabase import LocalSupabase, LocalUser

_STACK_FIXTURES = {"local_supabase", "service_client", "anon_client", "user_factory"}


@pytest.fixture(scope="session")
def local_supabase() -> Iterator[LocalSupabase]:
    """One embedded stack for the whole test session."""
    from lora_pipeline.local_supabase import LocalSupabase

    stack = LocalSupabase.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(autouse=True)
def _lora_pipeline_isolation(request: pytest.FixtureRequest) -> None:
    # Reset BEFORE the test: a test that uses the stack starts clean whatever ran earlier (also suites that
    # reach the stack indirectly through their own session fixtures).
    if not os.environ.get("LORA_PIPELINE_TEST_NO_RESET") and _STACK_FIXTURES & set(request.fixturenames):
        request.getfixturevalue("local_supabase").reset()


@pytest.fixture
def service_client(local_supabase: LocalSupabase) -> Iterator[LoraPipeline]:
    client = local_supabase.client()
    yield client
    client.close()


@pytest.fixture
def anon_client(local_supabase: LocalSupabase) -> Iterator[LoraPipeline]:
    from lora_pipeline import Role

    client = local_supabase.client(role=Role.ANON)
    yield client
    client.close()


_counter = itertools.count(1)


@pytest.fixture
def user_factory(local_supabase: LocalSupabase) -> Iterator[Callable[..., tuple[LocalUser, LoraPipeline]]]:
    clients: list[Any] = []

    def make(
        email: str | None = None,
        password: str = "local-password-123",  # noqa: S107 - local test stack only
    ) -> tuple[LocalUser, LoraPipeline]:
        address = email or f"user{next(_counter)}-{uuid.uuid4().hex[:8]}@example.test"
        user = local_supabase.create_user(address, password)
        client = local_supabase.client(user=user)
        clients.append(client)
        return user, client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def fake_runpod() -> Iterator[Any]:
    """A fake RunPod GraphQL API on loopback; the runpod SDK talks to it (RUNPOD_API_BASE_URL) for the test."""
    from lora_pipeline.testing.fake_runpod import FakeRunPod

    with FakeRunPod() as fake, fake.environment():
        yield fake
