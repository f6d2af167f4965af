"""A regression gate as a CI step: block a model that is worse than the current champion.

    python examples/gates_in_ci.py JOB_ID --model support-bot [--strict] [--report gate.json]

Makes sure the model's conditions exist (idempotent), evaluates the finished job against them, writes the
report as JSON for the CI system to keep, and exits 0 on pass (and on warn unless ``--strict``), 1 when the
gate blocks, 2 when it could not run. The same as ``lora-pipeline gates validate``, in Python.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from lora_pipeline import LoraPipeline, LoraPipelineError


def ensure_conditions(lp: LoraPipeline, model: str) -> None:
    """eval_loss must be finite and below 10, and at most 2% worse than the champion's."""
    existing = {(b.metric, b.kind) for b in lp.baselines.list(model)}
    if ("eval_loss", "max") not in existing:
        lp.baselines.create(model, metric="eval_loss", kind="max", threshold=10.0)
    if ("eval_loss", "ratio") not in existing:
        lp.baselines.create(
            model, metric="eval_loss", kind="ratio", threshold=1.02, direction="lower_is_better", baseline="champion"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="regression gate for a finished training job")
    parser.add_argument("job_id")
    parser.add_argument("--model", required=True)
    parser.add_argument("--strict", action="store_true", help="warnings fail the step too")
    parser.add_argument("--report", type=Path, default=None, help="write the report here as JSON")
    args = parser.parse_args(argv)
    console = Console()
    try:
        lp = LoraPipeline.from_env()
        ensure_conditions(lp, args.model)
        report = lp.gates.validate(args.job_id, model_name=args.model, strict=args.strict)
    except LoraPipelineError as error:
        console.print(f"[red]the gate could not run:[/red] {error}")
        return 2
    console.print(report)
    if args.report:
        args.report.write_text(report.to_json())
    passed = report.decision == "pass" or (report.decision == "warn" and not args.strict)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
