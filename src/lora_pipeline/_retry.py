"""The one retry policy (tenacity): what is retried, how long to wait, and for which operations.

Retried: connection failures, client and statement timeouts (408, 57014), 429 (honouring ``Retry-After``) and
5xx. Never retried: anything else (4xx are the caller's to fix), and never an operation that is not idempotent
(the executor passes ``max_retries=0`` for those). Backoff is exponential from 0.5 s to 8 s with jitter.
supabase-py's own PostgREST retries are switched off so that attempts do not multiply.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from ._exceptions import APIError, RateLimited, ServiceUnavailable, Timeout
from ._logging import get_logger

log = get_logger("retry")

INITIAL_DELAY = 0.5
MAX_DELAY = 8.0
_backoff = wait_exponential_jitter(multiplier=INITIAL_DELAY, max=MAX_DELAY, jitter=INITIAL_DELAY)


def is_retryable(error: BaseException) -> bool:
    """True for failures that a repeat of the same idempotent request may fix."""
    if isinstance(error, (ServiceUnavailable, Timeout, RateLimited)):
        return True
    return (isinstance(error, APIError) and error.status in (408, 429)) or (
        isinstance(error, APIError) and error.status is not None and error.status >= 500
    )


def retry_delay(state: RetryCallState) -> float:
    """Seconds before the next attempt: the server's ``Retry-After`` when given, else jittered backoff."""
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RateLimited) and error.retry_after is not None:
        return error.retry_after
    return float(_backoff(state))


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    log.debug("retrying after %s (attempt %d, sleeping %.2fs)", type(error).__name__, state.attempt_number, delay)


def retrying(max_retries: int, *, sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """A tenacity controller for a synchronous idempotent call."""
    return Retrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(max_retries + 1),
        wait=retry_delay,
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )


def async_retrying(max_retries: int, *, sleep: Callable[[float], Awaitable[Any]] | None = None) -> AsyncRetrying:
    """A tenacity controller for an asynchronous idempotent call (``asyncio.sleep`` unless ``sleep`` is given)."""
    if sleep is None:
        import asyncio  # here, not at module level: the pod's reporter imports this module and needs no asyncio

        sleep = asyncio.sleep
    return AsyncRetrying(
        retry=retry_if_exception(is_retryable),
        stop=stop_after_attempt(max_retries + 1),
        wait=retry_delay,
        sleep=sleep,
        before_sleep=_log_retry,
        reraise=True,
    )


__all__ = ["MAX_DELAY", "async_retrying", "is_retryable", "retry_delay", "retrying"]
