"""``lora-pipeline gates validate``: a CI step (exit 0 pass, 1 warn in strict mode or block, 2 error)."""

from __future__ import annotations

import typer

from ._clients import client
from ._common import console

app = typer.Typer(help="Run regression gates.", no_args_is_help=True)


@app.command()
def validate(
    job_id: str,
    model: str = typer.Option(..., "--model"),
    version: str | None = typer.Option(None),
    strict: bool = typer.Option(False, "--strict", help="warnings block too"),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Evaluate the model's conditions against a finished job; records the result."""
    report = client().gates.validate(job_id, model_name=model, version=version, strict=strict)
    if json_out:
        typer.echo(report.to_json())
    else:
        console.print(report)
    raise typer.Exit(0 if report.decision == "pass" or (report.decision == "warn" and not strict) else 1)
