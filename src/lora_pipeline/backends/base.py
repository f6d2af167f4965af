"""Where a job's pod runs: the :class:`PodBackend` protocol and the values it exchanges (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .._compat import StrEnum


class PodSpec(BaseModel):
    """Everything needed to launch one attempt of one job. ``env`` never holds the service-role key."""

    model_config = ConfigDict(frozen=True)

    job_id: str
    attempt: int = 1
    name: str
    """``lp-<job_id>-<attempt>``: a retried launch finds the pod instead of creating a second one."""
    image: str = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
    gpu_type: str | None = None
    """GPU key (see :mod:`lora_pipeline.gpus`); ``None`` for the local backend."""
    env: Mapping[str, str] = Field(default_factory=dict)
    command: list[str] = Field(default_factory=list)
    """What the container runs (the bootstrap); the local backend runs the pod program directly."""
    terminate_after: datetime | None = None
    """Server-side deadline after which the pod is terminated whatever happens inside it."""
    container_disk_gb: int = 40
    volume_gb: int = 0


class PodState(StrEnum):
    """Infrastructure state of a pod (the job's own state comes from what the pod reports)."""

    PROVISIONING = "provisioning"
    RUNNING = "running"
    EXITED = "exited"
    TERMINATED = "terminated"
    UNKNOWN = "unknown"


class PodHandle(BaseModel):
    """A launched pod."""

    model_config = ConfigDict(extra="allow")

    backend: str
    pod_id: str
    name: str
    gpu_type: str | None = None
    cost_per_hour: float | None = None
    created_at: datetime | None = None


class PodStatus(BaseModel):
    """What the backend reports about a pod now."""

    model_config = ConfigDict(extra="allow")

    pod_id: str
    state: PodState
    cost_per_hour: float | None = None
    exit_code: int | None = None
    detail: str | None = None


@runtime_checkable
class PodBackend(Protocol):
    """A place to run pods. Implementations: :class:`RunPodBackend`, :class:`LocalBackend`."""

    name: str

    def launch(self, spec: PodSpec) -> PodHandle:
        """Start a pod for ``spec`` (idempotent by ``spec.name``)."""

    def status(self, handle: PodHandle) -> PodStatus:
        """The pod's infrastructure state."""

    def terminate(self, handle: PodHandle) -> None:
        """Make sure the pod is gone; a pod that is already gone is not an error."""

    def price(self, gpu_type: str | None) -> float | None:
        """USD per hour for one pod of ``gpu_type``, when known."""

    def list_pods(self, prefix: str = "lp-") -> list[PodHandle]:
        """Pods whose name starts with ``prefix`` (for reaping strays)."""


def pod_name(job_id: str, attempt: int) -> str:
    """The deterministic pod name of one attempt of a job."""
    return f"lp-{job_id}-{attempt}"


def job_id_from_pod_name(name: str) -> tuple[str, int] | None:
    """``(job_id, attempt)`` from a pod name made by :func:`pod_name`, else ``None``."""
    if not name.startswith("lp-"):
        return None
    head, _, attempt = name[3:].rpartition("-")
    return (head, int(attempt)) if head and attempt.isdigit() else None


__all__ = ["PodBackend", "PodHandle", "PodSpec", "PodState", "PodStatus", "job_id_from_pod_name", "pod_name"]
