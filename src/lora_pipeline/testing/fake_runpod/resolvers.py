"""Root resolvers: what each query and mutation does to :class:`RunPodState`, and how pods look on the wire.

graphql-core's default resolver reads dict keys and calls callables, so the root value is a plain dict of
functions and every object is a dict shaped like RunPod's reply; graphql-core then keeps only the fields a
request selected, exactly as the real server does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from graphql import GraphQLError

from .state import FakeApiError, FakePod, Phase, Principal, RunPodState

_POD_SCOPED_FIELDS = frozenset({"pod", "podStop", "podTerminate"})
_FIRST_PUBLIC_PORT = 10000
_DESIRED_STATUS = {
    Phase.PROVISIONING: "RUNNING",  # the *desired* status reads RUNNING from the moment of renting
    Phase.RUNNING: "RUNNING",
    Phase.RESTARTING: "RUNNING",
    Phase.EXITED: "EXITED",
    Phase.TERMINATED: "TERMINATED",
}


class ResolveInfo(Protocol):
    """The part of graphql-core's ``GraphQLResolveInfo`` used here (its generic form differs across 3.2/3.3)."""

    @property
    def field_name(self) -> str: ...

    @property
    def context(self) -> Any: ...


@dataclass
class RequestContext:
    """Who is calling; passed to every resolver as ``info.context``."""

    principal: Principal
    state: RunPodState


def _refusal(error: FakeApiError) -> GraphQLError:
    return GraphQLError(error.message, extensions={"code": error.code})


def _authorize(info: ResolveInfo, pod_id: str | None = None) -> RequestContext:
    """A pod-scoped key may only read, stop or terminate its own pod (research/runpod.md §2.1)."""
    context: RequestContext = info.context
    scope = context.principal.pod_id
    if scope is not None and (info.field_name not in _POD_SCOPED_FIELDS or pod_id != scope):
        raise GraphQLError(
            "Forbidden: this API key is scoped to a single pod and cannot perform this operation",
            extensions={"code": "FORBIDDEN"},
        )
    return context


def pod_view(pod: FakePod, state: RunPodState) -> dict[str, Any]:
    """A pod as the ``Pod`` type returns it."""
    running = pod.phase is Phase.RUNNING
    uptime = int((state.now - pod.started_at).total_seconds()) if running and pod.started_at else 0
    entry = state.catalog.entries.get(pod.gpu_type_id)
    return {
        "id": pod.id,
        "name": pod.name,
        "imageName": pod.image_name,
        "podType": "RESERVED",
        "desiredStatus": _DESIRED_STATUS[pod.phase],
        "lastStatusChange": pod.last_status_change,
        "runtime": _runtime(pod, uptime) if running else None,
        "uptimeSeconds": uptime,
        "costPerHr": pod.cost_per_hr,
        "adjustedCostPerHr": pod.cost_per_hr,
        "env": [f"{key}={value}" for key, value in pod.env],
        "machineId": pod.machine_id,
        "machine": {
            "podHostId": pod.pod_host_id,
            "gpuTypeId": pod.gpu_type_id,
            "dataCenterId": pod.data_center_id,
            "gpuDisplayName": entry.display_name if entry else pod.gpu_type_id,
            "location": None,
        },
        "gpuCount": pod.gpu_count,
        "vcpuCount": 8.0 * pod.gpu_count,
        "memoryInGb": 50.0 * pod.gpu_count,
        "containerDiskInGb": pod.container_disk_in_gb,
        "volumeInGb": float(pod.volume_in_gb),
        "volumeMountPath": pod.volume_mount_path,
        "dockerArgs": pod.docker_args,
        "dockerId": None,
        "port": None,
        "ports": pod.ports,
        "createdAt": pod.created_at.isoformat(),
        "lastStartedAt": pod.started_at.isoformat() if pod.started_at else None,
    }


def _runtime(pod: FakePod, uptime: int) -> dict[str, Any]:
    number = int(pod.machine_id.lstrip("m") or 0)
    ports = [
        {
            "ip": "203.0.113.10",
            "isIpPublic": True,
            "privatePort": 22,
            "publicPort": _FIRST_PUBLIC_PORT + number,
            "type": "tcp",
        },
    ]
    return {"uptimeInSeconds": uptime, "ports": ports, "gpus": [], "container": None}


def _user(info: ResolveInfo) -> dict[str, Any]:
    state = _authorize(info).state
    return {
        "id": "user_fake",
        "pubKey": "",
        "clientBalance": round(state.balance, 6),
        "currentSpendPerHr": state.spend_per_hour(),
        "spendLimit": state.spend_limit,
        "networkVolumes": [],
        "endpoints": [],
        "pods": [pod_view(pod, state) for pod in state.live_pods()],
    }


def _pod(info: ResolveInfo, input: dict[str, Any]) -> dict[str, Any] | None:
    state = _authorize(info, input["podId"]).state
    pod = state.find(input["podId"])
    return pod_view(pod, state) if pod else None


def _gpu_types(info: ResolveInfo, input: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return _authorize(info).state.catalog.gpu_types((input or {}).get("id"))


def _deploy(info: ResolveInfo, input: dict[str, Any] | None = None) -> dict[str, Any] | None:
    state = _authorize(info).state
    try:
        pod = state.create(input or {})
    except FakeApiError as error:
        raise _refusal(error) from error
    return pod_view(pod, state) if pod else None


def _lifecycle(action: Callable[..., FakePod | None]) -> Callable[..., dict[str, Any] | None]:
    """Wrap a state transition taking ``podId`` (and other input fields) as a resolver."""

    def resolve(info: ResolveInfo, input: dict[str, Any]) -> dict[str, Any] | None:
        state = _authorize(info, input["podId"]).state
        try:
            pod = action(state, **input)
        except FakeApiError as error:
            raise _refusal(error) from error
        return pod_view(pod, state) if pod else None

    return resolve


def _update_user(info: ResolveInfo, input: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**_user(info), "pubKey": (input or {}).get("pubKey") or ""}


ROOT: dict[str, Any] = {
    "myself": _user,
    "pod": _pod,
    "gpuTypes": _gpu_types,
    "podFindAndDeployOnDemand": _deploy,
    "deployCpuPod": _deploy,
    "podStop": _lifecycle(lambda state, podId: state.stop(podId)),
    "podResume": _lifecycle(lambda state, podId, gpuCount, **_: state.resume(podId, gpuCount)),
    "podTerminate": _lifecycle(lambda state, podId: state.terminate(podId)),
    "updateUserSettings": _update_user,
}
"""The root value for every operation (query and mutation fields share one namespace)."""

__all__ = ["ROOT", "RequestContext", "pod_view"]
