"""``lora-pipeline gates validate``: a CI step (exit 0 pass, 1 warn in strict mode or block, 2 error).

Re-gating a job records a new report; it changes the job's status only with ``--apply``. ``--dry-run``
evaluates and prints without recording anything. A model without active conditions is an error (exit 2)
unless ``--allow-empty``: a typo in ``--model`` must not read as a pass.
"""

from __future__ import annotations

import typer

from ._clients import client
from ._common import console
from ._ids import resolve_id

app = typer.Typer(help="Run regression gates.", no_args_is_help=True)


@app.command()
def validate(
    job_id: str,
    model: str = typer.Option(..., "--model"),
    version: str | None = typer.Option(None),
    strict: bool = typer.Option(False, "--strict", help="warnings block too"),
    dry_run: bool = typer.Option(False, "--dry-run", help="evaluate only: record nothing, change nothing"),
    apply: bool = typer.Option(False, "--apply", help="let a block mark the job failed/gate_failed"),
    allow_empty: bool = typer.Option(False, "--allow-empty", help="a model without conditions passes"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate the model's conditions against a finished job; records the result (unless --dry-run)."""
    lp = client()
    report = lp.gates.validate(
        resolve_id(lp, "job", job_id),
        model_name=model,
        version=version,
        strict=strict,
        dry_run=dry_run,
        apply=apply,
        allow_empty=allow_empty,
    )
    if json_out:
        typer.echo(report.to_json())
    else:
        console.print(report)
    raise typer.Exit(0 if report.decision == "pass" or (report.decision == "warn" and not strict) else 1)


@app.command()
def report(job_id: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """The latest recorded gate result of a job (exit 1 when none was recorded)."""
    lp = client()
    found = lp.gates.report(resolve_id(lp, "job", job_id))
    if found is None:
        console.print(f"job {job_id} has no recorded gate result")
        raise typer.Exit(1)
    typer.echo(found.to_json()) if json_out else console.print(found)
