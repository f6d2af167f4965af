"""Fixtures for the RunPod tests: a fresh fake RunPod API per test, with the real SDK pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.testing.fake_runpod import FakeRunPod


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    """A running fake; ``RUNPOD_API_BASE_URL`` and ``runpod.api_key`` point at it for the test only."""
    with FakeRunPod() as server, server.environment():
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    """The pauses the backend asked for (it never really sleeps in these tests)."""
    return []


@pytest.fixture
def make_backend(fake: FakeRunPod, sleeps: list[float]) -> Callable[..., RunPodBackend]:
    """``make_backend(*offers, **options)``: a backend on the fake that records its sleeps.

    GraphQL unless ``transport="rest"`` is passed: these suites pin the GraphQL wire (operation names, literals);
    the REST v2 transport has its own suite (``test_runpod_rest_*.py``).
    """

    def make(*offers: RunPodOffer, **options: Any) -> RunPodBackend:
        options.setdefault("transport", "graphql")
        options.setdefault("timeout", 2.0)
        options.setdefault("sleep", sleeps.append)
        api_key = options.pop("api_key", fake.api_key)
        return RunPodBackend(api_key, list(offers), **options)

    return make
