"""Getting one batch of points to the server: retries for transient failures only, a circuit breaker across
batches, and splitting for batches the server finds too large or malformed.

Classes of failure (the error tree of :mod:`lora_pipeline._exceptions`):

- transient (:func:`~lora_pipeline._retry.is_retryable`: connection errors, timeouts incl. 57014, 408, 429
  with ``Retry-After``, 5xx): retried with jittered backoff, bounded by ``max_retries`` and the deadline;
- too large or malformed (:class:`PayloadTooLarge`, :class:`BadRequest`): split in halves; one point the
  server still refuses is *rejected* (reported and skipped, so it cannot block the points behind it);
- anything else (:class:`PermissionDenied` 42501 for a wrong, expired or ended token, 401, 404): permanent.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_any
from tenacity.stop import stop_base

from .._compat import StrEnum
from .._exceptions import APIError, BadRequest, LoraPipelineError, PayloadTooLarge
from .._retry import is_retryable, retry_delay
from .client import PodClient


@dataclass(frozen=True)
class SendPolicy:
    """How hard the reporter tries. The defaults suit a pod talking to a Supabase region over the internet."""

    timeout: float = 10.0
    """Seconds to wait for one response."""
    max_retries: int = 3
    """Retries of one batch after a transient failure, before the batch waits for the next cycle."""
    failure_threshold: int = 5
    """Batches failed in a row (after their retries) that open the circuit."""
    cool_down: float = 30.0
    """Seconds an open circuit waits before one probe request."""
    max_request_bytes: int = 256 * 1024
    """Approximate size limit of one request body."""
    max_in_flight: int = 2
    """Requests sent concurrently, for batches whose step ranges do not overlap (1: strictly one at a time)."""


class CircuitState(StrEnum):
    CLOSED = "closed"
    """Sending normally."""
    OPEN = "open"
    """Too many failures in a row: not sending until the cool-down ends; points keep going to the spool."""
    HALF_OPEN = "half_open"
    """Cool-down over: the next request is a probe; success closes the circuit, failure opens it again."""
    STOPPED = "stopped"
    """A permanent failure (token wrong, expired or its job ended): no more sending from this reporter."""


class CircuitBreaker:
    """Counts consecutive failed batches; opens after ``threshold`` of them for ``cool_down`` seconds."""

    def __init__(self, threshold: int, cool_down: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.threshold = max(1, threshold)
        self.cool_down = cool_down
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._stopped = False

    @property
    def state(self) -> CircuitState:
        if self._stopped:
            return CircuitState.STOPPED
        if self._opened_at is None:
            return CircuitState.CLOSED
        return CircuitState.OPEN if self.wait_seconds() > 0 else CircuitState.HALF_OPEN

    def allows(self, *, probe_now: bool = False) -> bool:
        """Whether a request may go out now; ``probe_now`` ends a cool-down early (the final flush)."""
        if self._stopped:
            return False
        return probe_now or self.wait_seconds() <= 0

    def wait_seconds(self) -> float:
        """Seconds left in the cool-down (0 when closed or ready to probe)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cool_down - self._clock())

    def succeeded(self) -> None:
        self._failures, self._opened_at = 0, None

    def failed(self) -> None:
        self._failures += 1
        if self._failures >= self.threshold or self._opened_at is not None:
            self._opened_at = self._clock()

    def stop(self) -> None:
        self._stopped = True


@dataclass(frozen=True)
class Delivered:
    """What happened to one batch that is now done with (acknowledged or rejected point by point)."""

    rows_written: int
    rejected: int


class Delivery:
    """Sends encoded batches through a :class:`PodClient` under a :class:`SendPolicy`.

    ``sleep`` waits between retries (the reporter passes an interruptible wait); ``on_retry`` is told of each
    retried failure; ``on_reject`` of each point the server refused on its own.
    """

    def __init__(
        self,
        client: PodClient,
        policy: SendPolicy,
        *,
        sleep: Callable[[float], object] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_retry: Callable[[LoraPipelineError], None] = lambda error: None,
        on_reject: Callable[[bytes, APIError], None] = lambda point, error: None,
    ) -> None:
        self.client = client
        self.policy = policy
        self._sleep = sleep
        self._clock = clock
        self._on_retry = on_retry
        self._on_reject = on_reject

    def send(self, points: bytes, *, deadline: float | None = None) -> Delivered:
        """Send one JSON array of points; split it when the server calls it too large or malformed.

        Raises:
            LoraPipelineError: a transient failure that outlived the retries or the deadline, or a permanent one.
        """
        try:
            return Delivered(self._send_with_retries(points, deadline), 0)
        except (PayloadTooLarge, BadRequest) as error:
            return self._split(points, error, deadline)

    def _split(self, points: bytes, error: APIError, deadline: float | None) -> Delivered:
        items = json.loads(points)
        if len(items) <= 1:
            self._on_reject(points, error)
            return Delivered(0, len(items))
        middle = len(items) // 2
        halves = [_encode(items[:middle]), _encode(items[middle:])]
        results = [self.send(half, deadline=deadline) for half in halves]
        return Delivered(sum(r.rows_written for r in results), sum(r.rejected for r in results))

    def _send_with_retries(self, points: bytes, deadline: float | None) -> int:
        body = self.client.ingest_body(points)
        for attempt in self._retrying(deadline):
            with attempt:
                result = self.client.post(
                    "ingest_metrics", body, timeout=self._attempt_timeout(deadline), max_retries=0
                )
                return int(result or 0)
        raise AssertionError("unreachable")  # pragma: no cover

    def _retrying(self, deadline: float | None) -> Retrying:
        def wait(state: RetryCallState) -> float:
            delay = retry_delay(state)
            return delay if deadline is None else max(0.0, min(delay, deadline - self._clock()))

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, LoraPipelineError):
                self._on_retry(error)

        return Retrying(
            retry=retry_if_exception(is_retryable),
            stop=stop_any(stop_after_attempt(self.policy.max_retries + 1), _StopAt(deadline, self._clock)),
            wait=wait,
            sleep=self._pause,
            before_sleep=before_sleep,
            reraise=True,
        )

    def _pause(self, seconds: float) -> None:
        self._sleep(seconds)

    def _attempt_timeout(self, deadline: float | None) -> float:
        if deadline is None:
            return self.policy.timeout
        return max(0.05, min(self.policy.timeout, deadline - self._clock()))


class _StopAt(stop_base):
    """Stop retrying once the deadline (of ``finish()``) has come."""

    def __init__(self, deadline: float | None, clock: Callable[[], float]) -> None:
        self.deadline, self.clock = deadline, clock

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.deadline is not None and self.clock() >= self.deadline - 0.05


def is_permanent(error: BaseException) -> bool:
    """A failure that repeating cannot fix: a refused token (42501/401/403), a missing function (404)..."""
    return not is_retryable(error) and not isinstance(error, (PayloadTooLarge, BadRequest))


def _encode(items: list[object]) -> bytes:
    return json.dumps(items, separators=(",", ":")).encode()


__all__ = ["CircuitBreaker", "CircuitState", "Delivered", "Delivery", "SendPolicy", "is_permanent"]
