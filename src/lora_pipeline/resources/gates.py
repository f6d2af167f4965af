"""``lp.gates``: decide whether a finished job's model may replace its predecessor (DESIGN §7, issue #7).

``validate`` reads the job's final metrics (the aggregation each condition asks for), resolves each condition's
baseline (pinned value, a given job, or the champion: the latest job of this model whose gate did not block), runs the
pure :func:`lora_pipeline.gates.evaluate`, writes one ``validation_results`` row, notifies on warn/block and
marks a blocked job ``failed/gate_failed``. An error inside the gate (not a failed condition) is raised, or with
``fail_open=True`` recorded as a warning.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._exceptions import ConfigError, LoraPipelineError, NotFound
from .._ops import Plan
from .._resource import SyncAPIResource
from ..gates import Aggregation, BaselineSource, Condition, GateReport, ResolvedBaseline, evaluate
from ..types.jobs import JobStatus, TrainingJob
from ._common import require_id, rows, rpc, table
from ._job_control import fetch_job
from .metrics import aggregate, history

_RELATIVE = ("delta", "ratio")


class _GatePlans:
    _core: Any

    def _plan_validate(
        self,
        job_id: str,
        model_name: str,
        version: str | None,
        strict: bool,
        fail_open: bool,
        checks: GateChecks | None = None,
    ) -> Plan[GateReport]:
        return (yield from validate_job(job_id, model_name, version, strict, fail_open, checks or GateChecks()))

    def _plan_report(self, job_id: str) -> Plan[GateReport | None]:
        job_id = require_id(job_id, "job_id")

        def build(t: Any) -> Any:
            return t.select("*").eq("job_id", job_id).order("created_at", desc=True).limit(1)

        found = rows((yield table("validation_results", build)))
        return GateReport.from_row(found[0]) if found else None


class GateChecks(NamedTuple):
    """How a gate run may act. The completion hook records and applies; an ad-hoc run applies only if asked."""

    allow_empty: bool = False
    """A model without active conditions passes (else :class:`ConfigError`: a typo must not read as a pass)."""
    dry_run: bool = False
    """Evaluate only: record no report, write no notification, change no job."""
    apply: bool = False
    """Let a blocking decision mark the job ``failed/gate_failed``."""


COMPLETION_HOOK = GateChecks(allow_empty=True, apply=True)


def validate_job(
    job_id: str,
    model_name: str,
    version: str | None,
    strict: bool,
    fail_open: bool,
    checks: GateChecks = COMPLETION_HOOK,
) -> Plan[GateReport]:
    """The gate as a plan, shared by ``lp.gates.validate`` and the jobs resource's completion hook."""
    job = yield from fetch_job(require_id(job_id, "job_id"))
    if not (job.status is JobStatus.SUCCEEDED or job.status_reason == "gate_failed"):
        raise ConfigError(f"job {job.id} is {job.status}: a gate runs on a succeeded job", argument="job_id")
    try:
        report = yield from _evaluate_job(job, model_name, version, strict, checks.allow_empty)
    except LoraPipelineError as error:
        if not fail_open or isinstance(error, ConfigError):
            raise
        report = GateReport.from_error(error, strict=strict)
    if checks.dry_run:
        return report
    yield from _record(job, model_name, version, report, apply=checks.apply)
    return report


def _evaluate_job(
    job: TrainingJob, model_name: str, version: str | None, strict: bool, allow_empty: bool = True
) -> Plan[GateReport]:
    conditions = yield from _conditions(job.user_id, model_name, version)
    if not conditions and not allow_empty:
        raise ConfigError(
            f"model {model_name!r} has no active conditions{f' for version {version}' if version else ''}, so there is "
            f"nothing to check: check the model name (lora-pipeline baselines list), add one with "
            f"lora-pipeline baselines add {model_name} ..., or pass allow_empty (--allow-empty) to let it pass",
            argument="model_name",
        )
    candidate = yield from _final_values(job.id)
    candidate_sha = yield from _dataset_sha(job.dataset_id)
    baselines: dict[Any, ResolvedBaseline | None] = {}
    champion: TrainingJob | None = None
    for condition in conditions:
        if condition.kind.value not in _RELATIVE or condition.source is BaselineSource.PINNED:
            continue
        if condition.source is BaselineSource.CHAMPION:
            champion = champion or (yield from _champion(job, model_name))
            reference = champion
        else:
            reference = yield from _owned_job(str(condition.baseline_job_id), job.user_id)
        baselines[condition.id] = yield from _resolve(condition, reference)
    return evaluate(conditions, candidate, baselines, strict=strict, candidate_eval_sha256=candidate_sha)


def _conditions(owner: str, model_name: str, version: str | None) -> Plan[list[Condition]]:
    """The job owner's active conditions of the model: under the service role RLS does not scope this read."""

    def build(t: Any) -> Any:
        query = t.select("*").eq("user_id", owner).eq("model_name", model_name).eq("active", True)
        query = query.order("created_at").order("id")
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


def _champion(job: TrainingJob, model_name: str) -> Plan[TrainingJob | None]:
    """The latest other job of the owner's model whose gate let it through (pass or warn) and did not fail open.

    A warn counts: the first job of a model always warns (``missing_baseline``) and must become the champion.
    The same rule as ``lora_internal.champion_job``, which ``record_gate_result`` checks against.
    """

    def build(t: Any) -> Any:
        query = t.select("job_id").eq("user_id", job.user_id).eq("model_name", model_name)
        query = query.in_("decision", ["pass", "warn"]).neq("job_id", job.id).is_("summary->>error", "null")
        return query.order("created_at", desc=True).order("id", desc=True).limit(1)

    found = rows((yield table("validation_results", build)))
    return (yield from _owned_job(found[0]["job_id"], job.user_id)) if found else None


def _owned_job(job_id: str, owner: str) -> Plan[TrainingJob | None]:
    """The job when it exists and belongs to ``owner``; None otherwise (RLS hides others' jobs from users, and
    the service role sees every job, so ownership is checked here too)."""
    try:
        found = yield from fetch_job(job_id)
    except NotFound:
        return None
    return found if found.user_id == owner else None


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


def _record(job: TrainingJob, model_name: str, version: str | None, report: GateReport, *, apply: bool) -> Plan[None]:
    """Record the result through ``record_gate_result``: Postgres re-derives every condition's outcome and the
    decision from the owner's conditions and stored metrics, writes the notification and, with ``apply``,
    marks a blocked job ``failed/gate_failed``. Nobody writes ``validation_results`` directly."""
    row = report.to_row()
    params = {
        "job_id": job.id,
        "model_name": model_name,
        "version": version,
        "strict": row["strict"],
        "conditions": row["conditions"],
        "summary": row["summary"],
        "decision": row["decision"],
        "apply": apply,
    }
    yield rpc("record_gate_result", params, idempotent=False)


class Gates(SyncAPIResource, _GatePlans):
    """Regression gates (``lp.gates``)."""

    def validate(
        self,
        job_id: str,
        *,
        model_name: str,
        version: str | None = None,
        strict: bool = False,
        fail_open: bool = False,
        allow_empty: bool = False,
        dry_run: bool = False,
        apply: bool = False,
    ) -> GateReport:
        """Evaluate ``model_name``'s active conditions against a succeeded job and record the result.

        Returns the :class:`GateReport` (``decision`` pass / warn / block; ``report.raise_if_blocked()``).
        A notification is written on warn/block. The job's status changes only with ``apply=True`` (a block
        then marks it ``failed/gate_failed``); the gate configured at ``jobs.create`` applies on completion.

        Args:
            allow_empty: let a model without active conditions pass instead of raising.
            dry_run: evaluate only; nothing is recorded and the job is not changed.
            apply: let a block mark the job failed.

        Raises:
            ConfigError: the job has not succeeded, or the model has no active conditions (unless allowed).
            APIError: reading metrics or baselines failed (recorded as a warning instead with ``fail_open``).
        """
        checks = GateChecks(allow_empty=allow_empty, dry_run=dry_run, apply=apply)
        return self._run(self._plan_validate(job_id, model_name, version, strict, fail_open, checks))

    def report(self, job_id: str) -> GateReport | None:
        """The latest recorded gate result of a job (e.g. the one run on completion), or ``None``."""
        return self._run(self._plan_report(job_id))


__all__ = ["COMPLETION_HOOK", "GateChecks", "Gates"]
