"""Trained adapters, costs and notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from ._base import Model


class ArtifactFile(Model):
    name: str
    """Path relative to the artifact folder, e.g. ``adapter_model.safetensors``."""
    size: int
    sha256: str


class Artifact(Model):
    """A row of ``model_artifacts``: a folder of files under ``lora-models/<user>/<job>/``."""

    id: str
    job_id: str
    user_id: str
    storage_bucket: str = "lora-models"
    storage_path: str
    """Folder prefix inside the bucket, ending with ``/``."""
    files: list[ArtifactFile] = Field(default_factory=list)
    size_bytes: int = 0
    sha256: str | None = None
    """SHA-256 of the sorted ``name:sha256`` manifest."""
    adapter_config: dict[str, Any] | None = None
    created_at: datetime | None = None


class CostRecord(Model):
    """What one attempt of a job cost, from our own timestamps times the pod's hourly price."""

    id: str
    job_id: str
    user_id: str
    attempt: int
    gpu_type: str | None = None
    hourly_rate: float
    seconds: float
    amount_usd: float
    started_at: datetime | None = None
    ended_at: datetime | None = None
    recorded_at: datetime | None = None
    billed_usd: float | None = None
    """What the provider billed for this attempt (RunPod REST billing), recorded after the job ended."""
    billed_at: datetime | None = None


class CostSummary(Model):
    total_usd: float
    jobs: int
    seconds: float
    by_gpu_type: dict[str, float] = Field(default_factory=dict)
    by_job: dict[str, float] = Field(default_factory=dict)


class Notification(Model):
    id: str
    user_id: str
    job_id: str | None = None
    kind: str
    severity: str
    title: str
    body: str | None = None
    data: dict[str, Any] | None = None
    read_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def unread(self) -> bool:
        return self.read_at is None


__all__ = ["Artifact", "ArtifactFile", "CostRecord", "CostSummary", "Notification"]
