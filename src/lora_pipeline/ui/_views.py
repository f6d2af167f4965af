"""What the pages show, shaped from SDK objects: job rows, ages, costs, config differences. No I/O here."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..types.jobs import TrainingJob

CONFIG_FIELDS = ("base_model", "preset", "dataset_id", "gpu_type", "backend", "max_runtime_seconds", "max_cost_usd")
"""Job columns shown in the configuration table beside the hyperparameters."""


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """``42 s``, ``5 min``, ``3 h``, ``2 d``: how long ago, short enough for a table cell."""
    if moment is None:
        return ""
    seconds = max(0.0, ((now or datetime.now(timezone.utc)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"


def cost_so_far(job: TrainingJob, now: datetime | None = None) -> float | None:
    """Runtime times the hourly price: what the pod has cost up to now (or up to its end)."""
    runtime = job.runtime_seconds(now)
    if runtime is None or job.cost_per_hour is None:
        return None
    return runtime / 3600 * job.cost_per_hour


def money(value: float | None) -> str:
    return "" if value is None else f"${value:,.2f}"


def job_row(job: TrainingJob, decision: str | None, dataset_name: str | None) -> dict[str, Any]:
    """One line of the jobs table."""
    return {
        "id": job.id,
        "name": job.name or job.id[:8],
        "status": str(job.status),
        "status_text": job.status_text(),
        "model": job.base_model,
        "dataset": dataset_name or job.dataset_id[:8],
        "gpu": job.gpu_type or job.backend or "",
        "cost": money(cost_so_far(job)),
        "gate": decision or "",
        "age": age(job.created_at),
        "progress": _progress_text(job),
    }


def _progress_text(job: TrainingJob) -> str:
    fraction = job.fraction_done
    return "" if fraction is None else f"{fraction:.0%}"


def matches(row: dict[str, Any], query: str) -> bool:
    """A case-insensitive search over what the table shows (and the full id)."""
    needle = query.strip().lower()
    haystack = " ".join(str(row[k]) for k in ("id", "name", "status_text", "model", "dataset", "gpu", "gate"))
    return not needle or needle in haystack.lower()


def job_config(job: TrainingJob) -> dict[str, str]:
    """The configuration as run, flattened to ``name -> text`` (hyperparameters as ``hp.<name>``)."""
    config = {name: _text(getattr(job, name)) for name in CONFIG_FIELDS}
    config.update({f"hp.{key}": _text(value) for key, value in sorted(job.hyperparameters.items())})
    if job.gates:
        config["gates"] = _text(job.gates)
    return config


def config_table(jobs: Sequence[TrainingJob]) -> list[dict[str, Any]]:
    """Rows ``{name, values, differs}`` over every key any of the jobs has; differing rows first."""
    configs = [job_config(job) for job in jobs]
    names = list(dict.fromkeys(name for config in configs for name in config))
    table = []
    for name in names:
        values = [config.get(name, "") for config in configs]
        table.append({"name": name, "values": values, "differs": len(set(values)) > 1})
    return sorted(table, key=lambda row: not row["differs"])


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def champions(jobs: Iterable[TrainingJob], decisions: dict[str, str]) -> dict[str, TrainingJob]:
    """Per model, the latest job whose gate let it through (pass or warn): the gate's champion rule."""
    best: dict[str, TrainingJob] = {}
    for job in jobs:
        if decisions.get(job.id) not in ("pass", "warn"):
            continue
        current = best.get(job.base_model)
        if current is None or (job.created_at or datetime.min.replace(tzinfo=timezone.utc)) > (
            current.created_at or datetime.min.replace(tzinfo=timezone.utc)
        ):
            best[job.base_model] = job
    return best
