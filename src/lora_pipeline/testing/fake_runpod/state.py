"""The fake's account, stock and pods, on a virtual clock (research/runpod.md §4.3).

Nothing here sleeps or touches the network: time moves only through :meth:`RunPodState.advance`, which
walks from event to event (a provisioning or restart ending, a ``stopAfter``/``terminateAfter`` deadline,
the balance running out) and bills every pod for exactly the simulated seconds in between.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from ..._compat import StrEnum
from .catalog import Catalog

CAPACITY_MESSAGE = (
    "There are no longer any instances available with the requested specifications. Please refresh and try again."
)
RESUME_CAPACITY_MESSAGE = "There are not enough free GPUs on the host machine to start this pod."
_SECONDS_PER_MONTH = 2.592e6
_STOPPED_VOLUME_RATE = 0.20
"""USD per GB-month for the volume of a stopped pod (RunPod's published rate)."""


class FakeApiError(Exception):
    """A refusal the API reports as ``errors`` with HTTP 200."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Phase(StrEnum):
    """Internal phase; the API exposes only ``desiredStatus`` and whether ``runtime`` is set."""

    PROVISIONING = "PROVISIONING"
    RUNNING = "RUNNING"
    RESTARTING = "RESTARTING"
    EXITED = "EXITED"
    TERMINATED = "TERMINATED"


_BILLED = (Phase.PROVISIONING, Phase.RUNNING, Phase.RESTARTING)


@dataclass
class Principal:
    """Who holds an API key: the account, or one pod (the pod-scoped ``RUNPOD_API_KEY``)."""

    key: str
    pod_id: str | None = None


@dataclass
class FakePod:
    """One pod as the fake keeps it. Tests read ``restart_count``, ``exit_codes`` and ``billed_usd``."""

    id: str
    name: str
    image_name: str
    gpu_type_id: str
    gpu_count: int
    cloud_type: str
    cost_per_hr: float
    created_at: datetime
    phase_since: datetime
    phase: Phase = Phase.PROVISIONING
    env: list[tuple[str, str]] = field(default_factory=list)
    docker_args: str = ""
    ports: str | None = None
    data_center_id: str | None = None
    network_volume_id: str | None = None
    volume_in_gb: int = 0
    container_disk_in_gb: int = 10
    volume_mount_path: str = "/runpod-volume"
    terminate_after: datetime | None = None
    stop_after: datetime | None = None
    started_at: datetime | None = None
    machine_id: str = ""
    pod_host_id: str = ""
    pod_key: str = ""
    restart_count: int = 0
    exit_codes: list[int] = field(default_factory=list)
    billed_usd: float = 0.0
    last_status_change: str = ""

    @property
    def live(self) -> bool:
        return self.phase is not Phase.TERMINATED


def _status_time(moment: datetime) -> str:
    """The timestamp format of ``lastStatusChange`` (a JavaScript ``Date.toString()``)."""
    return moment.strftime("%a %b %d %Y %H:%M:%S GMT+0000 (Coordinated Universal Time)")


def parse_deadline(value: str | None) -> datetime | None:
    """An ISO-8601 ``stopAfter``/``terminateAfter`` value; a naive time is taken as UTC."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as error:
        raise FakeApiError(f"invalid datetime {value!r}", "BAD_USER_INPUT") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


class RunPodState:
    """Account, keys, stock, prices and pods. Not thread-safe: the gateway serialises every request."""

    def __init__(
        self,
        *,
        catalog: Catalog,
        now: datetime,
        balance: float,
        spend_limit: float,
        provision_delay: float,
        restart_delay: float,
        capacity_shape: str,
        seed: int,
    ) -> None:
        self.catalog = catalog
        self.capacity_shape = capacity_shape
        self.now = now
        self.balance = balance
        self.spend_limit = spend_limit
        self.provision_delay = provision_delay
        self.restart_delay = restart_delay
        self.pods: dict[str, FakePod] = {}
        self.keys: dict[str, Principal] = {}
        self.phase_listener: Callable[[FakePod, Phase], None] | None = None
        """Told of every phase a pod enters (the container switch starts and kills processes from it)."""
        self._random = random.Random(seed)
        self.account_key = self.mint_key()

    # --- keys -------------------------------------------------------------------------------------------
    def mint_key(self, pod_id: str | None = None) -> str:
        """A new API key for the account, or scoped to one pod."""
        key = "rpa_" + "".join(self._random.choices(string.ascii_uppercase + string.digits, k=40))
        self.keys[key] = Principal(key=key, pod_id=pod_id)
        return key

    def principal(self, key: str | None) -> Principal | None:
        return self.keys.get(key) if key else None

    # --- queries ----------------------------------------------------------------------------------------
    def live_pods(self) -> list[FakePod]:
        return [pod for pod in self.pods.values() if pod.live]

    def find(self, pod_id: str) -> FakePod | None:
        pod = self.pods.get(pod_id)
        return pod if pod is not None and pod.live else None

    def spend_per_hour(self) -> float:
        return sum(pod.cost_per_hr for pod in self.pods.values() if pod.phase in _BILLED)

    # --- create -----------------------------------------------------------------------------------------
    def create(self, request: Mapping[str, Any]) -> FakePod | None:
        """Deploy a pod, or refuse as RunPod does. ``None`` is the null-result shape of "no capacity"."""
        gpu_id = str(request.get("gpuTypeId") or "")
        count = int(request.get("gpuCount") or 1)
        if self.catalog.price(gpu_id, "ALL") is None:
            return None  # an unknown gpuTypeId looks exactly like no capacity
        cloud = str(request.get("cloudType") or "ALL")
        cost = count * (self.catalog.price(gpu_id, cloud) or 0.0)
        self._check_funds(cost)
        chosen = self.catalog.allocate(gpu_id, cloud, count)
        if chosen is None:
            if self.capacity_shape == "null":
                return None
            raise FakeApiError(CAPACITY_MESSAGE, "SUPPLY_CONSTRAINT")
        return self._add_pod(request, gpu_id, count, chosen)

    def _check_funds(self, cost: float) -> None:
        if self.spend_per_hour() + cost > self.spend_limit:
            raise FakeApiError(
                "INSUFFICIENT_BALANCE: Renting this pod would put you over your current spending limit "
                f"(${self.spend_limit:.2f}/hr)",
                "INSUFFICIENT_BALANCE",
            )
        if self.balance < cost:
            raise FakeApiError(
                f"INSUFFICIENT_BALANCE: You need at least one hour of credit (${cost:.2f}) to deploy this pod",
                "INSUFFICIENT_BALANCE",
            )

    def _add_pod(self, request: Mapping[str, Any], gpu_id: str, count: int, cloud: str) -> FakePod:
        pod_id = "".join(self._random.choices(string.ascii_lowercase + string.digits, k=14))
        env = [(str(item["key"]), str(item["value"])) for item in request.get("env") or [] if item]
        cost = round(count * (self.catalog.price(gpu_id, cloud) or 0.0), 4)
        pod = FakePod(
            id=pod_id,
            name=str(request.get("name") or ""),
            image_name=str(request.get("imageName") or ""),
            gpu_type_id=gpu_id,
            gpu_count=count,
            cloud_type=cloud,
            cost_per_hr=cost,
            created_at=self.now,
            phase_since=self.now,
            env=env,
            docker_args=str(request.get("dockerArgs") or ""),
            ports=request.get("ports"),
            data_center_id=request.get("dataCenterId"),
            network_volume_id=request.get("networkVolumeId"),
            volume_in_gb=int(request.get("volumeInGb") or 0),
            container_disk_in_gb=int(request.get("containerDiskInGb") or 10),
            volume_mount_path=str(request.get("volumeMountPath") or "/runpod-volume"),
            terminate_after=parse_deadline(request.get("terminateAfter")),
            stop_after=parse_deadline(request.get("stopAfter")),
            machine_id=f"m{len(self.pods) + 1:05d}",
            pod_host_id=f"{pod_id}-{len(self.pods) + 1}",
            last_status_change=f"Rented by User: {_status_time(self.now)}",
        )
        pod.pod_key = self.mint_key(pod_id)
        self.pods[pod_id] = pod
        self._enter(pod, Phase.PROVISIONING)
        return pod

    # --- lifecycle --------------------------------------------------------------------------------------
    def stop(self, pod_id: str) -> FakePod:
        pod = self._require(pod_id, "pod not found")
        if pod.phase is not Phase.EXITED:
            self.catalog.release(pod.gpu_type_id, pod.cloud_type, pod.gpu_count)
            pod.last_status_change = f"Exited by user: {_status_time(self.now)}"
            self._enter(pod, Phase.EXITED)
        return pod

    def resume(self, pod_id: str, gpu_count: int) -> FakePod:
        pod = self._require(pod_id, "pod not found")
        if pod.phase is not Phase.EXITED:
            raise FakeApiError("Pod is not stopped", "BAD_USER_INPUT")
        if self.catalog.allocate(pod.gpu_type_id, pod.cloud_type, gpu_count) is None:
            raise FakeApiError(RESUME_CAPACITY_MESSAGE, "SUPPLY_CONSTRAINT")
        pod.gpu_count = gpu_count
        self._enter(pod, Phase.PROVISIONING)
        return pod

    def terminate(self, pod_id: str) -> None:
        pod = self._require(pod_id, "pod not found to terminate")
        if pod.phase is not Phase.EXITED:
            self.catalog.release(pod.gpu_type_id, pod.cloud_type, pod.gpu_count)
        self._enter(pod, Phase.TERMINATED)

    def container_exit(self, pod_id: str, code: int) -> FakePod:
        """The container's main process ended: RunPod restarts it (and keeps billing)."""
        pod = self._require(pod_id, "pod not found")
        if pod.phase not in (Phase.RUNNING, Phase.PROVISIONING):
            raise ValueError(f"pod {pod_id} is {pod.phase}, no container is running")
        pod.exit_codes.append(code)
        pod.restart_count += 1
        self._enter(pod, Phase.RESTARTING)
        return pod

    def _require(self, pod_id: str, message: str) -> FakePod:
        pod = self.find(pod_id)
        if pod is None:
            raise FakeApiError(message, "POD_NOT_FOUND")
        return pod

    def _enter(self, pod: FakePod, phase: Phase) -> None:
        pod.phase, pod.phase_since = phase, self.now
        if self.phase_listener is not None:
            self.phase_listener(pod, phase)
        delay = {Phase.PROVISIONING: self.provision_delay, Phase.RESTARTING: self.restart_delay}.get(phase)
        if delay is not None and delay <= 0:
            self._enter(pod, Phase.RUNNING)
        elif phase is Phase.RUNNING:
            pod.started_at = self.now

    # --- time -------------------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move the virtual clock, applying every event that falls inside the interval, in order."""
        if seconds < 0:
            raise ValueError("the virtual clock only moves forward")
        target = self.now + timedelta(seconds=seconds)
        while True:
            step = min([target, *(t for t in self._pending_events() if t > self.now)])
            self._bill(step)
            self.now = step
            self._apply_due()
            if step >= target:
                return

    def _pending_events(self) -> Iterator[datetime]:
        for pod in self.live_pods():
            yield from (t for t in (pod.terminate_after, pod.stop_after) if t is not None and t > self.now)
            delay = {Phase.PROVISIONING: self.provision_delay, Phase.RESTARTING: self.restart_delay}.get(pod.phase)
            if delay is not None:
                yield pod.phase_since + timedelta(seconds=delay)
        rate = self.spend_per_hour()
        if rate > 0 and self.balance > 0:
            yield self.now + timedelta(hours=self.balance / rate)

    def _bill(self, until: datetime) -> None:
        seconds = (until - self.now).total_seconds()
        for pod in self.live_pods():
            if pod.phase in _BILLED:
                amount = pod.cost_per_hr * seconds / 3600
            else:
                amount = pod.volume_in_gb * _STOPPED_VOLUME_RATE * seconds / _SECONDS_PER_MONTH
            pod.billed_usd += amount
            self.balance -= amount

    def _apply_due(self) -> None:
        for pod in self.live_pods():
            if pod.terminate_after is not None and pod.terminate_after <= self.now:
                self.terminate(pod.id)
            elif pod.stop_after is not None and pod.stop_after <= self.now and pod.phase is not Phase.EXITED:
                self.stop(pod.id)
            elif pod.phase in (Phase.PROVISIONING, Phase.RESTARTING):
                delay = self.provision_delay if pod.phase is Phase.PROVISIONING else self.restart_delay
                if pod.phase_since + timedelta(seconds=delay) <= self.now:
                    self._enter(pod, Phase.RUNNING)
        if self.balance <= 1e-6 and self.spend_per_hour() > 0:
            self._out_of_money()

    def _out_of_money(self) -> None:
        """At a zero balance RunPod stops every pod and terminates those without a network volume."""
        for pod in self.live_pods():
            if pod.network_volume_id:
                self.stop(pod.id)
            else:
                self.terminate(pod.id)


__all__ = [
    "CAPACITY_MESSAGE",
    "FakeApiError",
    "FakePod",
    "Phase",
    "Principal",
    "RunPodState",
    "parse_deadline",
]
