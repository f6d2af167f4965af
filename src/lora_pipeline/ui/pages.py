"""The page handlers: each reads through the viewer's client and returns a :class:`Page` to render."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .._exceptions import ConfigError, LoraPipelineError
from ..types.jobs import JobStatus, TrainingJob
from ._series import CHART_METRICS, SeriesCache
from ._viewers import Viewer
from ._views import champions, config_table, cost_so_far, job_config, job_row, matches, money

MAX_COMPARED = 10
GATE_READERS = 4
"""Gate reports read at once for the jobs table."""


@dataclass
class Page:
    """A template, its context and the HTTP status."""

    template: str
    context: dict[str, Any] = field(default_factory=dict)
    status: int = 200


Handler = Callable[[Request, Viewer, SeriesCache], "Page | Response"]
"""A page or API handler: the request, who reads, that viewer's series cache."""


def jobs_page(request: Request, viewer: Viewer, cache: SeriesCache) -> Page:
    """Every job the viewer may see, newest first, filtered by status and a search over the visible columns."""
    lp = viewer.client
    status = request.query_params.get("status") or None
    query = request.query_params.get("q", "")
    if status is not None and status not in {s.value for s in JobStatus}:
        raise ConfigError(f"unknown status {status!r}: pick one from the list", argument="status")
    jobs = lp.jobs.list(status=status, limit=200)
    names = {d.id: d.name for d in lp.datasets.list(limit=500)}
    decisions = _decisions(viewer, jobs)
    rows = [job_row(job, decisions.get(job.id), names.get(job.dataset_id)) for job in jobs]
    rows = [row for row in rows if matches(row, query)]
    statuses = [s.value for s in JobStatus]
    context = {"title": "Jobs", "rows": rows, "status": status or "", "q": query, "statuses": statuses}
    return Page("jobs.html", context)


def job_page(request: Request, viewer: Viewer, cache: SeriesCache) -> Page:
    """One job: events, gate, artifacts, config, cost, and the curves.

    On a first visit the page is sent without the history, which the browser then asks for
    (``/api/jobs/<id>/series``): reading 100,000 rows through PostgREST takes seconds, and the rest of the page
    should not wait for it. Later visits embed the viewer's cached series, brought up to date with the new rows.
    """
    lp = viewer.client
    job = lp.jobs.retrieve(request.path_params["job_id"])
    series = cache.get(viewer.key, job.id)
    if series.steps:
        series.extend(lp.metrics.history(job.id, columns=list(CHART_METRICS), since_step=series.last_step + 1))
    events = lp.jobs.events(job.id)
    context = {
        "title": job.name or f"Job {job.id[:8]}",
        "job": job,
        "series": series.columns() if series.steps else None,
        "last_step": series.last_step,
        "events": events,
        "last_event": events[-1].id if events else 0,
        "gate": _gate(viewer, job),
        "artifacts": lp.artifacts.list(job_id=job.id),
        "config": job_config(job),
        "costs": lp.costs.for_job(job.id),
        "cost_so_far": money(cost_so_far(job)),
    }
    return Page("job.html", context)


def compare_page(request: Request, viewer: Viewer, cache: SeriesCache) -> Page:
    """2 to 10 jobs: curves overlaid, configurations side by side with the differences first and marked."""
    ids = [i for value in request.query_params.getlist("job") for i in value.split(",") if i.strip()]
    ids = list(dict.fromkeys(i.strip() for i in ids))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise ConfigError(f"compare takes 2 to {MAX_COMPARED} jobs, got {len(ids)}: tick them on the jobs page")
    lp = viewer.client
    jobs = [lp.jobs.retrieve(job_id) for job_id in ids]
    curves = []
    for job in jobs:
        series = cache.get(viewer.key, job.id)
        series.extend(lp.metrics.history(job.id, columns=list(CHART_METRICS), since_step=series.last_step + 1))
        curves.append({"id": job.id, "label": job.name or job.id[:8], "series": series.columns()})
    context = {"title": "Compare", "jobs": jobs, "curves": curves, "config": config_table(jobs)}
    return Page("compare.html", context)


def datasets_page(request: Request, viewer: Viewer, cache: SeriesCache) -> Page:
    return Page("datasets.html", {"title": "Datasets", "datasets": viewer.client.datasets.list(limit=500)})


def dataset_page(request: Request, viewer: Viewer, cache: SeriesCache) -> Page:
    """The validation report (findings) and token statistics of one dataset."""
    dataset = viewer.client.datasets.retrieve(request.path_params["dataset_id"])
    report = dataset.validation_report or {}
    findings = report.get("findings") or report.get("issues") or []
    context = {"title": dataset.name, "dataset": dataset, "report": report, "findings": findings}
    return Page("dataset.html", context)


def baselines_page(request: Request, viewer: Viewer, cache: SeriesCache) -> Page:
    """Active gate conditions grouped by model, with each model's champion (latest job the gate let through)."""
    lp = viewer.client
    by_model: dict[str, list[Any]] = {}
    for baseline in lp.baselines.list():
        by_model.setdefault(str(baseline.model_name), []).append(baseline)
    jobs = lp.jobs.list(status="succeeded", limit=200)
    best = champions(jobs, _decisions(viewer, jobs))
    models = sorted(set(by_model) | set(best))
    context = {"title": "Baselines", "models": models, "by_model": by_model, "champions": best}
    return Page("baselines.html", context)


def artifact_download(request: Request, viewer: Viewer, cache: SeriesCache) -> Response:
    """A short-lived signed Storage URL for one file of an artifact (the browser fetches it from Storage)."""
    artifact = viewer.client.artifacts.retrieve(request.path_params["artifact_id"])
    url = viewer.client.artifacts.signed_url(artifact, file=request.query_params.get("file"), expires_in=300)
    return RedirectResponse(url, status_code=303)


def _decisions(viewer: Viewer, jobs: list[TrainingJob]) -> dict[str, str]:
    """The recorded gate decision of each finished job (only finished jobs are gated).

    One read per job (the SDK has no list of gate results), so a few at a time: the client is thread-safe.
    """
    from concurrent.futures import ThreadPoolExecutor

    finished = [job.id for job in jobs if job.status in (JobStatus.SUCCEEDED, JobStatus.FAILED)]
    with ThreadPoolExecutor(max_workers=GATE_READERS) as pool:
        reports = list(pool.map(viewer.client.gates.report, finished))
    return {job_id: report.decision.value for job_id, report in zip(finished, reports, strict=True) if report}


def _gate(viewer: Viewer, job: TrainingJob) -> Any:
    try:
        return viewer.client.gates.report(job.id)
    except LoraPipelineError:
        return None


PAGE_ROUTES: list[tuple[str, Handler]] = [
    ("/jobs", jobs_page),
    ("/jobs/{job_id}", job_page),
    ("/compare", compare_page),
    ("/datasets", datasets_page),
    ("/datasets/{dataset_id}", dataset_page),
    ("/baselines", baselines_page),
    ("/artifacts/{artifact_id}/download", artifact_download),
]
