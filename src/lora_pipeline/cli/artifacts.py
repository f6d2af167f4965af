"""``lora-pipeline artifacts``: list and download trained adapters."""

from __future__ import annotations

from pathlib import Path

import typer

from .._exceptions import NotFound
from ._clients import client
from ._ids import resolve_id
from ._output import Column, JsonOpt, QuietOpt, emit_list

app = typer.Typer(help="List and download trained adapters.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("id", lambda a: a.id),
    ("job_id", lambda a: a.job_id),
    ("size_mb", lambda a: f"{a.size_bytes / 1e6:.1f}"),
    ("files", lambda a: ", ".join(f.name for f in a.files)),
]


@app.command("list")
def list_(job: str | None = typer.Option(None, "--job"), json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    """List artifacts, newest first."""
    lp = client()
    job_id = resolve_id(lp, "job", job) if job else None
    emit_list(lp.artifacts.list(job_id=job_id), COLUMNS, json_out=json_out, quiet=quiet, empty="no artifacts")


@app.command()
def download(artifact_or_job_id: str, dest: Path = typer.Argument(Path("adapter"))) -> None:
    """Download an artifact (or a job's newest artifact) into DEST, verifying every file; prints the folder."""
    lp = client()
    try:
        full_id = resolve_id(lp, "artifact", artifact_or_job_id)
    except NotFound:
        full_id = resolve_id(lp, "job", artifact_or_job_id)
    typer.echo(str(lp.artifacts.download(full_id, dest)))
