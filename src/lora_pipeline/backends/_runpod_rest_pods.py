"""The REST v2 half of :class:`~lora_pipeline.backends.runpod.RunPodBackend`: launch, watch, price, bill.

Three habits keep a fleet of jobs inside RunPod's per-user quota (60 requests a minute in the published
example): the pod list is read once and shared by every ``status`` call for ``status_ttl`` seconds (so a
``sync`` pass over N jobs, or N threads in ``wait_for_completion``, costs one ``GET /v2/pods``); the GPU
catalog is cached for ``catalog_ttl`` seconds; and every request waits on the key's shared rate budget.

REST v2 pod states map onto :class:`PodState` as ``PROVISIONING``/``STARTING`` → provisioning, ``RUNNING`` →
running, ``EXITED``/``ERROR`` → exited (the job reconciler then treats the pod as lost), ``TERMINATED`` or
a 404 → terminated. A container that exited is restarted by RunPod (its status goes back through
``STARTING`` and its ``runtime.uptime`` starts again); each such turn is counted in ``PodStatus.restarts``.

REST v2 has no ``terminateAfter``: the server-side deadline of the GraphQL path does not exist here, so a
pod's end rests on the pod terminating itself, the controller's runtime guard and the reaper.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .._exceptions import APIError, NotFound, PermissionDenied
from .._logging import get_logger
from ..gpus import GPUS, get_gpu
from . import _runpod_graphql as gql
from ._runpod_catalog import Candidate, CreateLoop, Wanted, order_candidates
from ._runpod_rest import RestTransport
from .base import PodHandle, PodState, PodStatus

log = get_logger("backends.runpod")

_STATES = {
    "PROVISIONING": PodState.PROVISIONING,
    "STARTING": PodState.PROVISIONING,
    "RUNNING": PodState.RUNNING,
    "EXITED": PodState.EXITED,
    "ERROR": PodState.EXITED,
    "TERMINATED": PodState.TERMINATED,
}


def create_body(
    *,
    name: str,
    image: str,
    env: Mapping[str, str],
    docker_args: str,
    container_disk_gb: int,
    volume_gb: int,
    gpu_count: int = 1,
    ports: str | None = None,
) -> dict[str, Any]:
    """The candidate-independent part of a ``CreatePodRequest``, checked as RunPod checks it before sending."""
    items = gql.env_input(env)  # key shape, at most 50, no NUL: the same rules on both transports
    body: dict[str, Any] = {
        "name": gql.check_text(name, "name"),
        "image": gql.check_text(image, "image"),
        "gpu": {"count": gpu_count},
        "disk": container_disk_gb,
        "env": {item["key"]: item["value"] for item in items},
    }
    if docker_args:
        body["args"] = gql.check_text(docker_args, "docker_args")
    if volume_gb:
        body["mounts"] = {"persistent": {"size": max(10, volume_gb), "path": "/workspace"}}
    if ports:
        body["ports"] = [p for p in gql.check_text(ports.replace(" ", ""), "ports").split(",") if p]
    return body


def with_candidate(body: Mapping[str, Any], candidate: Candidate) -> dict[str, Any]:
    """``body`` placed on one candidate: GPU id, cloud and preferred data centres."""
    placed = {**body, "gpu": {**body["gpu"], "id": candidate.gpu_id}, "cloud": candidate.cloud}
    if candidate.data_center_ids:
        placed["dataCenterIds"] = list(candidate.data_center_ids)
    return placed


class RestPods:
    """Pods through REST v2; one instance per backend, safe to share between threads."""

    def __init__(
        self,
        transport: RestTransport,
        *,
        max_attempts: int,
        capacity_rounds: int,
        sleep: Callable[[float], None],
        status_ttl: float,
        catalog_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.transport = transport
        self._max_attempts = max_attempts
        self._capacity_rounds = capacity_rounds
        self._sleep = sleep
        self._status_ttl = status_ttl
        self._catalog_ttl = catalog_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self._gone: set[str] = set()
        """Pods this backend saw terminated: ids are never reused, so they need no more requests."""
        self._snapshot: dict[str, dict[str, Any]] = {}
        self._snapshot_at = float("-inf")
        self._catalogs: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._restarts: dict[str, tuple[int, str]] = {}

    # --- launch -----------------------------------------------------------------------------------------
    def launch(self, body: Mapping[str, Any], wanted: Sequence[Wanted]) -> PodHandle:
        """The live pod named ``body["name"]``, or a new one on the first candidate that takes it."""
        name = str(body["name"])
        existing = self.find(name)
        if existing is not None:
            log.info("pod %s already exists (%s); not creating another", name, existing["id"])
            return self._handle(existing)
        candidates = order_candidates(wanted, self._catalogs_for(wanted))
        loop = CreateLoop(
            lambda candidate: self.transport.create_pod(with_candidate(body, candidate)),
            lambda: self.find(name),
            max_attempts=self._max_attempts,
            sleep=self._sleep,
        )
        pod, candidate = loop.run(candidates, name=name, rounds=self._capacity_rounds)
        with self._lock:
            self._snapshot[str(pod["id"])] = pod
        handle = self._handle(pod, gpu_key=candidate.gpu_key)
        handle.created_at = datetime.now(timezone.utc)
        log.info(
            "launched pod %s (%s) on %s at %s USD/h", handle.pod_id, name, candidate.describe(), handle.cost_per_hour
        )
        return handle

    def find(self, name: str) -> dict[str, Any] | None:
        """The live pod named ``name`` (a fresh list: a launch must not trust a snapshot)."""
        matches = [p for p in self._refresh() if p.get("name") == name and p.get("status") != "TERMINATED"]
        if len(matches) > 1:
            log.warning("%d pods are named %s; using %s", len(matches), name, matches[0]["id"])
        return matches[0] if matches else None

    def _catalogs_for(self, wanted: Sequence[Wanted]) -> dict[str, list[dict[str, Any]]]:
        clouds = {c for w in wanted for c in (("SECURE", "COMMUNITY") if w.cloud == "ALL" else (w.cloud,))}
        catalogs = {}
        for cloud in sorted(clouds):
            try:
                catalogs[cloud] = self.catalog(cloud)
            except APIError as error:  # the catalog orders candidates; without it, try them in offer order
                log.warning("could not read the RunPod GPU catalog (%s): %s", cloud, error.raw_message)
        return catalogs

    def catalog(self, cloud: str) -> list[dict[str, Any]]:
        """``GET /v2/catalog/gpus`` with pod availability for ``cloud``, cached for ``catalog_ttl`` seconds."""
        with self._lock:
            cached = self._catalogs.get(cloud)
            if cached is not None and self._clock() - cached[0] < self._catalog_ttl:
                return cached[1]
        gpus = self.transport.gpu_catalog(cloud=cloud)
        with self._lock:
            self._catalogs[cloud] = (self._clock(), gpus)
        return gpus

    # --- watch ------------------------------------------------------------------------------------------
    def status(self, pod_id: str) -> PodStatus:
        """RunPod's view of the pod, from the shared pod list when it is fresh enough."""
        if pod_id in self._gone:
            return PodStatus(pod_id=pod_id, state=PodState.TERMINATED, detail="terminated")
        try:
            pod = self._snapshot_pod(pod_id)
        except PermissionDenied:  # a pod-scoped key may read its own pod, not list the account's
            pod = None
        if pod is None:  # not in the list: make sure before calling it gone (a new pod may postdate the list)
            pod = self.transport.get_pod(pod_id)
        if pod is None or pod.get("status") == "TERMINATED":
            self._gone.add(pod_id)
            return PodStatus(pod_id=pod_id, state=PodState.TERMINATED, detail="RunPod no longer lists this pod")
        status = str(pod.get("status") or "")
        restarts = self._count_restart(pod_id, status)
        detail = f"RunPod status {status}" + (f" (container restarted {restarts}x)" if restarts else "")
        return PodStatus(
            pod_id=pod_id,
            state=_STATES.get(status, PodState.UNKNOWN),
            cost_per_hour=_number(pod.get("cost")),
            detail=detail,
            name=pod.get("name"),
            restarts=restarts,
        )

    def _count_restart(self, pod_id: str, status: str) -> int:
        """A container RunPod restarts goes RUNNING → STARTING → RUNNING: count each return to STARTING."""
        with self._lock:
            count, last = self._restarts.get(pod_id, (0, ""))
            if last == "RUNNING" and status == "STARTING":
                count += 1
            self._restarts[pod_id] = (count, status)
            return count

    def _snapshot_pod(self, pod_id: str) -> dict[str, Any] | None:
        with self._refreshing:  # one thread lists; the others wait for its list instead of sending their own
            with self._lock:
                stale = self._clock() - self._snapshot_at >= self._status_ttl
            if stale:
                self._refresh()
        with self._lock:
            return self._snapshot.get(pod_id)

    def _refresh(self) -> list[dict[str, Any]]:
        pods = self.transport.list_pods()
        with self._lock:
            self._snapshot = {str(p.get("id")): p for p in pods}
            self._snapshot_at = self._clock()
        return pods

    def list_pods(self, prefix: str) -> list[PodHandle]:
        """Live pods whose name starts with ``prefix`` (one request)."""
        return [
            self._handle(p)
            for p in self._refresh()
            if str(p.get("name") or "").startswith(prefix) and p.get("status") != "TERMINATED"
        ]

    # --- end, price, bill -------------------------------------------------------------------------------
    def terminate(self, pod_id: str) -> None:
        """``DELETE /v2/pods/{id}``; a pod that is already gone (404) counts as done."""
        if pod_id in self._gone:
            return
        try:
            self.transport.terminate_pod(pod_id)
        except NotFound:
            log.debug("pod %s was already gone", pod_id)
        with self._lock:
            self._gone.add(pod_id)
            self._snapshot.pop(pod_id, None)

    def price(self, gpu_id: str) -> float | None:
        """The lowest per-GPU USD/h the catalog lists for ``gpu_id`` in either cloud."""
        prices = []
        for cloud in ("SECURE", "COMMUNITY"):
            entry = next((g for g in self.catalog(cloud) if g.get("id") == gpu_id), None)
            value = _number(((entry or {}).get("price") or {}).get(cloud.lower()))
            if value and (entry or {}).get(cloud.lower(), True):
                prices.append(value)
        return min(prices) if prices else None

    def billed_usd(self, pod_id: str, since: datetime) -> float | None:
        """What RunPod has billed the pod since ``since`` (``/v2/billing/pods``); ``None`` when unavailable."""
        try:
            reply = self.transport.pod_billing(pod_id, start=since)
        except APIError as error:
            log.info("RunPod billing for pod %s is unavailable: %s", pod_id, error.raw_message)
            return None
        return _number(((reply.get("metadata") or {}).get("totals") or {}).get("totalAmount"))

    def _handle(self, pod: Mapping[str, Any], *, gpu_key: str | None = None) -> PodHandle:
        gpu_id = str((pod.get("gpu") or {}).get("id") or "")
        key = gpu_key or next((g.key for g in GPUS.values() if g.runpod_id == gpu_id), gpu_id or None)
        return PodHandle(
            backend="runpod",
            pod_id=str(pod["id"]),
            name=str(pod.get("name") or ""),
            gpu_type=key,
            cost_per_hour=_number(pod.get("cost")),
            cloud_type=pod.get("cloud"),
            data_center_id=pod.get("dataCenterId"),
        )


def wanted_from_offers(offers: Sequence[Any]) -> list[Wanted]:
    """:class:`RunPodOffer` values as catalog wants (GPU id resolved once)."""
    return [Wanted(o.gpu_type, get_gpu(o.gpu_type).runpod_id, str(o.cloud_type), o.data_center_id) for o in offers]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


__all__ = ["RestPods", "create_body", "wanted_from_offers", "with_candidate"]
