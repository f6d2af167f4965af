"""``lp.baselines``: the conditions a model's next version must meet (``model_baselines``).

Definitions are validated when created (a ``delta`` without a direction, a negative tolerance, a ratio bound
below 0 are refused here, not when a gate runs) by :class:`lora_pipeline.gates.Condition`.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from .._exceptions import ConfigError, Conflict
from .._ops import Plan
from .._resource import SyncAPIResource
from ..gates import BaselineSource, Condition
from ._common import one, require_id, rows, table
from ._natural_keys import baseline_twin

_UPDATABLE = {
    "metric",
    "kind",
    "direction",
    "threshold",
    "baseline_value",
    "source",
    "baseline_job_id",
    "aggregation",
    "severity",
    "on_missing",
    "version",
    "eval_dataset_sha256",
    "active",
}


class Baseline(Condition):
    """A stored condition (a row of ``model_baselines``)."""

    user_id: str | None = None
    created_at: Any = None
    updated_at: Any = None


def _source(baseline: str) -> tuple[str, str | None]:
    """``pinned`` / ``champion`` or a job id meaning "compare with that job"."""
    if baseline in (BaselineSource.PINNED.value, BaselineSource.CHAMPION.value):
        return baseline, None
    return BaselineSource.JOB.value, require_id(baseline, "baseline")


def build_condition(values: dict[str, Any]) -> Condition:
    """Validate a definition, turning pydantic's errors into a ConfigError that says what to fix."""
    try:
        return Condition.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        raise ConfigError(f"invalid baseline: {problems}", argument="baseline") from None


def _same_condition_or_conflict(existing: dict[str, Any], wanted: dict[str, Any]) -> Baseline:
    """Creating a condition that exists returns it; one that differs only in its bounds is a Conflict."""
    differs = sorted(k for k, v in wanted.items() if k not in ("id", "user_id") and existing.get(k) != v)
    if not differs:
        return Baseline.model_validate(existing)
    label = f"{existing['metric']} {existing['kind']} [{existing['severity']}] of model {existing['model_name']!r}"
    changes = ", ".join(f"{k}={wanted[k]!r}" for k in differs)
    raise Conflict(
        f"an active condition {label} exists ({existing['id']}) with other {', '.join(differs)}: change it with "
        f"lp.baselines.update({existing['id']!r}, {changes}) or deactivate it first",
        status=409,
        code="23505",
        resource=f"baseline {existing['id']}",
    )


class _BaselinePlans:
    _core: Any

    def _plan_create(self, model_name: str, values: dict[str, Any], user_id: str | None) -> Plan[Baseline]:
        source, job_id = _source(values.pop("baseline"))
        condition = build_condition({**values, "model_name": model_name, "source": source, "baseline_job_id": job_id})
        row = {**condition.to_row(), "id": str(uuid.uuid4()), "user_id": self._core.user_id_for(user_id)}
        twin = yield from baseline_twin(row["user_id"], row)
        if twin is not None:
            return _same_condition_or_conflict(twin, row)
        result = yield table("model_baselines", lambda t: t.insert(row), idempotent=False)
        return Baseline.model_validate(one(result, "baseline", row["id"]))

    def _plan_list(self, model_name: str | None, active: bool | None) -> Plan[list[Baseline]]:
        def build(t: Any) -> Any:
            query = t.select("*").order("created_at")
            query = query.eq("model_name", model_name) if model_name else query
            return query.eq("active", active) if active is not None else query

        result = yield table("model_baselines", build)
        return [Baseline.model_validate(row) for row in rows(result)]

    def _plan_retrieve(self, baseline_id: str) -> Plan[Baseline]:
        baseline_id = require_id(baseline_id, "baseline_id")
        result = yield table("model_baselines", lambda t: t.select("*").eq("id", baseline_id))
        return Baseline.model_validate(one(result, "baseline", baseline_id))

    def _plan_update(self, baseline_id: str, changes: dict[str, Any]) -> Plan[Baseline]:
        unknown = set(changes) - _UPDATABLE - {"baseline"}
        if unknown:
            raise ConfigError(f"cannot update {', '.join(sorted(unknown))}; updatable: {', '.join(sorted(_UPDATABLE))}")
        current = yield from self._plan_retrieve(baseline_id)
        if "baseline" in changes:
            changes["source"], changes["baseline_job_id"] = _source(changes.pop("baseline"))
        merged = build_condition({**current.model_dump(), **changes})
        update = {k: v for k, v in merged.to_row().items() if k in _UPDATABLE}
        result = yield table("model_baselines", lambda t: t.update(update).eq("id", current.id))
        return Baseline.model_validate(one(result, "baseline", str(current.id)))


class Baselines(SyncAPIResource, _BaselinePlans):
    """Regression-gate conditions per model (``lp.baselines``)."""

    def create(
        self,
        model_name: str,
        *,
        metric: str,
        kind: str,
        threshold: float | None = None,
        direction: str | None = None,
        baseline: str = "pinned",
        baseline_value: float | None = None,
        aggregation: str = "last",
        severity: str = "critical",
        on_missing: str = "fail",
        version: str | None = None,
        eval_dataset_sha256: str | None = None,
        user_id: str | None = None,
    ) -> Baseline:
        """Add a condition for ``model_name``.

        Args:
            kind: ``min`` (value >= threshold), ``max`` (value <= threshold), ``delta`` (change against the baseline
                no worse than ``threshold`` in ``direction``), ``ratio`` (candidate / baseline within ``threshold``).
            direction: ``higher_is_better`` or ``lower_is_better`` (required for delta and ratio).
            baseline: ``"pinned"`` (use ``baseline_value``), ``"champion"`` (the last job of this model whose gate
                passed) or a job id.
            severity: ``critical`` blocks, ``warning`` warns (blocks in strict mode), ``info`` only records.

        Example::

            lp.baselines.create("support-bot", metric="eval_loss", kind="delta",
                                direction="lower_is_better", threshold=0.05, baseline="champion")
        """
        values = {
            "metric": metric,
            "kind": kind,
            "threshold": threshold,
            "direction": direction,
            "baseline": baseline,
            "baseline_value": baseline_value,
            "aggregation": aggregation,
            "severity": severity,
            "on_missing": on_missing,
            "version": version,
            "eval_dataset_sha256": eval_dataset_sha256,
        }
        return self._run(self._plan_create(model_name, values, user_id))

    def list(self, model_name: str | None = None, *, active: bool | None = True) -> list[Baseline]:
        return self._run(self._plan_list(model_name, active))

    def retrieve(self, baseline_id: str) -> Baseline:
        return self._run(self._plan_retrieve(baseline_id))

    def update(self, baseline_id: str, **changes: Any) -> Baseline:
        """Change fields of a baseline; the result is validated like a new one."""
        return self._run(self._plan_update(baseline_id, changes))

    def deactivate(self, baseline_id: str) -> Baseline:
        """Stop evaluating this condition (kept for history)."""
        return self._run(self._plan_update(baseline_id, {"active": False}))


__all__ = ["Baseline", "Baselines"]
