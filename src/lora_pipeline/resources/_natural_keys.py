"""Plans behind the natural keys of migration 0009: a dataset name per user, one active condition per key,
and the rows that keep a dataset from being deleted. Shared by the dataset and baseline resources."""

from __future__ import annotations

from typing import Any

from .._exceptions import Conflict
from .._ops import Plan
from ..types.datasets import Dataset, DatasetStatus
from ._common import rows, table

BASELINE_KEY = ("model_name", "version", "metric", "kind", "aggregation", "source", "baseline_job_id", "severity")
"""The columns that identify an active condition (index ``model_baselines_active_key``)."""


def dataset_named(owner: str, name: str, sha256: str) -> Plan[Dataset | None]:
    """The owner's ready dataset of this name holding the same file (upload again = that dataset), ``None``
    when the name is free or an interrupted upload of the same file can resume.

    Raises:
        Conflict: the name belongs to another file (or to a dataset that is not ready); nothing was uploaded.
    """
    found = rows(
        (yield table("datasets", lambda t: t.select("*").eq("user_id", owner).eq("name", name.strip()).limit(1)))
    )
    if not found:
        return None
    existing = found[0]
    same_file = existing.get("sha256") == sha256
    if same_file and existing["status"] == DatasetStatus.READY.value:
        return Dataset.model_validate(existing)
    if same_file and existing["status"] == DatasetStatus.UPLOADING.value:
        return None
    what = "a different file" if not same_file else f"the same file, {existing['status']}"
    raise Conflict(
        f"dataset name {name.strip()!r} is taken by dataset {existing['id']} ({what}): upload under another name, "
        f"or delete that dataset first (lora-pipeline datasets delete {existing['id'][:8]})",
        status=409,
        code="23505",
        resource=f"dataset {existing['id']}",
    )


def jobs_holding(dataset_id: str) -> Plan[None]:
    """Raise :class:`Conflict` naming the jobs that train on a dataset (their rows keep it from deletion)."""
    found = rows(
        (
            yield table(
                "training_jobs",
                lambda t: t.select("id, status").eq("dataset_id", dataset_id).order("created_at").limit(6),
            )
        )
    )
    if not found:
        return
    shown = ", ".join(f"{job['id'][:8]} ({job['status']})" for job in found[:5])
    more = " and more" if len(found) > 5 else ""
    raise Conflict(
        f"dataset {dataset_id} is used by job(s) {shown}{more}: delete those jobs first "
        f"(lp.jobs.delete / lora-pipeline jobs delete ID; a job must have ended), then the dataset",
        status=409,
        code="23503",
        resource=f"dataset {dataset_id}",
    )


def baseline_twin(user_id: str, row: dict[str, Any]) -> Plan[dict[str, Any] | None]:
    """The active condition with the same key as ``row``, if any."""

    def build(t: Any) -> Any:
        query = t.select("*").eq("user_id", user_id).eq("active", True)
        for column in BASELINE_KEY:
            value = row.get(column)
            query = query.is_(column, "null") if value is None else query.eq(column, value)
        return query.limit(1)

    found = rows((yield table("model_baselines", build)))
    return found[0] if found else None


__all__ = ["BASELINE_KEY", "baseline_twin", "dataset_named", "jobs_holding"]
