"""RunPod REST API v2 over httpx: one method per call the backend makes, every failure typed.

Paths and shapes follow ``api-reference-v2/openapi.json`` in ``runpod/docs``: ``POST /v2/pods`` (201),
``GET /v2/pods`` (``{"pods": [...]}``), ``GET /v2/pods/{id}``, ``POST /v2/pods/{id}/action``,
``DELETE /v2/pods/{id}`` (204), ``GET /v2/pods/{id}/logs`` (Server-Sent Events), ``GET /v2/catalog/gpus``,
``GET /v2/catalog/datacenters`` and ``GET /v2/billing/pods``. Errors are RFC 9457 problem documents, mapped by
:func:`~lora_pipeline._error_mapping.map_error` with the server's ``detail``.

The base URL is ``RUNPOD_API_BASE_URL`` (read on every call, as the runpod SDK does; default
``https://api.runpod.io``). Idempotent calls are retried with the one policy of :mod:`lora_pipeline._retry`;
a create is sent once per call and left to the caller, which must look the pod up by name before trying again.
Every request first takes a slot from the key's shared :class:`RateBudget`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from .._error_mapping import map_error, retry_after_seconds
from .._exceptions import APIConnectionError, APIError, NotFound, RateLimited, Timeout
from .._retry import retrying
from ._runpod_rate_limit import RateBudget, shared_budget

DEFAULT_BASE_URL = "https://api.runpod.io"
BASE_URL_ENV = "RUNPOD_API_BASE_URL"
ACTIONS = ("start", "stop", "restart", "terminate")


def base_url() -> str:
    """Where the API lives now (tests point ``RUNPOD_API_BASE_URL`` at the fake)."""
    return (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


@dataclass(frozen=True)
class LogLine:
    """One event of the pod log stream: ``{"source", "line", "ts"}``."""

    source: str
    line: str
    ts: str


class RestTransport:
    """Authenticated calls to RunPod REST v2; thread-safe (httpx's pool, the shared budget)."""

    def __init__(
        self,
        api_key: SecretStr,
        *,
        timeout: float,
        max_attempts: int,
        sleep: Callable[[float], None],
        budget: RateBudget | None = None,
    ) -> None:
        self._api_key = api_key
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._sleep = sleep
        self._budget = budget
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    @property
    def budget(self) -> RateBudget:
        """The budget of this key on the current base URL (shared process-wide unless one was given)."""
        return self._budget or shared_budget(self._api_key.get_secret_value(), base_url())

    # --- pods -------------------------------------------------------------------------------------------
    def create_pod(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v2/pods`` once; the caller decides about another try (a blind retry can rent two pods)."""
        response = self.send("POST", "/v2/pods", json=body, resource=str(body.get("name")), retry=False)
        return dict(response.json())

    def list_pods(self) -> list[dict[str, Any]]:
        """Every pod of the account (``GET /v2/pods``), one request whatever the number of jobs."""
        return list(self.send("GET", "/v2/pods", resource="pods").json().get("pods") or [])

    def get_pod(self, pod_id: str) -> dict[str, Any] | None:
        """``GET /v2/pods/{id}``; ``None`` when RunPod says it does not exist (404)."""
        try:
            return dict(self.send("GET", f"/v2/pods/{_segment(pod_id)}", resource=pod_id).json())
        except NotFound:
            return None

    def act(self, pod_id: str, action: str) -> dict[str, Any] | None:
        """``POST /v2/pods/{id}/action``: start, stop, restart (200 with the pod) or terminate (204)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown pod action {action!r}; choose from {', '.join(ACTIONS)}")
        path = f"/v2/pods/{_segment(pod_id)}/action"
        response = self.send("POST", path, json={"action": action}, resource=pod_id)
        return dict(response.json()) if response.status_code == 200 and response.content else None

    def terminate_pod(self, pod_id: str) -> None:
        """``DELETE /v2/pods/{id}`` (204). Raises :class:`NotFound` for a pod that is already gone."""
        self.send("DELETE", f"/v2/pods/{_segment(pod_id)}", resource=pod_id)

    def pod_logs(
        self, pod_id: str, *, tail: int = 100, source: str | None = None, idle_timeout: float = 3.0
    ) -> Iterator[LogLine]:
        """The pod's log stream (``GET /v2/pods/{id}/logs``, SSE), as it arrives.

        The stream follows the pod live, so it ends when the server closes it or when nothing arrived for
        ``idle_timeout`` seconds (the backfilled ``tail`` comes at once).
        """
        params: dict[str, Any] = {"tail": tail, **({"source": source} if source else {})}
        self.budget.acquire()
        request = self._client.build_request(
            "GET",
            base_url() + f"/v2/pods/{_segment(pod_id)}/logs",
            params=params,
            headers={**self._headers(), "Accept": "text/event-stream"},
            timeout=httpx.Timeout(self._timeout, read=idle_timeout),
        )
        try:
            response = self._client.send(request, stream=True)
        except httpx.HTTPError as error:
            self.budget.settle(None)
            raise _transport_error(error, pod_id) from error
        try:
            self.budget.settle(response.headers)
            if response.status_code >= 400:
                response.read()
                raise self._error(response, pod_id)
            try:
                yield from _sse_lines(response.iter_lines())
            except httpx.ReadTimeout:
                return  # quiet for idle_timeout: the backfill is over
        finally:
            response.close()

    # --- catalog and billing ----------------------------------------------------------------------------
    def gpu_catalog(self, *, count: int = 1, cloud: str | None = None) -> list[dict[str, Any]]:
        """GPU types with prices and pod stock (``?include=AVAILABILITY&product=POD``)."""
        params: dict[str, Any] = {"include": "AVAILABILITY", "product": "POD", "count": count}
        if cloud:
            params["cloud"] = cloud
        return list(self.send("GET", "/v2/catalog/gpus", params=params, resource="catalog").json().get("gpus") or [])

    def data_centers(self) -> list[dict[str, Any]]:
        """Data centres with per-GPU stock (``?include=GPU_AVAILABILITY``)."""
        params = {"include": "GPU_AVAILABILITY"}
        response = self.send("GET", "/v2/catalog/datacenters", params=params, resource="datacenters")
        return list(response.json().get("dataCenters") or [])

    def pod_billing(self, pod_id: str, *, start: datetime, bucket: str = "hour") -> dict[str, Any]:
        """``GET /v2/billing/pods?podId=...``: ``records`` per bucket and ``metadata.totals`` in USD."""
        params = {"podId": pod_id, "startTime": start.isoformat().replace("+00:00", "Z"), "bucketSize": bucket}
        return dict(self.send("GET", "/v2/billing/pods", params=params, resource=pod_id).json())

    # --- transport --------------------------------------------------------------------------------------
    def send(
        self,
        method: str,
        path: str,
        *,
        resource: str,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        retry: bool = True,
    ) -> httpx.Response:
        """One call, retried on transient failures when ``retry``; a non-2xx reply is raised typed."""
        if not retry:
            return self._send_once(method, path, resource=resource, json=json, params=params)
        controller = retrying(self._max_attempts - 1, sleep=self._sleep)
        return controller(self._send_once, method, path, resource=resource, json=json, params=params)

    def _send_once(
        self, method: str, path: str, *, resource: str, json: Any, params: Mapping[str, Any] | None
    ) -> httpx.Response:
        budget = self.budget
        budget.acquire()
        try:
            response = self._client.request(
                method, base_url() + path, json=json, params=params, headers=self._headers()
            )
        except httpx.HTTPError as error:
            budget.settle(None)
            raise _transport_error(error, resource) from error
        budget.settle(response.headers)
        if response.status_code >= 400:
            raise self._error(response, resource)
        return response

    def _error(self, response: httpx.Response, resource: str) -> APIError:
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text or response.reason_phrase
        error = map_error(
            service="runpod", status=response.status_code, body=body, headers=response.headers, resource=resource
        )
        if isinstance(error, RateLimited):
            self.budget.pause(retry_after_seconds(response.headers) or 1.0)
        return error

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}", "Accept": "application/json"}


def _segment(pod_id: str) -> str:
    """A pod id as one path segment (ids are alphanumeric; anything else must not change the path)."""
    return quote(pod_id, safe="")


def _transport_error(error: httpx.HTTPError, resource: str) -> APIError:
    if isinstance(error, httpx.TimeoutException):
        return Timeout(f"RunPod did not answer in time: {type(error).__name__}", resource=resource, service="runpod")
    return APIConnectionError(f"could not reach RunPod: {type(error).__name__}", resource=resource, service="runpod")


def _sse_lines(lines: Iterator[str]) -> Iterator[LogLine]:
    """Decode ``data:`` fields of Server-Sent Events into :class:`LogLine` (comments and ids are skipped)."""
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line and data:
            event = _log_event("\n".join(data))
            data = []
            if event is not None:
                yield event
    if data:
        event = _log_event("\n".join(data))
        if event is not None:
            yield event


def _log_event(payload: str) -> LogLine | None:
    try:
        value = json.loads(payload)
    except ValueError:
        return LogLine(source="container", line=payload, ts="")
    if not isinstance(value, Mapping):
        return None
    return LogLine(
        source=str(value.get("source") or ""), line=str(value.get("line") or ""), ts=str(value.get("ts") or "")
    )


__all__ = ["ACTIONS", "BASE_URL_ENV", "DEFAULT_BASE_URL", "LogLine", "RestTransport", "base_url"]
