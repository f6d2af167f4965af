"""Where a job's pod runs: the :class:`PodBackend` protocol and the values it exchanges (DESIGN §8)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from .._compat import StrEnum
from .images import DEFAULT_IMAGE


class PodPackage(BaseModel):
    """What the bootstrap installs: the launcher's wheel in the job's Storage folder, or a named requirement."""

    model_config = ConfigDict(frozen=True)

    wheel_object: str | None = None
    """Object name in ``lora-models`` (``<user>/<job>/_launch/lora_pipeline-...whl``)."""
    wheel_sha256: str | None = None
    """Checked in the pod before pip sees the file."""
    requirement: str | None = None
    """A published requirement the user named explicitly (``lora-pipeline[train]==0.2.0``); else ``None``."""


class PodSpec(BaseModel):
    """Everything needed to launch one attempt of one job. ``env`` never holds the service-role key.

    The backend turns it into the container's env and command (:mod:`lora_pipeline.pod.launch`).
    """

    model_config = ConfigDict(frozen=True)

    job_id: str
    attempt: int = 1
    name: str
    """``lp-<job_id>-<attempt>``: a retried launch finds the pod instead of creating a second one."""
    image: str = DEFAULT_IMAGE
    gpu_type: str | None = None
    """GPU key (see :mod:`lora_pipeline.gpus`); ``None`` for the local backend."""
    env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    """The pod's environment; holds the job token, so reprs show only the variable names."""
    user_env: Mapping[str, str] = Field(default_factory=dict, repr=False)
    """Plain variables the user asked for (checked: no service credentials, no launcher names)."""
    secrets: Mapping[str, str] = Field(default_factory=dict)
    """Variable name -> RunPod secret name; sent as ``{{ RUNPOD_SECRET_<name> }}`` references, never values."""
    package: PodPackage | None = None
    """What a container backend's bootstrap installs; ``None`` for backends that run this interpreter."""
    max_runtime_seconds: int = 6 * 3600
    """The bootstrap's hard timeout around the pod program."""
    command: list[str] = Field(default_factory=list)
    """A command instead of the bootstrap (tests, custom images); normally empty."""
    terminate_after: datetime | None = None
    """Server-side deadline after which the pod is terminated whatever happens inside it."""
    container_disk_gb: int = 40
    volume_gb: int = 0

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield from super().__repr_args__()
        yield "env_names", sorted(self.env)


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
    name: str | None = None
    """The pod's name as the backend knows it (``lp-<job>-<attempt>``), when it reports one: how the control
    plane checks that a pod id stored on a job really is that job's pod before acting on it."""


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


def pod_belongs_to(status: PodStatus, job_id: str) -> bool:
    """Whether the backend's pod is one of ``job_id``'s attempts; a backend that reports no name cannot say."""
    if status.name is None:
        return True
    parsed = job_id_from_pod_name(status.name)
    return parsed is not None and parsed[0] == job_id


def job_id_from_pod_name(name: str) -> tuple[str, int] | None:
    """``(job_id, attempt)`` from a pod name made by :func:`pod_name`, else ``None``."""
    if not name.startswith("lp-"):
        return None
    head, _, attempt = name[3:].rpartition("-")
    return (head, int(attempt)) if head and attempt.isdigit() else None


__all__ = [
    "PodBackend",
    "PodHandle",
    "PodPackage",
    "PodSpec",
    "PodState",
    "PodStatus",
    "job_id_from_pod_name",
    "pod_belongs_to",
    "pod_name",
]
