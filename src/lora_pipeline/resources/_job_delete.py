"""Deleting a job: its row, and with it (foreign keys ``on delete cascade``) its events, metrics, cost records,
notifications, gate results and artifact rows; then the artifact files in Storage.

Only a job that has ended or was never deployed can go (the owner's delete policy says the same), so a running
pod never loses the row it reports to. The row goes first: if Postgres refuses (the job is a condition's fixed
baseline), no file has been removed.
"""

from __future__ import annotations

from .._exceptions import ConfigError
from .._ops import Call, Plan
from ..types.jobs import JobStatus
from ._common import require_id, rows, table
from ._job_control import fetch_job

DELETABLE = (JobStatus.CREATED, JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


def delete_job(job_id: str) -> Plan[None]:
    """The plan behind ``lp.jobs.delete``."""
    job = yield from fetch_job(require_id(job_id, "job_id"))
    if job.status not in DELETABLE:
        raise ConfigError(
            f"job {job.id} is {job.status}: only a job that has ended (or was never deployed) can be deleted; "
            f"cancel it first (lp.jobs.cancel / lora-pipeline jobs cancel {job.id[:8]})",
            argument="job_id",
        )
    artifacts = rows(
        (yield table("model_artifacts", lambda t: t.select("storage_bucket, storage_path, files").eq("job_id", job.id)))
    )
    yield table("training_jobs", lambda t: t.delete(returning="minimal").eq("id", job.id), what=f"delete job {job.id}")
    for artifact in artifacts:
        names = [str(artifact["storage_path"]) + str(f["name"]) for f in artifact.get("files") or []]
        if names:
            yield _remove(str(artifact["storage_bucket"]), names, job.id)


def _remove(bucket: str, names: list[str], job_id: str) -> Call:
    return Call(fn=lambda client: client.storage.from_(bucket).remove(names), what=f"{bucket} files of job {job_id}")


__all__ = ["DELETABLE", "delete_job"]
