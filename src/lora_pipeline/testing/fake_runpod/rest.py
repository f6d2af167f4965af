"""RunPod REST API v2 in the fake, beside GraphQL and over the same account, stock, pods and virtual clock.

One request goes: route (404/405 problem) → ``Authorization: Bearer`` key (401) → the user's token buckets
(429 with ``Retry-After``) → JSON body (400) → the body against the OpenAPI document's schema (422 with
``errors``, unknown fields included) → the handler's own rules (400) → the next scripted fault for the
operation (named by ``operationId``: ``createPod``, ``listPods``, ...) → the operation. Errors are RFC 9457
problem documents. Creates follow RunPod's status table: 402 for money, 403 for a pool the account may not
use, 400 when the GPU and data centre cannot be placed.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .catalog import resolve_gpu_id
from .faults import Fault, FaultScript, Reply
from .gateway import FakeCall
from .rest_limits import RateLimiter
from .rest_schema import schema_errors
from .rest_views import DATA_CENTERS, billing_view, data_center_view, gpu_view, pod_view
from .state import CAPACITY_MESSAGE, FakeApiError, FakePod, Phase, Principal, RunPodState

_POD_PATH = re.compile(r"^/v2/pods/(?P<id>[^/]+)(?P<rest>/logs|/action)?$")
_TITLES = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 422: "Unprocessable Entity",
           429: "Too Many Requests", 500: "Internal Server Error"}  # fmt: skip
_BILLED = (Phase.PROVISIONING, Phase.RUNNING, Phase.RESTARTING)


def problem(status: int, detail: str, errors: list[str] | None = None, headers: dict[str, str] | None = None) -> Reply:
    """An ``application/problem+json`` reply (``ErrorResponse``)."""
    body: dict[str, Any] = {"title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    reply = Reply.json(status, body, headers)
    reply.headers["Content-Type"] = "application/problem+json"
    return reply


class _Refused(Exception):
    def __init__(self, reply: Reply) -> None:
        self.reply = reply


@dataclass
class RestWorld:
    """What REST adds to the shared state: data-centre capacity, closed pools, pod logs, the rate limiter."""

    dc_capacity: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    forbidden_pools: set[tuple[str, str]] = field(default_factory=set)
    logs: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)
    limiter: RateLimiter = field(default_factory=RateLimiter)


class RestGateway:
    """Answers ``/v2/...`` requests; shares the GraphQL gateway's lock, call log and fault script."""

    def __init__(
        self,
        state: RunPodState,
        faults: FaultScript,
        calls: list[FakeCall],
        lock: threading.RLock,
        stopping: threading.Event,
    ) -> None:
        self.state = state
        self.faults = faults
        self.calls = calls
        self.lock = lock
        self.world = RestWorld()
        self._stopping = stopping

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply | None:
        """One request; ``None`` closes the connection without a reply (a scripted drop)."""
        with self.lock:
            call = FakeCall(raw_body=body, headers=dict(headers), at=self.state.now, operation_type="rest")
            self.calls.append(call)
        try:
            reply = self._process(call, method, target, headers, body)
        except _Refused as refused:
            reply = refused.reply
        call.status = reply.status if reply else None
        call.response = _decoded(reply)
        return reply

    # --- pipeline ---------------------------------------------------------------------------------------
    def _process(
        self, call: FakeCall, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> Reply | None:
        url = urlsplit(target)
        route = self._route(method, url.path)
        call.operation = route[0]
        call.api_key = _bearer(headers)
        principal = self.state.principal(call.api_key)
        if principal is None:
            return problem(401, "missing bearer token" if call.api_key is None else "invalid API key")
        decision = self.world.limiter.check(self.state.account_key)
        if not decision.allowed:
            return problem(429, "rate limit exceeded for the minute window", headers=decision.headers)
        payload = _json_body(body) if method in ("POST", "PATCH") else None
        call.input = payload if isinstance(payload, dict) else None
        call.fault = self.faults.take(route[0])
        early = self._apply_fault(call.fault)
        if early is not None or (call.fault and call.fault.kind == "drop_connection"):
            return early
        with self.lock:
            reply = self._dispatch(route, principal, payload, parse_qs(url.query))
        reply.headers.update(decision.headers)
        return None if call.fault and call.fault.kind == "drop_connection_after" else reply

    def _route(self, method: str, path: str) -> tuple[str, str | None]:
        table = {("/v2/pods", "GET"): "listPods", ("/v2/pods", "POST"): "createPod",
                 ("/v2/catalog/gpus", "GET"): "listGpuTypes", ("/v2/catalog/datacenters", "GET"): "listDataCenters",
                 ("/v2/billing/pods", "GET"): "listPodBilling"}  # fmt: skip
        path = path.rstrip("/")
        if (path, method) in table:
            return table[(path, method)], None
        match = _POD_PATH.match(path)
        if match is not None:
            operations = {"": {"GET": "getPod", "DELETE": "deletePod"}, "/logs": {"GET": "getPodLogs"},
                          "/action": {"POST": "podAction"}}[match["rest"] or ""]  # fmt: skip
            if method in operations:
                return operations[method], match["id"]
            raise _Refused(
                problem(
                    405, "The requested method is not allowed for this path.", headers={"Allow": ", ".join(operations)}
                )
            )
        if any(p == path for p, _ in table):
            allowed = ", ".join(m for p, m in table if p == path)
            raise _Refused(
                problem(405, "The requested method is not allowed for this path.", headers={"Allow": allowed})
            )
        raise _Refused(problem(404, f"no route for {path}"))

    def _apply_fault(self, fault: Fault | None) -> Reply | None:
        if fault is None:
            return None
        if fault.kind == "delay":
            self._stopping.wait(fault.seconds)
            return None
        retry_after = f"{fault.seconds or 1:g}"
        builders = {
            "capacity_error": lambda: problem(400, CAPACITY_MESSAGE),
            "capacity_null": lambda: problem(400, CAPACITY_MESSAGE),
            "insufficient_balance": lambda: problem(402, "insufficient balance to deploy this pod"),
            "forbidden": lambda: problem(403, "access denied"),
            "internal_error": lambda: problem(500, "Something went wrong. Please try again later."),
            "http_429_json": lambda: problem(429, "rate limit exceeded", headers={"Retry-After": retry_after}),
            "http_429_text": lambda: Reply.text(429, "Too Many Requests", **{"Retry-After": retry_after}),
            "http_500_html": lambda: Reply.text(500, "<html><body><h1>500</h1></body></html>", "text/html"),
            "cloudflare_1010": lambda: Reply.text(403, "error code: 1010"),
            "http_401": lambda: problem(401, "invalid API key"),
            "malformed_json": lambda: Reply(200, b'{"pods": [', {"Content-Type": "application/json"}),
        }  # fmt: skip
        builder = builders.get(fault.kind)
        return builder() if builder else None

    def _dispatch(
        self, route: tuple[str, str | None], principal: Principal, payload: Any, query: dict[str, list[str]]
    ) -> Reply:
        operation, pod_id = route
        if principal.pod_id is not None and (pod_id != principal.pod_id or operation not in _POD_KEY_OPERATIONS):
            return problem(403, "this API key is scoped to a single pod and cannot perform this operation")
        if operation == "createPod":
            return self._create(payload)
        if operation == "listPods":
            return Reply.json(200, {"pods": [pod_view(p, self.state) for p in self.state.live_pods()]})
        if operation == "listGpuTypes":
            return self._gpu_types(query)
        if operation == "listDataCenters":
            return self._data_centers(query)
        if operation == "listPodBilling":
            return self._billing(query)
        pod = self.state.find(str(pod_id))
        if pod is None:
            return problem(404, "The requested Pod does not exist.")
        if operation == "getPod":
            return Reply.json(200, pod_view(pod, self.state))
        if operation == "deletePod":
            self.state.terminate(pod.id)
            return Reply(204, b"")
        if operation == "podAction":
            return self._action(pod, payload)
        return self._logs(pod, query)

    # --- create -----------------------------------------------------------------------------------------
    def _create(self, payload: Any) -> Reply:
        errors = schema_errors("CreatePodRequest", payload)
        if errors:
            return problem(422, "Request validation failed.", errors)
        if ("gpu" in payload) == ("cpu" in payload):
            return problem(400, "exactly one of gpu or cpu must be set")
        if "cpu" in payload:
            return problem(400, "CPU pods are not simulated by the fake RunPod server")
        gpu_id, count = str(payload["gpu"]["id"]), int(payload["gpu"].get("count") or 1)
        cloud = str(payload.get("cloud") or "SECURE")
        if (gpu_id, cloud) in self.world.forbidden_pools:
            return problem(403, f"access denied: this account cannot deploy {gpu_id} on {cloud} cloud")
        price = self.state.catalog.price(gpu_id, cloud)
        if price is None:
            return problem(400, f"GPU type {gpu_id!r} could not be placed on {cloud} cloud")
        try:
            self.state._check_funds(count * price)  # before stock, as the GraphQL path checks
        except FakeApiError as error:
            return problem(402, error.message)
        dc = self._place(gpu_id, cloud, count, payload.get("dataCenterIds") or list(DATA_CENTERS))
        if dc is None:
            return problem(400, CAPACITY_MESSAGE)
        try:
            pod = self.state.create(_graphql_shaped(payload, gpu_id, count, cloud, dc))
        except FakeApiError as error:
            return problem(402 if error.code == "INSUFFICIENT_BALANCE" else 400, error.message)
        if pod is None:
            return problem(400, CAPACITY_MESSAGE)
        return Reply.json(201, pod_view(pod, self.state))

    def free_in(self, gpu_id: str, cloud: str, dc: str) -> int:
        """Free GPUs of a type in one cloud and data centre (the cloud's total where no split was set)."""
        total = self.state.catalog.stock.get((gpu_id, cloud), 0)
        split = self.world.dc_capacity.get((gpu_id, cloud))
        if split is None:
            return total
        used = sum(
            p.gpu_count
            for p in self.state.live_pods()
            if (p.gpu_type_id, p.cloud_type, p.data_center_id) == (gpu_id, cloud, dc) and p.phase in _BILLED
        )
        return max(0, min(total, split.get(dc, 0) - used))

    def _place(self, gpu_id: str, cloud: str, count: int, preferred: list[str]) -> str | None:
        return next((dc for dc in preferred if dc in DATA_CENTERS and self.free_in(gpu_id, cloud, dc) >= count), None)

    # --- other operations -------------------------------------------------------------------------------
    def _action(self, pod: FakePod, payload: Any) -> Reply:
        errors = schema_errors("PodActionRequest", payload)
        if errors:
            return problem(422, "Request validation failed.", errors)
        action = payload["action"]
        status = pod_view(pod, self.state)["status"]
        if action not in pod_view(pod, self.state)["actions"]:
            return problem(409, f"action {action!r} is not valid for a pod in status {status}")
        try:
            if action == "terminate":
                self.state.terminate(pod.id)
                return Reply(204, b"")
            if action == "stop":
                self.state.stop(pod.id)
            elif action == "start":
                self.state.resume(pod.id, pod.gpu_count)
            else:
                self.state._enter(pod, Phase.RESTARTING)
        except FakeApiError as error:
            return problem(400, error.message)
        return Reply.json(200, pod_view(pod, self.state))

    def _gpu_types(self, query: dict[str, list[str]]) -> Reply:
        include, product = _listed(query, "include"), _listed(query, "product")
        if bool(include) != bool(product):
            return problem(400, "product is required with include=AVAILABILITY, and valid only with it")
        cloud = (query.get("cloud") or ["SECURE"])[0]
        count = int((query.get("count") or ["1"])[0])
        catalog = self.state.catalog
        gpus = []
        for entry in catalog.entries.values():
            free = {dc: self.free_in(entry.id, cloud, dc) for dc in DATA_CENTERS} if include else None
            total = catalog.stock.get((entry.id, cloud), 0)
            gpus.append(gpu_view(entry, cloud=cloud, count=count, free=total, free_by_dc=free, lies=catalog.stock_lies))
        return Reply.json(200, {"gpus": gpus})

    def _data_centers(self, query: dict[str, list[str]]) -> Reply:
        with_gpus = "GPU_AVAILABILITY" in _listed(query, "include")
        centres = []
        for dc in DATA_CENTERS:
            free = None
            if with_gpus:
                entries = self.state.catalog.entries.values()
                free = [(e, sum(self.free_in(e.id, c, dc) for c in ("SECURE", "COMMUNITY"))) for e in entries]
            centres.append(data_center_view(dc, free))
        return Reply.json(200, {"dataCenters": centres})

    def _billing(self, query: dict[str, list[str]]) -> Reply:
        pod_filter = _first(query, "podId")
        start_text = _first(query, "startTime")
        try:
            start = datetime.fromisoformat(start_text.replace("Z", "+00:00")) if start_text else None
        except ValueError:
            return problem(422, "startTime must be an RFC 3339 date-time")
        end = self.state.now
        start = start or end - timedelta(days=30)
        pods = [p for p in self.state.pods.values() if pod_filter in (None, p.id) and p.billed_usd > 0]
        return Reply.json(200, billing_view(pods, start, end, pod_filter))

    def _logs(self, pod: FakePod, query: dict[str, list[str]]) -> Reply:
        tail = int((query.get("tail") or ["100"])[0])
        source = _first(query, "source")
        lines = [entry for entry in self.world.logs.get(pod.id, []) if source in (None, entry[0])]
        events = []
        for line_source, line, ts in lines[-tail:] if tail else []:
            data = json.dumps({"source": line_source, "line": line, "ts": ts})
            events.append(f"id: {ts}\ndata: {data}\n\n")
        reply = Reply.text(200, "".join(events), "text/event-stream", **{"Cache-Control": "no-cache"})
        return reply


_POD_KEY_OPERATIONS = frozenset({"getPod", "deletePod", "podAction", "getPodLogs"})


def _graphql_shaped(payload: Mapping[str, Any], gpu_id: str, count: int, cloud: str, dc: str) -> dict[str, Any]:
    """The REST body as the shared state's create input (the GraphQL field names)."""
    persistent = (payload.get("mounts") or {}).get("persistent") or {}
    network = ((payload.get("mounts") or {}).get("network") or [{}])[0]
    return {
        "name": payload.get("name"),
        "imageName": payload.get("image"),
        "gpuTypeId": resolve_gpu_id(gpu_id),
        "gpuCount": count,
        "cloudType": cloud,
        "env": [{"key": k, "value": v} for k, v in (payload.get("env") or {}).items()],
        "dockerArgs": payload.get("args") or "",
        "ports": ",".join(payload.get("ports") or []) or None,
        "containerDiskInGb": payload.get("disk"),
        "volumeInGb": persistent.get("size") or 0,
        "volumeMountPath": persistent.get("path"),
        "networkVolumeId": network.get("volumeId"),
        "dataCenterId": dc,
    }


def _bearer(headers: Mapping[str, str]) -> str | None:
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _json_body(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError as error:
        raise _Refused(problem(400, "request body is not valid JSON")) from error


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _listed(query: dict[str, list[str]], name: str) -> list[str]:
    return [item for value in query.get(name, []) for item in value.split(",") if item]


def _decoded(reply: Reply | None) -> Any:
    if reply is None or not reply.body:
        return None
    try:
        return json.loads(reply.body)
    except ValueError:
        return reply.body.decode("utf-8", "replace")


__all__ = ["RestGateway", "RestWorld", "problem"]
