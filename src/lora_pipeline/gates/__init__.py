"""Regression gates: decide whether a trained model may replace its predecessor (DESIGN.md §7).

The pure part: conditions (``model_baselines`` rows), the evaluation engine and the report
(``validation_results`` rows). Reading baselines and writing results is the resource layer's job.

Example::

    from lora_pipeline.gates import Condition, evaluate

    conditions = [
        Condition(metric="eval_loss", kind="max", threshold=2.0),
        Condition(metric="eval_loss", kind="delta", direction="lower_is_better", threshold=0.05,
                  baseline_value=1.80),
    ]
    report = evaluate(conditions, {"eval_loss": {"last": 1.92}})
    report.decision            # Decision.BLOCK
    report.raise_if_blocked()  # raises GateBlocked carrying the report
"""

from __future__ import annotations

from ._enums import (
    Aggregation,
    BaselineSource,
    ConditionStatus,
    Decision,
    Direction,
    Kind,
    OnMissing,
    Severity,
)
from ._evaluate import REL_EPSILON, BaselineInput, Baselines, CandidateMetrics, evaluate
from ._models import DEFAULT_DELTA_TOLERANCE, DEFAULT_RATIO_BOUND, Condition, ResolvedBaseline
from ._report import ConditionResult, GateReport

__all__ = [
    "DEFAULT_DELTA_TOLERANCE",
    "DEFAULT_RATIO_BOUND",
    "REL_EPSILON",
    "Aggregation",
    "BaselineInput",
    "BaselineSource",
    "Baselines",
    "CandidateMetrics",
    "Condition",
    "ConditionResult",
    "ConditionStatus",
    "Decision",
    "Direction",
    "GateReport",
    "Kind",
    "OnMissing",
    "ResolvedBaseline",
    "Severity",
    "evaluate",
]
