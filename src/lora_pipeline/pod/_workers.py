"""The reporter's spool writer thread, and the :class:`Progress` it shares with the sender (:mod:`._sender`).

:class:`SpoolWriter` moves logged rows from memory to the spool every ``spool_interval`` seconds (or at once when
``batch_size`` rows wait, or on flush): merge duplicate steps, encode, cut into request-sized records, append +
fsync. It never touches the network, so an outage cannot make memory grow. Both threads report to
:class:`Progress`, a condition that ``flush()``/``finish()`` wait on.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from .._logging import get_logger
from ._points import Row, chunk_encoded, encode_row, merge_rows
from .spool import Spool

log = get_logger("pod.metrics")


class Progress:
    """What the threads have done, under one condition variable that waiters block on."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.closing = threading.Event()
        """finish() began: spool everything, send what can be sent before ``deadline``, then stop."""
        self.halt = threading.Event()
        """Stop now (interrupts retry sleeps)."""
        self.flush_target = 0
        """flush() asks for every log() call up to this count to be done now."""
        self.deadline: float | None = None
        self.done_logged = 0
        """log() calls of this session that are acknowledged, rejected or dropped: nothing more to do."""

    def notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def add_done(self, logged: int) -> None:
        with self.changed:
            self.done_logged += logged
            self.changed.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout=max(0.0, timeout))


class SpoolWriter:
    """Drains the in-memory buffer into the spool (one thread)."""

    def __init__(
        self,
        buffer: deque[Row],
        spool: Spool,
        progress: Progress,
        *,
        batch_size: int,
        max_bytes: int,
        max_buffer: int,
        interval: float,
        on_spooled: Callable[[], None],
    ) -> None:
        self.buffer = buffer
        self.spool = spool
        self.progress = progress
        self.wake = threading.Event()
        self.spooled = 0
        self.dropped_points = 0
        self.unspooled: deque[tuple[list[str], int, tuple[int, int]]] = deque()
        self.in_hand = 0
        """Rows taken from the buffer and being encoded: neither in the buffer nor in ``unspooled`` yet."""
        """Records not yet on disk: (points, log() calls, step range)."""
        self._batch_size, self._max_bytes, self._max_buffer = batch_size, max_bytes, max_buffer
        self._interval = interval
        self._on_spooled = on_spooled
        self._disk_error_reported = False
        self.thread = threading.Thread(target=self._run, name="lora-metrics-spool", daemon=True)

    def waiting_points(self) -> int:
        return len(self.buffer) + self.in_hand + sum(len(chunk) for chunk, _, _ in self.unspooled)

    def _run(self) -> None:
        while True:
            self.wake.wait(self._interval)
            self.wake.clear()
            try:
                self.write_buffered()
            except Exception:  # a bug here must not end metrics for the rest of training
                log.exception("metrics spool writer failed; retrying next cycle")
            if self.progress.closing.is_set() and not self.buffer:
                self.progress.notify()
                return

    def write_buffered(self) -> None:
        rows: list[Row] = []
        while self.buffer:
            rows.append(self.buffer.popleft())
            self.in_hand += 1
        try:
            self._encode(rows)
        finally:
            self.in_hand = 0
        self._append_unspooled()

    def _encode(self, rows: list[Row]) -> None:
        if rows:
            merged = merge_rows(rows)
            encoded = [encode_row(row) for row in merged]
            chunks = list(chunk_encoded(encoded, max_points=self._batch_size, max_bytes=self._max_bytes))
            first = 0
            for index, chunk in enumerate(chunks):  # the last record carries the calls, so it acks them all
                steps = [row["step"] for row in merged[first : first + len(chunk)]]
                first += len(chunk)
                self.unspooled.append((chunk, len(rows) if index == len(chunks) - 1 else 0, (min(steps), max(steps))))

    def _append_unspooled(self) -> None:
        wrote = 0
        while self.unspooled:
            chunk, logged, steps = self.unspooled[0]
            try:
                self.spool.append(chunk, logged, steps)
            except OSError as error:
                self._on_disk_error(error)
                break
            self.unspooled.popleft()
            wrote += len(chunk)
        if wrote:
            self.spooled += wrote
            self.progress.notify()
            self._on_spooled()

    def _on_disk_error(self, error: OSError) -> None:
        if not self._disk_error_reported:
            self._disk_error_reported = True
            log.error(
                "cannot write the metrics spool %s (%s); keeping up to %d points in memory and retrying",
                self.spool.path,
                error,
                self._max_buffer,
            )
        while self.unspooled and self.waiting_points() > self._max_buffer:
            chunk, logged, _ = self.unspooled.popleft()
            self.dropped_points += len(chunk)
            self.progress.add_done(logged)


__all__ = ["Progress", "SpoolWriter"]
