"""The control-plane side of a job, as plans: status moves, events, cost accounting and reconciliation.

The job's truth is what its pod reports to Supabase (DESIGN §5); the backend's pod state is only
infrastructure health. Reconciling a job (``lp.jobs.sync`` / ``wait_for_completion``) therefore only acts on
what the pod cannot report itself: a pod that vanished or stopped heartbeating, a runtime or budget that ran
out, a cancel request, and pods left running after their job ended (RunPod restarts exited containers and
keeps billing, research/runpod.md §0.4).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from .._exceptions import InvalidTransition, LoraPipelineError
from .._ops import Offload, Plan
from ..backends.base import PodBackend, PodHandle, PodState, PodStatus, pod_belongs_to, pod_name
from ..types.jobs import JobStatus, TrainingJob
from ._common import one, rows, rpc, table

HEARTBEAT_TIMEOUT = timedelta(minutes=10)
PROVISION_TIMEOUT = timedelta(minutes=20)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def fetch_job(job_id: str) -> Plan[TrainingJob]:
    result = yield table("training_jobs", lambda t: t.select("*").eq("id", job_id))
    return TrainingJob.model_validate(one(result, "job", job_id))


def move(
    job: TrainingJob,
    status: JobStatus,
    *,
    reason: str | None = None,
    error: dict[str, Any] | None = None,
    backend: str | None = None,
) -> Plan[TrainingJob]:
    """Change the job's status through ``job_move`` (owner or service role; the SQL trigger refuses illegal
    moves and writes the event). Running, uploading and succeeded are the pod's to report."""
    params = {"job_id": job.id, "status": status.value, "reason": reason, "error": error, "backend": backend}
    result = yield rpc("job_move", params, idempotent=False)
    return TrainingJob.model_validate(one(result, "job", job.id))


def fail(job: TrainingJob, reason: str, message: str) -> Plan[TrainingJob]:
    """Mark a live job failed (no-op when it already ended) and record why."""
    if job.terminal:
        return job
    try:
        return (yield from move(job, JobStatus.FAILED, reason=reason, error={"reason": reason, "message": message}))
    except InvalidTransition:
        return (yield from fetch_job(job.id))


def event(
    job: TrainingJob,
    kind: str,
    message: str,
    *,
    level: str = "info",
    data: dict[str, Any] | None = None,
) -> Plan[None]:
    row = {"job_id": job.id, "user_id": job.user_id, "level": level, "kind": kind, "message": message, "data": data}
    yield table("job_events", lambda t: t.insert(row, returning="minimal"), idempotent=False)


def handle_for(job: TrainingJob, backend: PodBackend) -> PodHandle | None:
    if not job.pod_id:
        return None
    getter = getattr(backend, "handle_for", None)
    known = getter(job.pod_id) if getter else None
    return known or PodHandle(
        backend=backend.name,
        pod_id=job.pod_id,
        name=pod_name(job.id, job.attempt),
        gpu_type=job.gpu_type,
        cost_per_hour=job.cost_per_hour,
    )


def record_launch(job: TrainingJob, handle: PodHandle) -> Plan[TrainingJob]:
    """Store the pod the backend launched (once per attempt) and open this attempt's cost record, in SQL."""
    params = {
        "job_id": job.id,
        "pod_id": handle.pod_id,
        "gpu_type": handle.gpu_type,
        "cost_per_hour": handle.cost_per_hour,
    }
    result = yield rpc("job_record_launch", params, idempotent=False)
    return TrainingJob.model_validate(one(result, "job", job.id))


def account_cost(job: TrainingJob) -> Plan[float]:
    """Bring this attempt's cost record up to date (the job's rate x the database clock); the job's total USD."""
    result = yield rpc("job_account_cost", {"job_id": job.id})
    return float(result.data or 0.0)


def terminate_pod(job: TrainingJob, backend: PodBackend | None) -> Plan[None]:
    """Terminate the job's pod, after checking with the backend that the stored pod id is this job's pod.

    ``pod_id`` came from a row; whoever runs this (often the service role, for every tenant) must never act on
    a pod of another job because a row said so.
    """
    handle = handle_for(job, backend) if backend is not None else None
    if handle is None or backend is None:
        return
    try:
        status = yield Offload(backend.status, (handle,))
        if not pod_belongs_to(status, job.id):
            yield from _foreign_pod(job, status)
            return
        if status.state is PodState.TERMINATED:  # already gone: no second terminate request
            return
        yield Offload(backend.terminate, (handle,))
    except LoraPipelineError as error:
        yield from event(job, "pod", f"could not terminate pod {handle.pod_id}: {error.message}", level="warning")


def _foreign_pod(job: TrainingJob, status: PodStatus) -> Plan[None]:
    message = f"pod {status.pod_id} is {status.name!r}, not a pod of this job: left alone"
    yield from event(job, "pod", message, level="warning", data={"pod_id": status.pod_id, "pod_name": status.name})


def reconcile(job: TrainingJob, backend: PodBackend | None, now: datetime) -> Plan[TrainingJob]:
    """Act on what the pod cannot report itself; returns the job as it is afterwards."""
    costed = False
    if job.status is JobStatus.CANCELLING:
        yield from terminate_pod(job, backend)
        job = yield from _finish_cancel(job)
    elif job.status in (JobStatus.PROVISIONING, JobStatus.RUNNING, JobStatus.UPLOADING):
        before = job.status
        job = yield from _check_live(job, backend, now)
        costed = job.status is before  # still live: _check_live has just brought the cost up to date
    elif job.terminal and job.pod_id and backend is not None:
        yield from terminate_pod(job, backend)
    if job.pod_id and job.status is not JobStatus.CREATED and not costed:
        yield from account_cost(job)
    if job.terminal and job.pod_id and backend is not None and not (yield from _billing_recorded(job)):
        yield from record_billing(job, backend)
    return job


def _billing_recorded(job: TrainingJob) -> Plan[bool]:
    def build(t: Any) -> Any:
        return t.select("billed_at").eq("job_id", job.id).eq("attempt", job.attempt).not_.is_("billed_at", "null")

    return bool(rows((yield table("cost_records", build))))


def record_billing(job: TrainingJob, backend: PodBackend) -> Plan[None]:
    """Once a job ended, store what the provider billed for its pod beside our estimate (when it says)."""
    billed_since = getattr(backend, "billed_usd", None)
    handle = handle_for(job, backend)
    since = job.started_at or job.created_at
    if billed_since is None or handle is None or since is None:
        return
    try:
        billed = yield Offload(billed_since, (handle, since))
    except LoraPipelineError:
        return
    if billed is not None:
        yield rpc("job_record_billing", {"job_id": job.id, "billed_usd": billed}, idempotent=True)


def _finish_cancel(job: TrainingJob) -> Plan[TrainingJob]:
    """``cancelled`` unless the pod, stopping, already reported its own end."""
    latest = yield from fetch_job(job.id)
    if latest.terminal:
        return latest
    try:
        return (yield from move(latest, JobStatus.CANCELLED, reason="cancelled_by_user"))
    except InvalidTransition:
        return (yield from fetch_job(job.id))


def _check_live(job: TrainingJob, backend: PodBackend | None, now: datetime) -> Plan[TrainingJob]:
    cost = yield from account_cost(job)
    problem = _overrun(job, cost, now)
    if problem is None and backend is not None and job.pod_id:
        handle = handle_for(job, backend)
        status = (yield Offload(backend.status, (handle,))) if handle else None
        state = status.state if status is not None else PodState.UNKNOWN
        if status is not None and not pod_belongs_to(status, job.id):
            problem = ("pod_lost", f"pod {job.pod_id} is not a pod of this job ({status.name!r})")
        elif state in (PodState.EXITED, PodState.TERMINATED):
            latest = yield from fetch_job(job.id)
            if latest.terminal:
                return latest
            if latest.status is JobStatus.CANCELLING:  # a cancel ended the pod meanwhile: finish it, not pod_lost
                return (yield from _finish_cancel(latest))
            problem = ("pod_lost", f"pod {job.pod_id} is {state} but the job never reported an end")
    if problem is None:
        return job
    reason, message = problem
    job = yield from fail(job, reason, message)  # first: the pod's own report on SIGTERM must not win
    yield from terminate_pod(job, backend)
    return job


def _overrun(job: TrainingJob, cost: float, now: datetime) -> tuple[str, str] | None:
    if job.max_cost_usd is not None and cost >= job.max_cost_usd:
        return "budget_exceeded", f"spent ${cost:.2f} of the ${job.max_cost_usd:.2f} budget"
    runtime = job.runtime_seconds(now)
    if runtime is not None and runtime > job.max_runtime_seconds:
        return "max_runtime_exceeded", f"ran {runtime / 3600:.2f} h, more than the {job.max_runtime} allowed"
    last_sign = job.heartbeat_at or job.started_at
    if job.status is JobStatus.PROVISIONING and last_sign is None and job.updated_at is not None:
        if now - job.updated_at > PROVISION_TIMEOUT:
            return "provision_timeout", f"no sign of the pod after {PROVISION_TIMEOUT}"
        return None
    if last_sign is not None and now - last_sign > HEARTBEAT_TIMEOUT:
        return "pod_lost", f"no heartbeat for {(now - last_sign).total_seconds() / 60:.0f} minutes"
    return None


__all__ = [
    "HEARTBEAT_TIMEOUT",
    "PROVISION_TIMEOUT",
    "account_cost",
    "event",
    "fail",
    "fetch_job",
    "handle_for",
    "move",
    "reconcile",
    "record_billing",
    "record_launch",
    "terminate_pod",
    "utcnow",
]
