"""Upload what reporters left in a spool directory (``lora-pipeline metrics sync SPOOL_DIR``).

Each ``<job_id>.jsonl`` log is sent from its acknowledged offset on, in order, with the same requests, retries
and splitting as the reporter; a log is deleted once everything in it is acknowledged and no running reporter
has it open. Sending twice is harmless (the ingest upserts), so ``sync`` may run while a reporter is alive.

The job token is needed: ``job_token`` (one string, or a mapping job id -> token) or ``LORA_JOB_TOKEN``. The
functions refuse a token whose job has ended, so sync before the job is marked finished, or issue a new token.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .._exceptions import ConfigError, LoraPipelineError
from .._logging import get_logger
from ._delivery import Delivery, SendPolicy
from ._env import check_pod_key, pod_setting
from ._points import MAX_POINTS_PER_REQUEST
from .client import PodClient
from .spool import Spool, SpoolError, spool_files

log = get_logger("pod.sync")


@dataclass(frozen=True)
class SpoolFileResult:
    """What ``sync`` did with one job's spool."""

    path: Path
    job_id: str | None
    sent: int
    pending: int
    removed: bool
    error: str | None = None


@dataclass(frozen=True)
class SyncResult:
    """The outcome of :func:`sync_spool` for every spool file found."""

    files: list[SpoolFileResult] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(f.sent for f in self.files)

    @property
    def pending(self) -> int:
        """Points still not acknowledged (in files that failed)."""
        return sum(f.pending for f in self.files)

    @property
    def ok(self) -> bool:
        return all(f.error is None and f.pending == 0 for f in self.files)


def sync_spool(
    spool_dir: str | Path,
    *,
    url: str | None = None,
    anon_key: str | None = None,
    job_token: str | Mapping[str, str] | None = None,
    timeout: float = 30.0,
    max_retries: int = 3,
    deadline_seconds: float | None = None,
    env: Mapping[str, str] | None = None,
) -> SyncResult:
    """Send every unacknowledged point in ``spool_dir`` (or in one spool file) to its job.

    Args:
        spool_dir: a spool directory, or one ``<job_id>.jsonl`` file.
        url, anon_key: the project; default from the environment (as :meth:`MetricsReporter.from_env`).
        job_token: the job token, or a mapping from job id to token; default ``LORA_JOB_TOKEN``.
        timeout, max_retries: per request, as :class:`SendPolicy`.
        deadline_seconds: stop sending after this many seconds (the rest stays in the spool).

    Raises:
        ConfigError: the URL, anon key or token is missing.
    """
    environ = os.environ if env is None else env
    url = pod_setting("url", url, environ)
    anon_key = pod_setting("anon_key", anon_key, environ)
    check_pod_key(anon_key)
    policy = SendPolicy(timeout=timeout, max_retries=max_retries)
    deadline = time.monotonic() + deadline_seconds if deadline_seconds is not None else None
    root = Path(spool_dir)
    paths = [root] if root.is_file() else spool_files(root)
    results = [_sync_file(path, url, anon_key, job_token, policy, deadline, environ) for path in paths]
    return SyncResult(results)


def _sync_file(
    path: Path,
    url: str,
    anon_key: str,
    job_token: str | Mapping[str, str] | None,
    policy: SendPolicy,
    deadline: float | None,
    environ: Mapping[str, str],
) -> SpoolFileResult:
    try:
        spool = Spool.read(path, warn=log.warning)
    except (SpoolError, OSError) as error:
        return SpoolFileResult(path, None, 0, 0, False, str(error))
    try:
        token = _token_for(spool.job_id, job_token, environ)
    except ConfigError as error:
        spool.close()
        return SpoolFileResult(path, spool.job_id, 0, spool.pending()[1], False, error.message)
    with PodClient(url, anon_key, spool.job_id, token, timeout=policy.timeout, max_retries=0) as client:
        sent, failure = _send_all(spool, Delivery(client, policy, on_reject=_log_rejected), deadline)
    pending = spool.pending()[1]
    removed = spool.close(remove_if_done=pending == 0)
    return SpoolFileResult(path, spool.job_id, sent, pending, removed, failure)


def _log_rejected(point: bytes, error: LoraPipelineError) -> None:
    log.error(
        "the server refused a metric point, skipped: %s; point: %.300s",
        str(error).splitlines()[0],
        point.decode(errors="replace"),
    )


def _send_all(spool: Spool, delivery: Delivery, deadline: float | None) -> tuple[int, str | None]:
    sent = 0
    cursor = spool.acked
    while cursor < spool.end:
        batch = spool.next_batch(cursor, max_points=MAX_POINTS_PER_REQUEST, max_bytes=delivery.policy.max_request_bytes)
        if batch.records:
            try:
                delivered = delivery.send(batch.points, deadline=deadline)
            except LoraPipelineError as error:
                return sent, str(error).splitlines()[0]
            sent += batch.count - delivered.rejected
        cursor = batch.end
        spool.ack(cursor)
    return sent, None


def _token_for(job_id: str, job_token: str | Mapping[str, str] | None, environ: Mapping[str, str]) -> str:
    if isinstance(job_token, Mapping):
        token = job_token.get(job_id)
        if token:
            return token
        raise ConfigError(f"no job token given for job {job_id}", argument="job_token")
    return pod_setting("job_token", job_token, environ)


__all__ = ["SpoolFileResult", "SyncResult", "sync_spool"]
