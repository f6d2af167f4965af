"""``lora-pipeline datasets``: validate, upload, list, download and delete datasets."""

from __future__ import annotations

from pathlib import Path

import typer

from ._clients import client
from ._common import console, echo_json

app = typer.Typer(help="Validate and manage training datasets.", no_args_is_help=True)


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
) -> None:
    """Validate and upload a dataset; prints the dataset id."""
    dataset = client().datasets.upload(file, name=name, description=description, format=format, user_id=user_id)
    console.print(f"uploaded {dataset.name}: {dataset.id} ({dataset.num_examples} examples, {dataset.format})")


@app.command("list")
def list_(status: str | None = typer.Option(None), json_out: bool = typer.Option(False, "--json")) -> None:
    """List datasets."""
    datasets = client().datasets.list(status=status)
    if json_out:
        echo_json([d.model_dump(mode="json") for d in datasets])
        return
    for d in datasets:
        console.print(
            f"{d.id}  {d.status:9} {d.num_examples or 0:>7} ex  {d.format or '-':17} {d.name}", highlight=False
        )


@app.command()
def download(dataset_id: str, dest: Path = typer.Argument(Path("."))) -> None:
    """Download a dataset's file (checked against its SHA-256)."""
    path = client().datasets.download(dataset_id, dest)
    console.print(f"saved {path}")


@app.command()
def delete(dataset_id: str, yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Delete a dataset (its row and its file)."""
    if not yes:
        typer.confirm(f"delete dataset {dataset_id}?", abort=True)
    client().datasets.delete(dataset_id)
    console.print(f"deleted {dataset_id}")
