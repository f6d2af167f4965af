"""What a gate run decided: one :class:`ConditionResult` per condition and the :class:`GateReport` around
them, which maps onto a ``validation_results`` row.

Results are structured rows rather than one exception message, so callers can tell a blocking failure from a
warning (the MLflow pitfall in research/tracking.md §2.1), and the JSON keeps NaN and infinity as the strings
``"NaN"``/``"Infinity"`` because Postgres ``jsonb`` refuses the bare tokens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from lora_pipeline._exceptions import GateBlocked

from ._enums import (
    Aggregation,
    BaselineSource,
    ConditionStatus,
    Decision,
    Direction,
    Kind,
    OnMissing,
    Severity,
    strictest,
)

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

_MODEL_CONFIG = ConfigDict(frozen=True, extra="ignore", ser_json_inf_nan="strings")


class ConditionResult(BaseModel):
    """The outcome of one condition, one element of ``validation_results.conditions``."""

    model_config = _MODEL_CONFIG

    condition_id: str | None = None
    """The condition's row id, when it has one."""
    position: int
    """The condition's index in the list given to ``evaluate``."""
    metric: str
    """The metric checked."""
    kind: Kind
    """min, max, delta or ratio."""
    direction: Direction | None = None
    """Which way is better, when the condition has one."""
    aggregation: Aggregation = Aggregation.LAST
    """Which of the job's values was read."""
    severity: Severity
    """The condition's severity."""
    on_missing: OnMissing = OnMissing.FAIL
    """What a missing candidate metric means for this condition."""
    threshold: float
    """The bound applied, defaults filled in (delta 0, ratio 1.0)."""
    actual: float | None = None
    """The candidate's value; ``None`` when missing."""
    baseline: float | None = None
    """The baseline's value, when there is one."""
    baseline_source: BaselineSource | None = None
    """Where the baseline came from."""
    baseline_job_id: str | None = None
    """The job the baseline was read from (champion or job sources)."""
    baseline_eval_dataset_sha256: str | None = None
    """The eval dataset the baseline was measured on, when known."""
    delta: float | None = None
    """``actual − baseline``, when both are finite."""
    ratio: float | None = None
    """``1 + (actual − baseline) / |baseline|`` (``actual / baseline`` for a positive baseline), when both
    are finite and the baseline is not 0."""
    status: ConditionStatus
    """What happened: pass, fail, or why no comparison was possible."""
    effect: Decision
    """What this result alone does to the decision; ``pass`` when it passed or is only recorded."""
    message: str
    """One line for humans, e.g. ``eval_loss 1.92 > baseline 1.8 + 0.05 (lower is better)``."""

    @property
    def recorded_only(self) -> bool:
        """Did not pass, but has no effect on the decision (info severity, ``on_missing=skip``)."""
        return self.status is not ConditionStatus.PASS and self.effect is Decision.PASS


class GateReport(BaseModel):
    """The verdict of one gate run; maps onto a ``validation_results`` row.

    Example::

        report = evaluate(conditions, {"eval_loss": {"last": 1.92}}, baselines)
        print(report.decision, report.summary)
        report.raise_if_blocked()
    """

    model_config = _MODEL_CONFIG

    decision: Decision
    """``pass``, ``warn`` or ``block``."""
    strict: bool = False
    """Whether warnings blocked (strict mode)."""
    results: tuple[ConditionResult, ...] = ()
    """One result per active condition, in the order given."""
    candidate_eval_sha256: str | None = None
    """SHA-256 of the eval dataset the candidate was measured on, when known."""
    error: str | None = None
    """The internal error the gate failed open on (see :meth:`from_error`); ``None`` normally."""

    @classmethod
    def from_results(
        cls,
        results: Iterable[ConditionResult],
        *,
        strict: bool = False,
        candidate_eval_sha256: str | None = None,
    ) -> GateReport:
        """A report whose decision is the strictest effect among ``results``."""
        ordered = tuple(results)
        decision = strictest([result.effect for result in ordered])
        return cls(decision=decision, strict=strict, results=ordered, candidate_eval_sha256=candidate_eval_sha256)

    @classmethod
    def from_error(
        cls, error: BaseException | str, *, strict: bool = False, candidate_eval_sha256: str | None = None
    ) -> GateReport:
        """A report for a gate that could not run and fails open: decision ``warn``, with the error text.

        Only for callers that asked to fail open; strict mode does not turn this into a block, because the
        caller chose to let errors through.
        """
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        return cls(decision=Decision.WARN, strict=strict, candidate_eval_sha256=candidate_eval_sha256, error=text)

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> GateReport:
        """Read back a ``validation_results`` row written from :meth:`to_row`."""
        summary = row.get("summary") or {}
        return cls(
            decision=row["decision"],
            strict=row.get("strict", False),
            results=tuple(row.get("conditions") or ()),
            candidate_eval_sha256=row.get("eval_dataset_sha256"),
            error=summary.get("error"),
        )

    @property
    def blocked(self) -> bool:
        """Whether the decision is ``block``."""
        return self.decision is Decision.BLOCK

    @property
    def counts(self) -> dict[str, int]:
        """How many results have each status (every status present, zeros included)."""
        counts = {status.value: 0 for status in ConditionStatus}
        for result in self.results:
            counts[result.status.value] += 1
        return counts

    def with_effect(self, effect: Decision) -> list[ConditionResult]:
        """The results whose own effect is ``effect`` (e.g. ``Decision.BLOCK`` for the blocking ones)."""
        return [result for result in self.results if result.effect is effect]

    @property
    def summary(self) -> str:
        """One line: the decision and what drove it."""
        if self.error is not None:
            return f"warn: the gate could not run ({self.error}); failing open"
        if not self.results:
            return f"{self.decision.value}: no conditions to check"
        passed = self.counts[ConditionStatus.PASS.value]
        parts = [f"{self.decision.value}: {passed} of {len(self.results)} conditions passed"]
        recorded = [result for result in self.results if result.recorded_only]
        groups = [
            ("blocking", self.with_effect(Decision.BLOCK)),
            ("warning", self.with_effect(Decision.WARN)),
            ("recorded", recorded),
        ]
        parts += [f"{name}: {_names(results)}" for name, results in groups if results]
        return "; ".join(parts)

    def to_row(self) -> dict[str, Any]:
        """The ``validation_results`` columns this report fills: decision, strict, conditions, summary and
        eval_dataset_sha256, JSON-ready (non-finite numbers as ``"NaN"``/``"Infinity"`` strings)."""
        conditions = [json.loads(result.model_dump_json()) for result in self.results]
        return {
            "decision": self.decision.value,
            "strict": self.strict,
            "conditions": conditions,
            "summary": self._summary_json(),
            "eval_dataset_sha256": self.candidate_eval_sha256,
        }

    def to_json(self) -> str:
        """:meth:`to_row` as strict JSON text (no bare NaN or Infinity tokens)."""
        return json.dumps(self.to_row(), allow_nan=False)

    def raise_if_blocked(self) -> GateReport:
        """Raise :class:`~lora_pipeline.GateBlocked` carrying this report when the decision is ``block``.

        Returns:
            This report, so ``report = evaluate(...).raise_if_blocked()`` reads naturally.
        """
        if self.blocked:
            lines = [f"regression gate blocked: {self.summary}"]
            lines += [f"  {result.message}" for result in self.with_effect(Decision.BLOCK)]
            raise GateBlocked("\n".join(lines), report=self)
        return self

    def render(self, *, width: int = 110) -> str:
        """The report as terminal text (a table and the summary), e.g. for logs or the CLI."""
        from ._render import render_text

        return render_text(self, width=width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from ._render import rich_renderables

        yield from rich_renderables(self)

    def _repr_html_(self) -> str:
        from ._render import render_html

        return render_html(self)

    def _summary_json(self) -> dict[str, Any]:
        effects = {decision.value: len(self.with_effect(decision)) for decision in Decision}
        return {
            "decision": self.decision.value,
            "strict": self.strict,
            "total": len(self.results),
            "counts": self.counts,
            "effects": effects,
            "text": self.summary,
            "error": self.error,
        }


def _names(results: list[ConditionResult]) -> str:
    return ", ".join(f"{result.metric} {result.kind.value} ({result.status.value})" for result in results)


__all__ = ["ConditionResult", "GateReport"]
