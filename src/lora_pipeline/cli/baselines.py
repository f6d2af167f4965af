"""``lora-pipeline baselines``: the conditions a model's next version must meet."""

from __future__ import annotations

import typer

from ._clients import client
from ._ids import resolve_id
from ._output import Column, JsonOpt, QuietOpt, emit_list, emit_one

app = typer.Typer(help="Add, list and deactivate regression-gate conditions.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("id", lambda b: b.id),
    ("model", lambda b: b.model_name),
    ("condition", lambda b: b.label),
    ("kind", lambda b: b.kind),
    ("threshold", lambda b: b.threshold),
    ("direction", lambda b: b.direction),
    ("severity", lambda b: b.severity),
    ("active", lambda b: "yes" if b.active else "no"),
]


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
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Add a condition for MODEL (adding the same condition again returns the existing one)."""
    lp = client()
    if baseline not in ("pinned", "champion"):
        baseline = resolve_id(lp, "job", baseline)
    created = lp.baselines.create(
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
    emit_one(created, json_out=json_out, quiet=quiet, text=lambda b: f"{b.id}  {b.label} {b.kind} ({b.severity})")


@app.command("list")
def list_(
    model: str | None = typer.Argument(None),
    all_: bool = typer.Option(False, "--all"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """List conditions (active only unless --all)."""
    found = client().baselines.list(model, active=None if all_ else True)
    emit_list(found, COLUMNS, json_out=json_out, quiet=quiet, empty="no conditions")


@app.command()
def deactivate(baseline_id: str, json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    """Stop evaluating a condition."""
    lp = client()
    done = lp.baselines.deactivate(resolve_id(lp, "baseline", baseline_id))
    emit_one(done, json_out=json_out, quiet=quiet, text=lambda b: f"deactivated {b.id}")
