"""Training jobs, their events, credentials and cost estimates."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from .._compat import StrEnum
from ._base import Model


class JobStatus(StrEnum):
    """The lifecycle of DESIGN §5 (enforced by a SQL trigger)."""

    CREATED = "created"
    VALIDATING = "validating"
    QUEUED = "queued"
    PROVISIONING = "provisioning"
    RUNNING = "running"
    UPLOADING = "uploading"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


ACTIVE_STATUSES = (
    JobStatus.QUEUED,
    JobStatus.PROVISIONING,
    JobStatus.RUNNING,
    JobStatus.UPLOADING,
    JobStatus.CANCELLING,
)


class FailureReason(StrEnum):
    """Why a job failed (``training_jobs.status_reason``)."""

    VALIDATION_FAILED = "validation_failed"
    NO_CAPACITY = "no_capacity"
    PROVISION_TIMEOUT = "provision_timeout"
    CONTAINER_ERROR = "container_error"
    TRAINING_ERROR = "training_error"
    OOM = "oom"
    MAX_RUNTIME_EXCEEDED = "max_runtime_exceeded"
    POD_LOST = "pod_lost"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    UPLOAD_FAILED = "upload_failed"
    GATE_FAILED = "gate_failed"
    BUDGET_EXCEEDED = "budget_exceeded"
    DEPLOY_ERROR = "deploy_error"


class TrainingJob(Model):
    """A row of ``training_jobs``."""

    id: str
    user_id: str
    dataset_id: str
    name: str | None = None
    base_model: str
    preset: str = "balanced"
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    gpu_type: str | None = None
    backend: str | None = None
    pod_id: str | None = None
    status: JobStatus
    status_reason: str | None = None
    attempt: int = 1
    cost_per_hour: float | None = None
    max_runtime_seconds: int = 21600
    max_cost_usd: float | None = None
    gates: dict[str, Any] | None = None
    """Regression gate run on success: ``{"model_name": ..., "strict": bool, "fail_open": bool}``."""
    progress: dict[str, Any] = Field(default_factory=dict)
    """What the pod reported: step, total_steps, epoch, train_loss, eval_loss, tokens_per_second."""
    heartbeat_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    job_token_hash: str | None = Field(default=None, exclude=True, repr=False)
    """SHA-256 of the job token: read for nothing, so kept out of dumps, JSON and reprs."""

    @property
    def terminal(self) -> bool:
        return self.status.terminal

    @property
    def max_runtime(self) -> timedelta:
        return timedelta(seconds=self.max_runtime_seconds)

    @property
    def fraction_done(self) -> float | None:
        step, total = self.progress.get("step"), self.progress.get("total_steps")
        if isinstance(step, (int, float)) and isinstance(total, (int, float)) and total > 0:
            return min(1.0, step / total)
        return None

    def runtime_seconds(self, now: datetime | None = None) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or now or datetime.now(self.started_at.tzinfo)
        return max(0.0, (end - self.started_at).total_seconds())

    @property
    def failure_message(self) -> str | None:
        """What went wrong, in words (``error.message``), for a failed job; else ``None``."""
        message = self.error.get("message") if isinstance(self.error, dict) else None
        return str(message) if message else None

    def status_text(self) -> str:
        """``failed (training_error): CUDA out of memory``: status, reason and message in one line."""
        text = f"{self.status}" + (f" ({self.status_reason})" if self.status_reason else "")
        return f"{text}: {self.failure_message}" if self.failure_message else text

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # Short and secret-free: no job_token_hash (kept in model_extra), no hyperparameter dump.
        for name in ("id", "name", "status", "status_reason", "base_model", "gpu_type", "pod_id"):
            value = getattr(self, name)
            if value is not None:
                yield name, str(value) if name == "status" else value

    def display_rows(self) -> list[tuple[str, str]]:
        """The (label, value) lines of the terminal and notebook views."""
        return list(self._rows())

    def _rows(self) -> Iterator[tuple[str, str]]:
        yield "job", f"{self.name or ''} {self.id}".strip()
        yield "status", self.status_text()
        yield "model", self.base_model
        fraction = self.fraction_done
        if fraction is not None:
            yield "progress", f"{self.progress.get('step')}/{self.progress.get('total_steps')} ({fraction:.0%})"
        for key in ("train_loss", "eval_loss"):
            value = self.progress.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):  # a pod's value: check its type
                yield key, f"{value:.4g}"
        if self.cost_per_hour is not None:
            yield "price", f"${self.cost_per_hour:.2f}/h on {self.gpu_type or self.backend or 'pod'}"
        runtime = self.runtime_seconds()
        if runtime is not None:
            cost = f", ~${runtime / 3600 * (self.cost_per_hour or 0):.2f}" if self.cost_per_hour else ""
            yield "runtime", f"{timedelta(seconds=round(runtime))}{cost}"

    def __rich__(self) -> Any:
        from rich.table import Table

        table = Table(show_header=False, box=None, pad_edge=False)
        for key, value in self._rows():
            table.add_row(f"[bold]{key}[/bold]", value)
        return table

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
            for k, v in self._rows()
        )
        return f"<table>{rows}</table>"


class JobEvent(Model):
    """One entry of a job's timeline (``job_events``)."""

    id: int
    job_id: str
    level: str
    kind: str
    message: str
    data: dict[str, Any] | None = None
    created_at: datetime | None = None


class JobCredentials(Model):
    """What a machine needs to report for one job (bring your own compute). The token is shown once."""

    job_id: str
    token: str = Field(repr=False)
    url: str
    anon_key: str = Field(repr=False)
    expires_at: datetime

    def env(self) -> dict[str, str]:
        """``LORA_JOB_ID``, ``LORA_JOB_TOKEN``, ``SUPABASE_URL``, ``SUPABASE_ANON_KEY`` for the training process."""
        from ..pod import launch

        return {
            launch.JOB_ID: self.job_id,
            launch.JOB_TOKEN: self.token,
            launch.SUPABASE_URL: self.url,
            launch.SUPABASE_ANON_KEY: self.anon_key,
        }


class CostEstimate(Model):
    """A cost range before launch: never a promise."""

    gpu_type: str
    steps: int
    tokens: int
    seconds_low: float
    seconds_high: float
    hourly_rate: float
    price_source: str
    """``live`` (RunPod) or ``list`` (the built-in fallback price)."""
    usd_low: float
    usd_high: float
    memory_gb: float | None = None

    def __str__(self) -> str:
        duration = f"{_duration(self.seconds_low)}-{_duration(self.seconds_high)}"
        return (
            f"{self.steps} steps on {self.gpu_type}: {duration} at ${self.hourly_rate:.2f}/h ({self.price_source}) "
            f"= ${self.usd_low:.2f}-${self.usd_high:.2f}"
        )


def _duration(seconds: float) -> str:
    """``40 s``, ``12 min``, ``3.5 h``: a range's ends in the unit a person would use."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["ACTIVE_STATUSES", "CostEstimate", "FailureReason", "JobCredentials", "JobEvent", "JobStatus", "TrainingJob"]
