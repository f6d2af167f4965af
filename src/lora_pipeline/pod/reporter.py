"""``MetricsReporter``: the pod-side metrics writer that never blocks training, never raises into it and never
loses a point it accepted (DESIGN §6, research/tracking.md §1.8).

Path of a point::

    log()  ->  memory (a deque; microseconds, no I/O)
           ->  spool writer thread: merge duplicate steps, encode, append + fsync to the spool (every 0.5 s)
           ->  sender thread: coalesce unacknowledged records into requests of <= batch_size points / ~256 KB,
               POST rpc/ingest_metrics, acknowledge in the spool

Durability: a point is on disk within ``spool_interval`` of ``log()`` returning, at once after ``flush()``;
from then on only the server's acknowledgement removes it from the to-send list, and a new reporter for the
same job and spool directory sends whatever is left (replay is harmless: the ingest upserts column by column).
Delivery: see :mod:`._delivery` (retries for transient failures only, circuit breaker, permanent failures
stop sending and are reported once). Exit: ``finish(timeout)`` never hangs; it runs at interpreter exit and
on SIGTERM too, and leaves what it could not send in the spool with a one-line ``lora-pipeline metrics sync``
hint.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError, LoraPipelineError
from .._logging import get_logger
from . import _lifecycle
from ._delivery import CircuitBreaker, Delivery, SendPolicy
from ._env import POD_ENV_NAMES, check_pod_key, default_spool_dir, pod_setting, process_rank
from ._points import MAX_POINTS_PER_REQUEST, PointBuilder, Row
from ._sender import Sender
from ._workers import Progress, SpoolWriter
from .client import PodClient
from .spool import Spool, SpoolError

log = get_logger("pod.metrics")


@dataclass(frozen=True)
class ReporterStats:
    """A snapshot of what a reporter has done (``reporter.stats()``)."""

    enabled: bool
    logged: int
    """``log()`` calls accepted."""
    spooled: int
    """Points written to the spool by this reporter (duplicate steps merged)."""
    sent: int
    """Points the server acknowledged, including ones replayed from an earlier run."""
    pending: int
    """Points not yet acknowledged: in memory or in the spool."""
    retries: int
    """Retried requests after transient failures."""
    dropped_values: int
    """Values (or whole calls, for a bad step) dropped by validation; each name is warned about once."""
    dropped_points: int
    """Points lost because the spool could not be written and memory was full (disk errors only)."""
    rejected_points: int
    """Points the server refused on their own (reported, then skipped)."""
    last_error: str | None
    circuit: str
    """``closed``, ``open``, ``half_open`` or ``stopped`` (a permanent failure)."""
    spool_path: str | None


class MetricsReporter:
    """Report training metrics of one job from inside its pod.

    Args:
        job_id: the job (a UUID).
        job_token: the job's token; with the anon key it allows writing this job's metrics and nothing else.
        url: the Supabase project URL.
        anon_key: the anon key (a service-role key is refused).
        flush_interval: seconds between sends when fewer than ``batch_size`` points wait.
        batch_size: points per request (at most 1000, the ingest function's limit).
        spool_dir: where the spool lives (default ``$LORA_PIPELINE_SPOOL_DIR`` or ``~/.cache/lora-pipeline/metrics``);
            put it on a volume that survives the container to survive its loss too.
        max_buffer: points kept in memory when the spool cannot be written (disk errors); beyond it the oldest
            are dropped and counted. A network outage never drops anything: points wait on disk.
        rank: this process's rank; default ``RANK`` / ``LOCAL_RANK`` from the environment, else 0.
        enabled: default: only rank 0 reports; other ranks get a reporter whose methods do nothing.
        policy: timeouts, retries, circuit breaker and request size (:class:`SendPolicy`).
        spool_interval: seconds between spool writes; the most a process crash can lose.
        progress_interval: the least seconds between two progress heartbeats (:meth:`set_progress`).
        handle_signals: finish on SIGTERM (installed from the main thread, chained to the previous handler).
        client: a :class:`PodClient` to use instead of building one.

    Raises:
        ConfigError: a missing or malformed setting (on an enabled reporter only).

    Example::

        with MetricsReporter.from_env() as reporter:
            for step in range(steps):
                reporter.log(step, loss=loss, learning_rate=lr, epoch=step / steps_per_epoch)
    """

    def __init__(
        self,
        job_id: str,
        job_token: str,
        url: str,
        anon_key: str,
        *,
        flush_interval: float = 5.0,
        batch_size: int = 500,
        spool_dir: str | Path | None = None,
        max_buffer: int = 10_000,
        rank: int | None = None,
        enabled: bool | None = None,
        policy: SendPolicy | None = None,
        spool_interval: float = 0.5,
        progress_interval: float = 5.0,
        handle_signals: bool = True,
        client: PodClient | None = None,
    ) -> None:
        self.job_id = job_id
        self.rank = process_rank() if rank is None else rank
        self.enabled = (self.rank == 0) if enabled is None else bool(enabled)
        self.policy = policy or SendPolicy()
        self._batch_size = max(1, min(int(batch_size), MAX_POINTS_PER_REQUEST))
        self._max_buffer = max(self._batch_size, int(max_buffer))
        self._buffer: deque[Row] = deque()
        self._builder = PointBuilder(self._reject)
        self._warned: set[str] = set()
        self._logged = self._dropped_values = 0
        self._accepting = False
        self._finished = False
        self._finish_lock = threading.Lock()
        self._progress = Progress()
        self.spool: Spool | None = None
        self.client: PodClient | None = None
        if not self.enabled:
            return
        self._check(job_id, job_token, url, anon_key)
        self.spool = self._open_spool(spool_dir)
        if self.spool is None:
            return
        self.client = client or PodClient(url, anon_key, job_id, job_token, timeout=self.policy.timeout, max_retries=0)
        self._start(flush_interval, spool_interval, progress_interval)
        _lifecycle.register(self, handle_sigterm=handle_signals)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> MetricsReporter:
        """Build from ``LORA_JOB_ID``, ``LORA_JOB_TOKEN``, the URL and the anon key (see ``POD_ENV_NAMES``).

        ``options`` go to the constructor and win over the environment. Never reads the service-role key.

        Raises:
            ConfigError: names every missing setting and every environment variable tried for it.
        """
        environ = os.environ if env is None else env
        given = {name: options.pop(name, None) for name in POD_ENV_NAMES}
        rank = options.pop("rank", None)
        rank = process_rank(environ) if rank is None else rank
        enabled = options.get("enabled")
        if not (rank == 0 if enabled is None else enabled):
            return cls("", "", "", "", rank=rank, **options)
        values, problems = {}, []
        for name in POD_ENV_NAMES:
            try:
                values[name] = pod_setting(name, given[name], environ)
            except ConfigError as error:
                problems.append(error)
        if problems:
            tried = tuple(n for p in problems for n in p.env_names)
            raise ConfigError("; ".join(p.message for p in problems), argument=problems[0].argument, env_names=tried)
        options.setdefault("spool_dir", default_spool_dir(environ))
        return cls(values["job_id"], values["job_token"], values["url"], values["anon_key"], rank=rank, **options)

    # -- the hot path -------------------------------------------------------------------------------------

    def log(self, step: int | None = None, *, epoch: float | None = None, **values: Any) -> None:
        """Record metrics at ``step``. Microseconds, no I/O, never raises.

        Known names fill their columns (``train_loss``, ``eval_loss``, ``perplexity``, ``learning_rate``,
        ``grad_norm``, ``tokens_per_second``, ``gpu_memory_gb``; aliases such as ``loss`` and ``lr`` too);
        other names go to ``extra``. ``None`` is skipped; tensors and numpy scalars are read with ``.item()``;
        NaN and infinities are kept. A value that is not a number is dropped with one warning per name; a
        negative or non-integer step drops the call. Logging the same step again merges column by column.
        """
        if not self._accepting:
            return
        try:
            row = self._builder.build(step, epoch, values)
            if row is not None:
                buffer = self._buffer
                buffer.append(row)
                self._logged += 1
                if len(buffer) >= self._batch_size and not self._writer.wake.is_set():
                    self._writer.wake.set()
        except Exception as error:  # never into training
            self._reject("log", f"internal error: {type(error).__name__}: {error}")

    def set_progress(self, **progress: Any) -> None:
        """Merge ``progress`` (e.g. ``step``, ``total_steps``, ``epoch``) into the job's progress, sent as a
        heartbeat by the background thread at most every ``progress_interval`` seconds. Never blocks."""
        if self._accepting:
            self._sender.set_progress(progress)

    @property
    def cancel_requested(self) -> bool:
        """Whether the last heartbeat reply said that a cancel was requested for the job."""
        return self.enabled and self.spool is not None and self._sender.state.cancel_requested

    # -- flushing and finishing ---------------------------------------------------------------------------

    def flush(self, timeout: float = 0.0) -> bool:
        """Spool and send everything logged so far, now; wait up to ``timeout`` seconds for the server.

        Returns whether everything logged before the call is acknowledged (always ``True`` when disabled).
        """
        if not self._accepting:
            return not self._pending_points()
        target = self._logged
        self._progress.flush_target = max(self._progress.flush_target, target)
        self._writer.wake.set()
        self._sender.wake.set()
        if timeout > 0:
            self._progress.wait_for(lambda: self._progress.done_logged >= target or self._sender.state.gave_up, timeout)
        return self._progress.done_logged >= target

    def checkpoint(self, timeout: float = 5.0) -> bool:
        """Make everything logged so far durable in the spool (written and fsynced) before returning.

        Call it before a training checkpoint is written: a run resumed from that checkpoint does not log its
        steps again, so they must already be on disk if the process dies right after. Waits at most
        ``timeout`` seconds (a full disk), never raises; returns whether everything logged is spooled.
        """
        if not self._accepting or self.spool is None:
            return not self._pending_points()
        writer = self._writer
        writer.wake.set()
        try:
            return self._progress.wait_for(
                lambda: not self._buffer and not writer.in_hand and not writer.unspooled, max(0.0, timeout)
            )
        except Exception as error:  # never into training
            self._reject("checkpoint", f"internal error: {type(error).__name__}: {error}")
            return False

    def finish(self, timeout: float = 30.0) -> ReporterStats:
        """Flush, send for at most ``timeout`` seconds, stop the threads; what is left stays in the spool and
        one line on stderr says how to upload it. Safe to call twice; later ``log()`` calls are ignored."""
        with self._finish_lock:
            if self._finished or not self.enabled or self.spool is None:
                self._finished = True
                return self.stats()
            self._finished = True
        deadline = time.monotonic() + max(0.0, timeout)
        self._accepting = False
        self._progress.deadline = deadline
        self._progress.closing.set()
        self._writer.wake.set()
        self._sender.wake.set()
        self._progress.wait_for(self._settled, deadline - time.monotonic())
        self._stop_threads(deadline)
        _lifecycle.unregister(self)
        pending = self._pending_points()
        self.spool.close(remove_if_done=pending == 0 and not self._writer.unspooled)
        if pending:
            self._print_sync_hint(pending)
        return self.stats()

    def _settled(self) -> bool:
        writer = self._writer
        if (self._buffer or writer.in_hand or writer.unspooled) and writer.thread.is_alive():
            return False  # the writer's last pass is still to come
        # Points the writer could not spool (a full disk) stay behind, but what is on disk still goes out.
        return not self._sender.has_pending() or self._sender.state.gave_up

    def _stop_threads(self, deadline: float) -> None:
        self._writer.wake.set()
        self._writer.thread.join(max(0.0, deadline - time.monotonic()) + 0.5)
        self._progress.halt.set()
        self._sender.stop()
        self._sender.wake.set()
        self._sender.thread.join(max(0.0, deadline - time.monotonic()))
        if self._sender.thread.is_alive() and self.client is not None:
            self.client.close()  # aborts a request stuck on a server that does not answer
            self._sender.thread.join(0.5)

    def stats(self) -> ReporterStats:
        """Counters and state; cheap, thread-safe enough for progress bars and tests."""
        if not self.enabled or self.spool is None:
            return ReporterStats(self.enabled, 0, 0, 0, 0, 0, self._dropped_values, 0, 0, None, "disabled", None)
        state = self._sender.state
        return ReporterStats(
            enabled=True,
            logged=self._logged,
            spooled=self._writer.spooled,
            sent=state.sent,
            pending=self._pending_points(),
            retries=state.retries,
            dropped_values=self._dropped_values,
            dropped_points=self._writer.dropped_points,
            rejected_points=state.rejected,
            last_error=state.last_error,
            circuit=self._sender.breaker.state.value,
            spool_path=str(self.spool.path),
        )

    def __enter__(self) -> MetricsReporter:
        return self

    def __exit__(self, *_: object) -> None:
        self.finish()

    def __repr__(self) -> str:
        state = "disabled" if not self.enabled else ("finished" if self._finished else "running")
        return f"MetricsReporter(job_id={self.job_id!r}, rank={self.rank}, {state})"

    # -- internals ----------------------------------------------------------------------------------------

    @staticmethod
    def _check(job_id: str, job_token: str, url: str, anon_key: str) -> None:
        for name, value in (("job_id", job_id), ("job_token", job_token), ("url", url), ("anon_key", anon_key)):
            if not value:
                pod_setting(name, None, {})  # raises the ConfigError that names the variables
        try:
            uuid.UUID(str(job_id))
        except ValueError:
            raise ConfigError(f"job_id must be a UUID, got {job_id!r}", argument="job_id") from None
        check_pod_key(anon_key)

    def _open_spool(self, spool_dir: str | Path | None) -> Spool | None:
        directory = Path(spool_dir) if spool_dir is not None else default_spool_dir()
        for candidate in (directory, None):
            try:
                return self._open_spool_in(candidate or Path(tempfile.mkdtemp(prefix="lora-metrics-")))
            except OSError as error:
                log.error("cannot use the metrics spool directory %s: %s", candidate or "(temporary)", error)
        log.error("metrics of job %s will not be reported: no writable spool directory", self.job_id)
        return None

    def _open_spool_in(self, directory: Path) -> Spool:
        try:
            return Spool.open(directory, self.job_id, warn=log.warning)
        except SpoolError as error:
            aside = directory / f"{self.job_id}.unreadable-{int(time.time())}"
            log.warning("%s; moved it to %s and started a new spool", error, aside)
            shutil.move(str(directory / f"{self.job_id}.jsonl"), aside)
            return Spool.open(directory, self.job_id, warn=log.warning)

    def _start(self, flush_interval: float, spool_interval: float, progress_interval: float) -> None:
        assert self.spool is not None and self.client is not None
        self._breaker = CircuitBreaker(self.policy.failure_threshold, self.policy.cool_down)
        delivery = Delivery(
            self.client,
            self.policy,
            sleep=self._progress.halt.wait,
            on_retry=self._on_retry,
            on_reject=self._on_rejected,
        )
        self._writer = SpoolWriter(
            self._buffer,
            self.spool,
            self._progress,
            batch_size=self._batch_size,
            max_bytes=self.policy.max_request_bytes,
            max_buffer=self._max_buffer,
            interval=spool_interval,
            on_spooled=lambda: self._sender.wake.set(),
        )
        self._sender = Sender(
            self.spool,
            delivery,
            self._breaker,
            self._progress,
            batch_size=self._batch_size,
            flush_interval=flush_interval,
            progress_interval=progress_interval,
            session_start=self.spool.end,
            spooled=lambda: self._writer.spooled,
            on_permanent=self._on_permanent,
        )
        if self._sender.replayed:
            log.info(
                "replaying %d unsent metric points of job %s from %s",
                self._sender.replayed,
                self.job_id,
                self.spool.path,
            )
        self._accepting = True
        self._writer.thread.start()
        self._sender.thread.start()

    def _pending_points(self) -> int:
        if not self.enabled or self.spool is None:
            return 0
        return self._writer.waiting_points() + self._sender.unsent()

    def _reject(self, name: str, reason: str) -> None:
        self._dropped_values += 1
        if name not in self._warned:
            self._warned.add(name)
            log.warning(
                "metric %r dropped: %s (later problems with %r are counted in stats(), not logged)", name, reason, name
            )

    def _on_retry(self, error: LoraPipelineError) -> None:
        self._sender.state.retries += 1
        self._sender.state.last_error = str(error).splitlines()[0]

    def _on_rejected(self, point: bytes, error: LoraPipelineError) -> None:
        log.error(
            "the server refused a metric point of job %s and it was skipped: %s; point: %.300s",
            self.job_id,
            str(error).splitlines()[0],
            point.decode(errors="replace"),
        )

    def _on_permanent(self, error: LoraPipelineError) -> None:
        directory = self.spool.path.parent if self.spool else "<spool dir>"
        log.error(
            "metrics of job %s can no longer be sent: %s. Nothing is lost: they stay in %s. Once the cause is "
            "fixed (a valid job token for a job that has not ended), run `lora-pipeline metrics sync %s`.",
            self.job_id,
            str(error).splitlines()[0],
            self.spool.path if self.spool else directory,
            directory,
        )

    def _print_sync_hint(self, pending: int) -> None:
        assert self.spool is not None
        lost = (
            f" ({self._writer.waiting_points()} could not be written to disk and are lost)"
            if self._writer.waiting_points()
            else ""
        )
        print(
            f"lora-pipeline: {pending} metric points of job {self.job_id} were not sent{lost}; they are kept in "
            f"{self.spool.path}. Upload them with: lora-pipeline metrics sync {self.spool.path.parent}",
            file=sys.stderr,
            flush=True,
        )


__all__ = ["MetricsReporter", "ReporterStats"]
