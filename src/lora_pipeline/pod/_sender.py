"""The reporter's sender thread: spool records -> ``rpc/ingest_metrics`` -> acknowledgements.

It reads unacknowledged records in order, coalesces them into requests of at most ``batch_size`` points /
``max_request_bytes``, and keeps up to ``SendPolicy.max_in_flight`` requests in flight, but only for batches whose
step ranges are disjoint: two writes to one step are never reordered, so the last write still wins. The spool is
acknowledged only up to the oldest batch not yet confirmed; after a failure everything from there is sent again
(harmless: the ingest upserts). It also delivers the latest progress as a heartbeat.

Failures go through the circuit breaker; a permanent one (token refused) stops sending for good, and the spool
keeps everything for ``lora-pipeline metrics sync``.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .._exceptions import APIError, LoraPipelineError
from .._logging import get_logger
from ._delivery import CircuitBreaker, CircuitState, Delivered, Delivery, is_permanent
from ._workers import Progress
from .spool import Spool, SpoolBatch

log = get_logger("pod.metrics")


@dataclass
class SenderState:
    sent: int = 0
    retries: int = 0
    rejected: int = 0
    last_error: str | None = None
    cancel_requested: bool = False
    gave_up: bool = False


@dataclass(frozen=True)
class _Flight:
    batch: SpoolBatch
    future: Future[Delivered]


class Sender:
    """Sends the spool's unacknowledged records in order (one coordinating thread, a small request pool)."""

    def __init__(
        self,
        spool: Spool,
        delivery: Delivery,
        breaker: CircuitBreaker,
        progress: Progress,
        *,
        batch_size: int,
        flush_interval: float,
        progress_interval: float,
        session_start: int,
        spooled: Callable[[], int],
        on_permanent: Callable[[LoraPipelineError], None],
    ) -> None:
        self.spool, self.delivery, self.breaker, self.progress = spool, delivery, breaker, progress
        self.wake = threading.Event()
        self.state = SenderState()
        self.cursor = spool.acked
        """Everything before this offset is acknowledged."""
        self.heartbeat_progress: dict[str, Any] = {}
        self.replayed = spool.pending()[1]
        """Points that were in the spool, unacknowledged, when this reporter started: sent at once."""
        self._read_at = self.cursor  # past the batches in flight
        self._in_flight: deque[_Flight] = deque()
        self._pool = ThreadPoolExecutor(max(1, delivery.policy.max_in_flight), thread_name_prefix="lora-metrics-post")
        self._heartbeat_due = False
        self._batch_size, self._flush_interval = batch_size, flush_interval
        self._progress_interval = progress_interval
        self._session_start = session_start
        self._spooled = spooled
        self._on_permanent = on_permanent
        self._last_send = self._last_heartbeat = time.monotonic()
        self.thread = threading.Thread(target=self._run, name="lora-metrics-send", daemon=True)

    def set_progress(self, values: dict[str, Any]) -> None:
        self.heartbeat_progress.update(values)
        if not self._heartbeat_due:
            self._heartbeat_due = True
            self.wake.set()

    def has_pending(self) -> bool:
        return self.cursor < self.spool.end

    def unsent(self) -> int:
        """Points in the spool not yet acknowledged (or rejected)."""
        return max(0, self.replayed + self._spooled() - self.state.sent - self.state.rejected)

    def stop(self) -> None:
        """Drop requests not started yet (in-flight ones end with the client or their timeout)."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    # -- the loop -------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self.progress.halt.is_set():
            self.wake.wait(self._idle_seconds())
            self.wake.clear()
            try:
                self._send_due()
                self._heartbeat_if_due()
            except Exception as error:  # never let the thread die: the spool still has everything
                log.exception("metrics sender failed; retrying next cycle")
                self.state.last_error = f"{type(error).__name__}: {error}"
                self._abandon_flights()

    def _idle_seconds(self) -> float:
        """Sleep until the next send or heartbeat is due; the writer's wake-up ends it early."""
        now = time.monotonic()
        waits = [60.0]
        if self.has_pending() and not self.state.gave_up and self.breaker.state is not CircuitState.STOPPED:
            waits.append(self.breaker.wait_seconds() or self._flush_interval - (now - self._last_send))
        if self._heartbeat_due:
            waits.append(self._progress_interval - (now - self._last_heartbeat))
        return max(0.01, min(waits))

    def _should_send(self) -> bool:
        if self._read_at >= self.spool.end or self.progress.halt.is_set() or self.state.gave_up:
            return False
        closing = self.progress.closing.is_set()
        if not self.breaker.allows(probe_now=closing):
            return False
        return (
            closing
            or self.cursor < self._session_start
            or self.progress.done_logged < self.progress.flush_target
            or self.unsent() >= self._batch_size
            or time.monotonic() - self._last_send >= self._flush_interval
        )

    def _send_due(self) -> None:
        while True:
            self._dispatch()
            if not self._in_flight or not self._settle_oldest():
                return

    def _dispatch(self) -> None:
        """Start requests for the next batches, up to ``max_in_flight`` with disjoint step ranges."""
        policy = self.delivery.policy
        while len(self._in_flight) < max(1, policy.max_in_flight) and self._should_send():
            batch = self.spool.next_batch(
                self._read_at, max_points=self._batch_size, max_bytes=policy.max_request_bytes
            )
            if not batch.records:  # only unreadable lines were left: they were reported, move past them
                if self._in_flight:
                    return
                self._read_at = self.cursor = batch.end
                self.spool.ack(batch.end)
                self.progress.notify()
                continue
            if any(batch.overlaps(flight.batch) for flight in self._in_flight):
                return
            future = self._submit(batch)
            self._in_flight.append(_Flight(batch, future))
            self._read_at = batch.end
            self._last_send = time.monotonic()

    def _submit(self, batch: SpoolBatch) -> Future[Delivered]:
        try:
            return self._pool.submit(self.delivery.send, batch.points, deadline=self.progress.deadline)
        except RuntimeError:
            # At interpreter exit concurrent.futures refuses new work before atexit hooks run (so before
            # finish()); send on this thread instead, one request at a time.
            inline: Future[Delivered] = Future()
            try:
                inline.set_result(self.delivery.send(batch.points, deadline=self.progress.deadline))
            except BaseException as error:  # handed to _settle_oldest like a pooled failure
                inline.set_exception(error)
            return inline

    def _settle_oldest(self) -> bool:
        """Wait for the oldest request; acknowledge it, or fail and rewind to it. Returns whether to go on."""
        flight = self._in_flight[0]
        try:
            delivered = flight.future.result()
        except LoraPipelineError as error:
            self._abandon_flights()
            self._failed(error)
            return False
        self._in_flight.popleft()
        batch = flight.batch
        logged = sum(r.logged for r in batch.records if r.start >= self._session_start)
        self._acknowledge(batch.end, batch.count, logged, delivered.rejected)
        return True

    def _abandon_flights(self) -> None:
        """Let the other requests finish (their points are sent again from the failed batch on)."""
        for flight in self._in_flight:
            try:
                flight.future.result()
            except Exception:  # noqa: S112 - the batch is re-sent anyway
                continue
        self._in_flight.clear()
        self._read_at = self.cursor

    def _acknowledge(self, end: int, count: int, logged: int, rejected: int) -> None:
        if self.breaker.state is not CircuitState.CLOSED:
            log.info("metrics delivery recovered; sending the %d points kept meanwhile", self.unsent())
        self.breaker.succeeded()
        self.cursor = end
        try:
            self.spool.ack(end)
        except OSError as error:  # a lost ack only means a harmless re-send later
            log.warning("could not record the metrics spool acknowledgement: %s", error)
        self.state.sent += count - rejected
        self.state.rejected += rejected
        self.progress.add_done(logged)

    def _failed(self, error: LoraPipelineError) -> None:
        self.state.last_error = str(error).splitlines()[0]
        if is_permanent(error):
            self.breaker.stop()
            self.state.gave_up = True
            self._on_permanent(error)
        else:
            was_closed = self.breaker.state is CircuitState.CLOSED
            self.breaker.failed()
            if was_closed:
                log.warning(
                    "metrics delivery failing (%s); points stay in the spool and are retried", self.state.last_error
                )
            if self.progress.closing.is_set():
                self.state.gave_up = True
        self.progress.notify()

    def _heartbeat_if_due(self) -> None:
        if not self._heartbeat_due or time.monotonic() - self._last_heartbeat < self._progress_interval:
            return
        self._last_heartbeat = time.monotonic()
        if self.breaker.state in (CircuitState.OPEN, CircuitState.STOPPED):
            return
        self._heartbeat_due = False
        try:
            reply = self.delivery.client.heartbeat(dict(self.heartbeat_progress), timeout=self.delivery.policy.timeout)
        except APIError as error:
            log.debug("progress heartbeat failed: %s", error)
            return
        self.state.cancel_requested = bool(reply.get("cancel_requested"))


__all__ = ["Sender", "SenderState"]
