"""``PodClient``: the pod's only way to talk to Supabase, through the job-token functions (DESIGN §3).

A pod holds the anon key and one job token, never the service-role key. Every call is ``POST
/rest/v1/rpc/<function>`` with ``{"job_id", "job_token", ...}``; the SECURITY DEFINER functions check the token
by primary key and refuse a wrong, expired or ended one with SQLSTATE 42501 (:class:`PermissionDenied`).
Kept small and dependency-light (httpx only, imported when the first request is made) so ``from
lora_pipeline.pod import MetricsReporter`` is fast on a cold pod: the reporter's sender thread pays for httpx,
not the training script's import.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._error_mapping import error_from_exception, error_from_response
from .._exceptions import LoraPipelineError
from .._logging import get_logger, register_secret
from .._retry import retrying
from .._version import __version__
from ._points import json_number

if TYPE_CHECKING:
    import httpx

log = get_logger("pod")

POD_STATUSES = ("running", "uploading", "succeeded", "failed", "cancelled")
"""The states a pod may report (``pod_set_status``)."""


class PodClient:
    """A tiny client for the pod-side RPCs of one job.

    Args:
        url: the project URL (``https://<ref>.supabase.co`` or the local stack's).
        anon_key: the anon (publishable) key.
        job_id: the job this pod works for.
        job_token: the job's token (stored server-side only as a SHA-256 hash).
        timeout: seconds to wait for each response (connecting: at most 5 s).
        max_retries: retries of transient failures (connection errors, 408, 429, 5xx, statement timeouts).
        transport: an httpx transport, for tests.

    Example::

        with PodClient(url, anon_key, job_id, job_token) as pod:
            job = pod.get_job()
            pod.heartbeat(progress={"step": 10, "total_steps": 100})
    """

    def __init__(
        self,
        url: str,
        anon_key: str,
        job_id: str,
        job_token: str,
        *,
        timeout: float = 30.0,
        max_retries: int = 2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        register_secret(anon_key)
        register_secret(job_token)
        self.url = url.rstrip("/")
        self.job_id = str(job_id)
        self.timeout = timeout
        self.max_retries = max_retries
        self._job_token = job_token
        self._anon_key = anon_key
        self._transport = transport
        self._connection: httpx.Client | None = None
        self._connection_lock = threading.Lock()

    @property
    def _http(self) -> httpx.Client:
        """The pooled HTTP client, built on first use (so importing and constructing stay cheap)."""
        with self._connection_lock:
            if self._connection is None:
                import httpx

                self._connection = httpx.Client(
                    base_url=f"{self.url}/rest/v1/rpc/",
                    headers={
                        "apikey": self._anon_key,
                        "Authorization": f"Bearer {self._anon_key}",
                        "Content-Type": "application/json",
                        "Accept": "application/json",
                        "X-Client-Info": f"lora-pipeline-pod/{__version__}",
                    },
                    timeout=request_timeout(self.timeout),
                    transport=self._transport,
                )
            return self._connection

    # -- the core -----------------------------------------------------------------------------------------

    def rpc(
        self,
        name: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Any:
        """Call ``public.<name>(job_id, job_token, **args)`` and return its decoded result.

        Non-finite floats in ``args`` travel as ``"NaN"``/``"Infinity"`` strings (bare tokens are not JSON).

        Raises:
            PermissionDenied: the token is wrong, expired or its job has ended (42501).
            APIError: any other refusal, mapped by :func:`~lora_pipeline._error_mapping.map_error`.
        """
        body = {"job_id": self.job_id, "job_token": self._job_token, **(args or {})}
        content = json.dumps(json_safe(body), separators=(",", ":"), default=str).encode()
        return self.post(name, content, timeout=timeout, max_retries=max_retries)

    def post(self, name: str, content: bytes, *, timeout: float | None = None, max_retries: int | None = None) -> Any:
        """POST an already encoded JSON body to ``rpc/<name>``, retrying transient failures."""
        retries = self.max_retries if max_retries is None else max_retries
        for attempt in retrying(retries):
            with attempt:
                return self._post_once(name, content, timeout)
        raise AssertionError("unreachable")  # pragma: no cover

    def _post_once(self, name: str, content: bytes, timeout: float | None) -> Any:
        resource = f"rpc/{name}"
        try:
            response = self._http.post(
                name, content=content, timeout=request_timeout(timeout) if timeout is not None else None
            )
        except LoraPipelineError:
            raise
        except Exception as error:
            raise error_from_exception(error, role="pod", resource=resource) from error
        if response.status_code >= 400:
            raise error_from_response(response, service="postgrest", role="pod", resource=resource)
        return response.json() if response.content.strip() else None

    def ingest_body(self, points_json: bytes) -> bytes:
        """The request body of ``ingest_metrics`` around an already encoded JSON array of points."""
        head = json.dumps({"job_id": self.job_id, "job_token": self._job_token}, separators=(",", ":"))
        return head[:-1].encode() + b',"points":' + points_json + b"}"

    # -- the job-token functions ----------------------------------------------------------------------------

    def ingest_metrics(self, points: Sequence[Mapping[str, Any]] | bytes, *, timeout: float | None = None) -> int:
        """Upsert up to 1000 points (``public.ingest_metrics``); returns the number of rows written.

        ``points`` is a list of point objects or an encoded JSON array. Replays are harmless (upsert on
        ``(job_id, step)``, column by column).
        """
        if not isinstance(points, bytes):
            points = json.dumps(json_safe(list(points)), separators=(",", ":")).encode()
        result = self.post("ingest_metrics", self.ingest_body(points), timeout=timeout)
        return int(result or 0)

    def heartbeat(self, progress: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> dict[str, Any]:
        """Mark the job alive and merge ``progress`` into ``training_jobs.progress`` (``public.pod_heartbeat``).

        Returns ``{"status", "cancel_requested", "server_time"}``: stop training when ``cancel_requested``.
        """
        args = {"progress": dict(progress)} if progress is not None else {}
        return dict(self.rpc("pod_heartbeat", args, timeout=timeout) or {})

    def set_status(
        self,
        status: str,
        *,
        reason: str | None = None,
        message: str | None = None,
        error: Mapping[str, Any] | None = None,
        progress: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Move the job to a pod-side state (``public.pod_set_status``): one of :data:`POD_STATUSES`.

        ``failed`` needs a ``reason`` (e.g. ``training_error``, ``oom``, ``upload_failed``); ``message`` becomes
        a ``job_events`` row.
        """
        args: dict[str, Any] = {"status": status, "reason": reason, "message": message}
        args.update(error=dict(error) if error is not None else None, progress=dict(progress) if progress else None)
        return str(self.rpc("pod_set_status", args, timeout=timeout))

    def log_event(
        self, message: str, *, level: str = "info", kind: str = "pod", data: Mapping[str, Any] | None = None
    ) -> None:
        """Add a line to the job's timeline (``public.pod_log_event``)."""
        self.rpc("pod_log_event", {"level": level, "kind": kind, "message": message, "data": data})

    def get_job(self) -> dict[str, Any]:
        """The job's configuration and dataset location (``public.pod_get_job``); for an ended job, only
        ``id``, ``status`` and ``status_reason``."""
        return dict(self.rpc("pod_get_job") or {})

    def register_artifact(
        self,
        storage_path: str,
        files: Sequence[Mapping[str, Any]],
        size_bytes: int,
        sha256: str,
        adapter_config: Mapping[str, Any] | None = None,
    ) -> str:
        """Record the uploaded adapter folder (``public.pod_register_artifact``); returns the artifact id.

        Idempotent on ``(job_id, storage_path)``.
        """
        args = {"storage_path": storage_path, "files": [dict(f) for f in files], "size_bytes": size_bytes}
        args.update(sha256=sha256, adapter_config=dict(adapter_config) if adapter_config is not None else None)
        return str(self.rpc("pod_register_artifact", args))

    @property
    def job_token(self) -> str:
        """The job token (registered as a secret: redacted from every log record)."""
        return self._job_token

    @property
    def storage_headers(self) -> dict[str, str]:
        """Headers that let Storage policies recognise this job (``x-lora-job-id``/``x-lora-job-token``)."""
        return {"x-lora-job-id": self.job_id, "x-lora-job-token": self._job_token}

    # -- lifecycle ----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close pooled connections (also aborts a request in flight on another thread)."""
        with self._connection_lock:
            connection = self._connection
        if connection is not None:
            connection.close()

    def __enter__(self) -> PodClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PodClient(url={self.url!r}, job_id={self.job_id!r})"


def request_timeout(seconds: float) -> httpx.Timeout:
    """``seconds`` for the whole exchange, at most 5 s of it to connect."""
    import httpx

    return httpx.Timeout(seconds, connect=min(seconds, 5.0))


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by ``"NaN"``/``"Infinity"``/``"-Infinity"``, recursively."""
    if isinstance(value, float):
        return json_number(value)
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


__all__ = ["POD_STATUSES", "PodClient", "json_safe", "request_timeout"]
