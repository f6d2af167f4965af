"""How the fake's pods, catalog, data centres and bills look on RunPod REST v2 (shapes from its OpenAPI document).

Every view is checked against the document's response schemas in ``tests/unit/runpod`` so the fake cannot
drift from what the backend will meet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from .catalog import GpuEntry
from .state import FakePod, Phase, RunPodState

DATA_CENTERS: dict[str, tuple[str, str]] = {
    "US-TX-3": ("US Texas 3", "NORTH_AMERICA"),
    "EU-RO-1": ("EU Romania 1", "EUROPE"),
    "US-CA-2": ("US California 2", "NORTH_AMERICA"),
}
"""The fake's data centres (id → name, region); every GPU type is offered in each of them."""

STATUS = {
    Phase.PROVISIONING: "PROVISIONING",
    Phase.RUNNING: "RUNNING",
    Phase.RESTARTING: "STARTING",  # RunPod brings an exited container back up; it passes through STARTING
    Phase.EXITED: "EXITED",
    Phase.TERMINATED: "TERMINATED",
}
ACTIONS = {
    "PROVISIONING": ["stop", "terminate"],
    "STARTING": ["stop", "terminate"],
    "RUNNING": ["stop", "restart", "terminate"],
    "EXITED": ["start", "terminate"],
    "ERROR": ["start", "terminate"],
    "TERMINATED": [],
}
"""The ``actions`` each status allows (``POST /v2/pods/{id}/action``'s description)."""


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod_view(pod: FakePod, state: RunPodState) -> dict[str, Any]:
    """A ``Pod`` as ``GET /v2/pods/{id}`` returns it."""
    status = STATUS[pod.phase]
    running = pod.phase is Phase.RUNNING
    uptime = int((state.now - pod.started_at).total_seconds()) if running and pod.started_at else 0
    mounts: dict[str, Any] = {}
    if pod.volume_in_gb:
        mounts["persistent"] = {"size": pod.volume_in_gb, "path": pod.volume_mount_path}
    ports = [p for p in (pod.ports or "").split(",") if p]
    return {
        "id": pod.id,
        "name": pod.name,
        "status": status,
        "actions": list(ACTIONS[status]),
        "image": pod.image_name,
        "args": pod.docker_args,
        "disk": pod.container_disk_in_gb,
        "mounts": mounts,
        "ports": ports,
        "env": dict(pod.env),
        "registry": None,
        "gpu": {"id": pod.gpu_type_id, "count": pod.gpu_count},
        "cloud": pod.cloud_type,
        "dataCenterId": pod.data_center_id,
        "cudaVersion": "12.8",
        "ssh": {
            "proxy": {
                "host": "ssh.runpod.io",
                "port": 22,
                "username": pod.pod_host_id,
                "command": f"ssh {pod.pod_host_id}@ssh.runpod.io",
            },
            "direct": None,
        },
        "template": None,
        "cost": pod.cost_per_hr if pod.phase in (Phase.PROVISIONING, Phase.RUNNING, Phase.RESTARTING) else 0.0,
        "locked": False,
        "globalNetworking": {"enabled": False},
        "runtime": {"uptime": uptime, "gpus": [], "ports": []} if running else None,
        "createdAt": iso(pod.created_at),
        "startedAt": iso(pod.started_at),
    }


def availability(free: int, *, lies: bool = False) -> str:
    """A stock count as RunPod's ``AvailabilityLevel``."""
    if lies:
        return "HIGH"
    if free <= 0:
        return "NONE"
    return "HIGH" if free >= 8 else "MEDIUM" if free >= 3 else "LOW"


def gpu_view(
    entry: GpuEntry,
    *,
    cloud: str,
    count: int,
    free: int,
    free_by_dc: Mapping[str, int] | None,
    lies: bool,
) -> dict[str, Any]:
    """A ``GpuType``. With include=AVAILABILITY, ``free`` (free GPUs in ``cloud``) and ``free_by_dc`` (per data
    centre) give ``availability`` and ``dataCenters``; without it ``free_by_dc`` is ``None``."""
    view: dict[str, Any] = {
        "id": entry.id,
        "name": entry.display_name,
        "pool": None,
        "manufacturer": "NVIDIA",
        "memory": entry.memory_gb,
        "secure": entry.secure_price is not None,
        "community": entry.community_price is not None,
        "price": {"secure": entry.secure_price or 0.0, "community": entry.community_price or 0.0},
        "maxCount": {"secure": 8, "community": 8},
    }
    if free_by_dc is not None:
        offered = (entry.secure_price if cloud == "SECURE" else entry.community_price) is not None
        view["availability"] = availability(free // count if offered else 0, lies=lies and offered)
        centres = [
            {"id": dc, "name": DATA_CENTERS[dc][0], "availability": availability(free // count, lies=lies)}
            for dc, free in free_by_dc.items()
            if offered and (free >= count or lies)
        ]
        if centres:
            view["dataCenters"] = centres
    return view


def data_center_view(dc: str, gpu_free: Iterable[tuple[GpuEntry, int]] | None) -> dict[str, Any]:
    """A ``DataCenter``; ``gpu_free`` (per GPU type, both clouds) is given with include=GPU_AVAILABILITY."""
    name, region = DATA_CENTERS[dc]
    view: dict[str, Any] = {
        "id": dc,
        "name": name,
        "region": region,
        "networkVolumeTypes": ["STANDARD"],
        "compliance": [],
        "globalNetwork": False,
    }
    if gpu_free is not None:
        view["gpuAvailability"] = [
            {"id": entry.id, "name": entry.display_name, "availability": availability(free)} for entry, free in gpu_free
        ]
    return view


def billing_view(pods: Iterable[FakePod], start: datetime, end: datetime, pod_filter: str | None) -> dict[str, Any]:
    """``GET /v2/billing/pods``: one bucket spanning the window, one record per pod billed in it."""
    records = []
    for pod in pods:
        amount = round(pod.billed_usd, 6)
        records.append(
            {
                "startTime": iso(start),
                "endTime": iso(end),
                "podId": pod.id,
                "totalAmount": amount,
                "gpuAmount": amount,
                "cpuAmount": 0.0,
                "diskAmount": 0.0,
            }
        )
    total = round(sum(float(r["totalAmount"] or 0.0) for r in records), 6)
    totals = {"totalAmount": total, "gpuAmount": total, "cpuAmount": 0.0, "diskAmount": 0.0}
    query = {"startTime": iso(start), "endTime": iso(end), "bucketSize": "hour", "podId": pod_filter}
    return {
        "records": records,
        "metadata": {
            "query": query,
            "recordCount": len(records),
            "uniquePodCount": len({r["podId"] for r in records}),
            "totals": totals,
        },
    }


__all__ = [
    "ACTIONS",
    "DATA_CENTERS",
    "STATUS",
    "availability",
    "billing_view",
    "data_center_view",
    "gpu_view",
    "pod_view",
]
