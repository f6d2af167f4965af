"""The one retry policy: transient failures only, Retry-After honoured, non-idempotent ops never repeated."""

from __future__ import annotations

import pytest

from lora_pipeline import (
    APIConnectionError,
    BadRequest,
    Conflict,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Timeout,
)
from lora_pipeline._retry import is_retryable, retrying


@pytest.mark.parametrize(
    "error", [APIConnectionError("x"), ServiceUnavailable("x", status=503), Timeout("x"), RateLimited("x", status=429)]
)
def test_transient_errors_are_retried(error: Exception) -> None:
    assert is_retryable(error)


@pytest.mark.parametrize(
    "error",
    [BadRequest("x", status=400), PermissionDenied("x", status=403), Conflict("x", status=409), ValueError("x")],
)
def test_caller_errors_are_not_retried(error: Exception) -> None:
    assert not is_retryable(error)


def test_retry_after_is_used_as_the_delay() -> None:
    sleeps: list[float] = []
    attempts = {"n": 0}

    def flaky() -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise RateLimited("slow down", status=429, retry_after=4.5)
        return "ok"

    for attempt in retrying(3, sleep=sleeps.append):
        with attempt:
            result = flaky()
    assert result == "ok" and sleeps == [4.5, 4.5]


def test_gives_up_after_max_retries_and_reraises_the_typed_error() -> None:
    sleeps: list[float] = []
    with pytest.raises(ServiceUnavailable):
        for attempt in retrying(2, sleep=sleeps.append):
            with attempt:
                raise ServiceUnavailable("down", status=503)
    assert len(sleeps) == 2
    assert all(0 < s <= 8.5 for s in sleeps)


def test_zero_retries_means_one_attempt() -> None:
    calls = []
    with pytest.raises(ServiceUnavailable):
        for attempt in retrying(0, sleep=lambda _: None):
            with attempt:
                calls.append(1)
                raise ServiceUnavailable("down", status=503)
    assert calls == [1]
