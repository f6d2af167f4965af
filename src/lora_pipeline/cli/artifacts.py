"""``lora-pipeline artifacts``: list and download trained adapters."""

from __future__ import annotations

from pathlib import Path

import typer

from ._clients import client
from ._common import console

app = typer.Typer(help="List and download trained adapters.", no_args_is_help=True)


@app.command("list")
def list_(job: str | None = typer.Option(None, "--job")) -> None:
    """List artifacts, newest first."""
    for a in client().artifacts.list(job_id=job):
        files = ", ".join(f.name for f in a.files)
        console.print(f"{a.id}  job {a.job_id}  {a.size_bytes / 1e6:.1f} MB  {files}", highlight=False)


@app.command()
def download(artifact_or_job_id: str, dest: Path = typer.Argument(Path("adapter"))) -> None:
    """Download an artifact (or a job's newest artifact) into DEST, verifying every file."""
    path = client().artifacts.download(artifact_or_job_id, dest)
    console.print(f"saved to {path}")
