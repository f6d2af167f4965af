"""``lora-pipeline baselines``: the conditions a model's next version must meet."""

from __future__ import annotations

import typer

from ._clients import client
from ._common import console

app = typer.Typer(help="Add, list and deactivate regression-gate conditions.", no_args_is_help=True)


@app.command()
def add(
    model: str,
    metric: str = typer.Option(...),
    kind: str = typer.Option(..., help="min, max, delta, ratio"),
    threshold: float | None = typer.Option(None),
    direction: str | None = typer.Option(None),
    baseline: str = typer.Option("pinned", help="pinned, champion or a job id"),
    baseline_value: float | None = typer.Option(None),
    aggregation: str = typer.Option("last"),
    severity: str = typer.Option("critical"),
    on_missing: str = typer.Option("fail"),
) -> None:
    """Add a condition for MODEL."""
    created = client().baselines.create(
        model,
        metric=metric,
        kind=kind,
        threshold=threshold,
        direction=direction,
        baseline=baseline,
        baseline_value=baseline_value,
        aggregation=aggregation,
        severity=severity,
        on_missing=on_missing,
    )
    console.print(f"added {created.id}: {created.label} {created.kind} ({created.severity})")


@app.command("list")
def list_(model: str | None = typer.Argument(None), all_: bool = typer.Option(False, "--all")) -> None:
    """List conditions (active only unless --all)."""
    for b in client().baselines.list(model, active=None if all_ else True):
        bound = "" if b.threshold is None else f" {b.threshold:g}"
        console.print(
            f"{b.id}  {b.model_name:20} {b.label:18} {b.kind}{bound} {b.direction or ''} "
            f"[{b.severity}] {'' if b.active else '(inactive)'}",
            highlight=False,
        )


@app.command()
def deactivate(baseline_id: str) -> None:
    """Stop evaluating a condition."""
    client().baselines.deactivate(baseline_id)
    console.print(f"deactivated {baseline_id}")
