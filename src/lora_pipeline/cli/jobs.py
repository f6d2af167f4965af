"""``lora-pipeline jobs``: create, estimate, deploy, watch and cancel training jobs."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import typer

from .._exceptions import ConfigError
from ._clients import backend as make_backend
from ._clients import client
from ._common import console, echo_json

app = typer.Typer(help="Create, deploy, watch and cancel training jobs.", no_args_is_help=True)
BackendOpt = typer.Option("local", "--backend", help="local or runpod")
GpuOpt = typer.Option(None, "--gpu", help="GPU key (repeat for failover order), e.g. A40")


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match:
        raise ConfigError(f"durations look like 90m, 6h or 1d, not {text!r}", argument="max_runtime")
    return timedelta(**{{"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]: float(match[1])})


def _overrides(pairs: list[str]) -> dict[str, object]:
    values: dict[str, object] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ConfigError(f"--hp takes key=value, got {pair!r}", argument="hp")
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


@app.command()
def create(
    dataset_id: str,
    base_model: str = typer.Option(..., "--base-model"),
    preset: str = typer.Option("balanced"),
    gpu: str | None = typer.Option(None, "--gpu"),
    max_runtime: str = typer.Option("6h", "--max-runtime"),
    max_cost: float | None = typer.Option(None),
    name: str | None = typer.Option(None),
    hp: list[str] = typer.Option([], "--hp", help="key=value override"),
    gate_model: str | None = typer.Option(None, "--gate-model", help="run this model's gate on success"),
) -> None:
    """Create a job (status created); prints its id."""
    gates = {"model_name": gate_model} if gate_model else None
    job = client().jobs.create(
        dataset_id,
        base_model=base_model,
        preset=preset,
        hyperparameters=_overrides(hp),
        gpu_type=gpu,
        max_runtime=_duration(max_runtime),
        max_cost_usd=max_cost,
        name=name,
        gates=gates,
    )
    console.print(f"created job {job.id}")


@app.command()
def estimate(
    dataset_id: str,
    base_model: str = typer.Option(..., "--base-model"),
    preset: str = typer.Option("balanced"),
    gpu: str | None = typer.Option(None, "--gpu"),
    live: bool = typer.Option(False, help="live RunPod price"),
) -> None:
    """Estimate steps, time and cost before launching."""
    lp = client()
    price_source = make_backend("runpod", lp) if live else None
    console.print(
        str(lp.jobs.estimate(dataset_id, base_model=base_model, preset=preset, gpu_type=gpu, backend=price_source)),
        highlight=False,
    )


@app.command()
def deploy(
    job_id: str,
    backend: str = BackendOpt,
    gpu: list[str] | None = GpuOpt,
    wait: bool = typer.Option(False, "--wait", help="wait for the job to end"),
) -> None:
    """Launch the job's pod."""
    lp = client()
    pods = make_backend(backend, lp, gpu)
    job = lp.jobs.deploy(job_id, backend=pods)
    console.print(f"job {job.id} is {job.status} on {backend} (pod {job.pod_id})")
    if wait:
        job = lp.jobs.wait_for_completion(job.id, backend=pods)
        console.print(job)
        raise typer.Exit(0 if job.status == "succeeded" else 1)


@app.command()
def status(job_id: str, json_out: bool = typer.Option(False, "--json")) -> None:
    """Show one job."""
    job = client().jobs.retrieve(job_id)
    echo_json(job.model_dump(mode="json")) if json_out else console.print(job)


@app.command("list")
def list_(status: str | None = typer.Option(None), dataset: str | None = typer.Option(None)) -> None:
    """List jobs, newest first."""
    for job in client().jobs.list(status=status, dataset_id=dataset):
        console.print(f"{job.id}  {job.status:12} {job.base_model}  {job.name or ''}", highlight=False)


@app.command()
def cancel(job_id: str, backend: str | None = typer.Option(None, "--backend", help="terminate the pod here")) -> None:
    """Cancel a job (cancelling, then cancelled once the pod is gone)."""
    lp = client()
    job = lp.jobs.cancel(job_id, backend=make_backend(backend, lp) if backend else None)
    console.print(f"job {job.id} is {job.status}")


@app.command()
def events(job_id: str) -> None:
    """The job's timeline."""
    for e in client().jobs.events(job_id):
        console.print(f"{e.created_at:%Y-%m-%d %H:%M:%S}  {e.level:7} {e.kind:8} {e.message}", highlight=False)


@app.command()
def logs(job_id: str, tail: int = typer.Option(200)) -> None:
    """The pod's messages (from the job's events)."""
    typer.echo(client().jobs.logs(job_id, tail=tail))


@app.command()
def wait(job_id: str, timeout: float | None = typer.Option(None), backend: str | None = typer.Option(None)) -> None:
    """Wait for a job to end with a live progress bar; exit 0 when it succeeded."""
    lp = client()
    job = lp.jobs.wait_for_completion(job_id, timeout=timeout, backend=make_backend(backend, lp) if backend else None)
    console.print(job)
    raise typer.Exit(0 if job.status == "succeeded" else 1)
