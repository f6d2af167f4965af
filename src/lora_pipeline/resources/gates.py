"""``lp.gates``: decide whether a finished job's model may replace its predecessor (DESIGN §7, issue #7).

``validate`` reads the job's final metrics (the aggregation each condition asks for), resolves each condition's
baseline (pinned value, a given job, or the champion: the latest job of this model whose gate did not block), runs the
pure :func:`lora_pipeline.gates.evaluate`, writes one ``validation_results`` row, notifies on warn/block and
marks a blocked job ``failed/gate_failed``. An error inside the gate (not a failed condition) is raised, or with
``fail_open=True`` recorded as a warning.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import ConfigError, LoraPipelineError, NotFound
from .._ops import Plan
from .._resource import SyncAPIResource
from ..gates import Aggregation, BaselineSource, Condition, Decision, GateReport, ResolvedBaseline, evaluate
from ..types.jobs import JobStatus, TrainingJob
from ._common import require_id, rows, table
from ._job_control import fetch_job, move
from .metrics import aggregate, history

_RELATIVE = ("delta", "ratio")


class _GatePlans:
    _core: Any

    def _plan_validate(
        self, job_id: str, model_name: str, version: str | None, strict: bool, fail_open: bool
    ) -> Plan[GateReport]:
        return (yield from validate_job(job_id, model_name, version, strict, fail_open))

    def _plan_report(self, job_id: str) -> Plan[GateReport | None]:
        job_id = require_id(job_id, "job_id")

        def build(t: Any) -> Any:
            return t.select("*").eq("job_id", job_id).order("created_at", desc=True).limit(1)

        found = rows((yield table("validation_results", build)))
        return GateReport.from_row(found[0]) if found else None


def validate_job(job_id: str, model_name: str, version: str | None, strict: bool, fail_open: bool) -> Plan[GateReport]:
    """The gate as a plan, shared by ``lp.gates.validate`` and the jobs resource's completion hook."""
    job = yield from fetch_job(require_id(job_id, "job_id"))
    if not (job.status is JobStatus.SUCCEEDED or job.status_reason == "gate_failed"):
        raise ConfigError(f"job {job.id} is {job.status}: a gate runs on a succeeded job", argument="job_id")
    try:
        report = yield from _evaluate_job(job, model_name, version, strict)
    except LoraPipelineError as error:
        if not fail_open:
            raise
        report = GateReport.from_error(error, strict=strict)
    yield from _record(job, model_name, version, report)
    if report.decision is Decision.BLOCK and job.status is JobStatus.SUCCEEDED:
        yield from move(
            job,
            JobStatus.FAILED,
            reason="gate_failed",
            extra={"error": {"reason": "gate_failed", "message": report.summary}},
        )
    return report


def _evaluate_job(job: TrainingJob, model_name: str, version: str | None, strict: bool) -> Plan[GateReport]:
    conditions = yield from _conditions(model_name, version)
    candidate = yield from _final_values(job.id)
    candidate_sha = yield from _dataset_sha(job.dataset_id)
    baselines: dict[Any, ResolvedBaseline | None] = {}
    champion: TrainingJob | None = None
    for condition in conditions:
        if condition.kind.value not in _RELATIVE or condition.source is BaselineSource.PINNED:
            continue
        if condition.source is BaselineSource.CHAMPION:
            champion = champion or (yield from _champion(model_name, job.id))
            reference = champion
        else:
            reference = yield from _visible_job(str(condition.baseline_job_id))
        baselines[condition.id] = yield from _resolve(condition, reference)
    return evaluate(conditions, candidate, baselines, strict=strict, candidate_eval_sha256=candidate_sha)


def _conditions(model_name: str, version: str | None) -> Plan[list[Condition]]:
    def build(t: Any) -> Any:
        query = t.select("*").eq("model_name", model_name).eq("active", True).order("created_at")
        return query.or_(f"version.is.null,version.eq.{version}") if version else query

    return [Condition.model_validate(row) for row in rows((yield table("model_baselines", build)))]


def _final_values(job_id: str) -> Plan[dict[str, dict[str, float]]]:
    points = yield from history(job_id)
    by_aggregation = {how.value: aggregate(points, how) for how in Aggregation}
    metrics = {name for values in by_aggregation.values() for name in values}
    return {m: {how: values[m] for how, values in by_aggregation.items() if m in values} for m in metrics}


def _dataset_sha(dataset_id: str) -> Plan[str | None]:
    found = rows((yield table("datasets", lambda t: t.select("sha256").eq("id", dataset_id))))
    return found[0]["sha256"] if found else None


def _champion(model_name: str, exclude_job: str) -> Plan[TrainingJob | None]:
    """The latest job of this model whose gate let it through (pass or warn; not the candidate itself).

    A warn counts: the first job of a model always warns (``missing_baseline``) and must become the champion.
    """
    found = rows(
        (
            yield table(
                "validation_results",
                lambda t: (
                    t.select("job_id")
                    .eq("model_name", model_name)
                    .in_("decision", ["pass", "warn"])
                    .neq("job_id", exclude_job)
                    .order("created_at", desc=True)
                    .limit(1)
                ),
            )
        )
    )
    return (yield from _visible_job(found[0]["job_id"])) if found else None


def _visible_job(job_id: str) -> Plan[TrainingJob | None]:
    """The job, or None when it does not exist or belongs to another user (RLS hides it)."""
    try:
        return (yield from fetch_job(job_id))
    except NotFound:
        return None


def _resolve(condition: Condition, reference: TrainingJob | None) -> Plan[ResolvedBaseline | None]:
    if reference is None:
        return None
    values = yield from _final_values(reference.id)
    sha = yield from _dataset_sha(reference.dataset_id)
    value = values.get(condition.metric, {}).get(condition.aggregation.value)
    return ResolvedBaseline(
        value=value,
        source=condition.source,
        job_id=reference.id,
        eval_dataset_sha256=condition.eval_dataset_sha256 or sha,
    )


def _record(job: TrainingJob, model_name: str, version: str | None, report: GateReport) -> Plan[None]:
    row = {"job_id": job.id, "user_id": job.user_id, "model_name": model_name, "version": version, **report.to_row()}
    yield table("validation_results", lambda t: t.insert(row, returning="minimal"), idempotent=False)
    if report.decision is Decision.PASS:
        return
    blocked = report.decision is Decision.BLOCK
    note = {
        "user_id": job.user_id,
        "job_id": job.id,
        "kind": "gate_block" if blocked else "gate_warn",
        "severity": "critical" if blocked else "warning",
        "title": f"Gate {'blocked' if blocked else 'warned about'} {model_name} (job {job.name or job.id[:8]})",
        "body": report.summary,
        "data": {"decision": report.decision.value},
    }
    yield table("notifications", lambda t: t.insert(note, returning="minimal"), idempotent=False)


class Gates(SyncAPIResource, _GatePlans):
    """Regression gates (``lp.gates``)."""

    def validate(
        self, job_id: str, *, model_name: str, version: str | None = None, strict: bool = False, fail_open: bool = False
    ) -> GateReport:
        """Evaluate ``model_name``'s active conditions against a succeeded job and record the result.

        Returns the :class:`GateReport` (``decision`` pass / warn / block; ``report.raise_if_blocked()``).
        A blocked job becomes ``failed`` with reason ``gate_failed``; a notification is written on warn/block.

        Raises:
            ConfigError: the job has not succeeded.
            APIError: reading metrics or baselines failed (recorded as a warning instead with ``fail_open``).
        """
        return self._run(self._plan_validate(job_id, model_name, version, strict, fail_open))

    def report(self, job_id: str) -> GateReport | None:
        """The latest recorded gate result of a job (e.g. the one run on completion), or ``None``."""
        return self._run(self._plan_report(job_id))


__all__ = ["Gates"]
