"""``lora-pipeline datasets``: validate, upload, list, show, download and delete datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ._clients import client
from ._common import console
from ._ids import resolve_id
from ._output import Column, JsonOpt, QuietOpt, emit_list, emit_one

app = typer.Typer(help="Validate and manage training datasets.", no_args_is_help=True)

COLUMNS: list[Column] = [
    ("id", lambda d: d.id),
    ("status", lambda d: d.status),
    ("examples", lambda d: d.num_examples),
    ("format", lambda d: d.format),
    ("name", lambda d: d.name),
]


def _summary(d: Any) -> str:
    return f"{d.id}  {d.name}: {d.status}, {d.num_examples or 0} examples, {d.format or '-'}, {d.size_bytes or 0} bytes"


@app.command()
def validate(
    file: Path = typer.Argument(..., help="JSONL or JSON-array file"),
    format: str = typer.Option("auto", "--format", help="chat, sharegpt, alpaca, prompt_completion, text"),
    max_seq_len: int | None = typer.Option(None, "--max-seq-len"),
    json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
) -> None:
    """Validate a dataset offline; exit code 0 when valid, 1 when invalid."""
    from ..datasets import validate_file

    report = validate_file(file, format=format, max_seq_len=max_seq_len)
    if json_out:
        typer.echo(report.to_json())
    else:
        console.print(report)
    raise typer.Exit(0 if report.valid else 1)


@app.command()
def upload(
    file: Path,
    name: str = typer.Option(..., "--name"),
    description: str | None = typer.Option(None),
    format: str = typer.Option("auto", "--format"),
    user_id: str | None = typer.Option(None, "--user-id", help="service role only"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Validate and upload a dataset; prints its id and summary (-q: the id alone)."""
    dataset = client().datasets.upload(file, name=name, description=description, format=format, user_id=user_id)
    emit_one(dataset, json_out=json_out, quiet=quiet, text=_summary)


@app.command("list")
def list_(status: str | None = typer.Option(None), json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    """List datasets, newest first."""
    emit_list(client().datasets.list(status=status), COLUMNS, json_out=json_out, quiet=quiet, empty="no datasets")


@app.command()
def show(dataset_id: str, json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    """Show one dataset (an id or its first characters)."""
    lp = client()
    emit_one(lp.datasets.retrieve(resolve_id(lp, "dataset", dataset_id)), json_out=json_out, quiet=quiet, text=_summary)


@app.command()
def download(dataset_id: str, dest: Path = typer.Argument(Path("."))) -> None:
    """Download a dataset's file (checked against its SHA-256); prints the saved path."""
    lp = client()
    path = lp.datasets.download(resolve_id(lp, "dataset", dataset_id), dest)
    typer.echo(str(path))


@app.command()
def delete(dataset_id: str, yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Delete a dataset (its row and its file)."""
    lp = client()
    full_id = resolve_id(lp, "dataset", dataset_id)
    if not yes:
        typer.confirm(f"delete dataset {full_id}?", abort=True)
    lp.datasets.delete(full_id)
    console.print(f"deleted {full_id}")
