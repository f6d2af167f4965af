"""``lora-pipeline jobs``: create, estimate, deploy, watch and cancel training jobs."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import typer

from .._exceptions import ConfigError
from ._clients import backend as make_backend
from ._clients import client
from ._common import console
from ._ids import resolve_id
from ._output import Column, JsonOpt, QuietOpt, as_json, emit_list, emit_one, key_values

app = typer.Typer(help="Create, deploy, watch and cancel training jobs.", no_args_is_help=True)
BackendOpt = typer.Option("local", "--backend", help="local or runpod")
GpuOpt = typer.Option(None, "--gpu", help="GPU key (repeat for failover order), e.g. A40")


def status_text(job: Any) -> str:
    """``failed (training_error): CUDA out of memory``: the status with its reason and message, when any."""
    return str(job.status_text())


COLUMNS: list[Column] = [
    ("id", lambda j: j.id),
    ("status", lambda j: str(j.status) + (f"/{j.status_reason}" if j.status_reason else "")),
    ("base_model", lambda j: j.base_model),
    ("name", lambda j: j.name),
]
EVENT_COLUMNS: list[Column] = [
    ("time", lambda e: f"{e.created_at:%Y-%m-%d %H:%M:%S}" if e.created_at else None),
    ("level", lambda e: e.level),
    ("kind", lambda e: e.kind),
    ("message", lambda e: e.message),
]


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if not match:
        raise ConfigError(f"--max-runtime takes a duration like 90m, 6h or 1d, not {text!r}", argument="max_runtime")
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
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Create a job (status created); prints its id (-q: the id alone)."""
    lp = client()
    gates = {"model_name": gate_model} if gate_model else None
    job = lp.jobs.create(
        resolve_id(lp, "dataset", dataset_id),
        base_model=base_model,
        preset=preset,
        hyperparameters=_overrides(hp),
        gpu_type=gpu,
        max_runtime=_duration(max_runtime),
        max_cost_usd=max_cost,
        name=name,
        gates=gates,
    )
    emit_one(job, json_out=json_out, quiet=quiet, text=lambda j: f"{j.id}  {status_text(j)}  {j.base_model}")


@app.command()
def estimate(
    dataset_id: str,
    base_model: str = typer.Option(..., "--base-model"),
    preset: str = typer.Option("balanced"),
    gpu: str | None = typer.Option(None, "--gpu"),
    live: bool = typer.Option(False, help="live RunPod price"),
    json_out: bool = JsonOpt,
) -> None:
    """Estimate steps, time and cost before launching (refused, like create, when the model cannot fit)."""
    lp = client()
    price_source = make_backend("runpod", lp) if live else None
    found = lp.jobs.estimate(
        resolve_id(lp, "dataset", dataset_id), base_model=base_model, preset=preset, gpu_type=gpu, backend=price_source
    )
    emit_one(found, json_out=json_out, quiet=False, text=str)


def _finish(lp: Any, job: Any) -> None:
    """After waiting: the status with its reason, the gate's table when one ran; exit 0 only on success."""
    console.print(key_values(job.display_rows()), markup=False)
    report = lp.gates.report(job.id)
    if report is not None:
        console.print(report)
    raise typer.Exit(0 if job.status == "succeeded" else 1)


@app.command()
def deploy(
    job_id: str,
    backend: str = BackendOpt,
    gpu: list[str] | None = GpuOpt,
    wait: bool = typer.Option(False, "--wait", help="wait for the job to end (exit 0 only if it succeeded)"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Launch the job's pod."""
    lp = client()
    pods = make_backend(backend, lp, gpu)
    job = lp.jobs.deploy(resolve_id(lp, "job", job_id), backend=pods)
    if wait:
        job = lp.jobs.wait_for_completion(job.id, backend=pods, progress=not (json_out or quiet))
        if json_out or quiet:
            emit_one(job, json_out=json_out, quiet=quiet, text=status_text)
            raise typer.Exit(0 if job.status == "succeeded" else 1)
        _finish(lp, job)
    emit_one(
        job,
        json_out=json_out,
        quiet=quiet,
        text=lambda j: f"job {j.id} is {status_text(j)} on {backend} (pod {j.pod_id})",
    )
    if job.status == "failed":
        raise typer.Exit(1)


@app.command()
def status(job_id: str, json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    """Show one job: status with reason and message, progress, price, runtime."""
    lp = client()
    job = lp.jobs.retrieve(resolve_id(lp, "job", job_id))
    emit_one(job, json_out=json_out, quiet=quiet, text=lambda j: key_values(j.display_rows()))


@app.command("list")
def list_(
    status: str | None = typer.Option(None),
    dataset: str | None = typer.Option(None),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """List jobs, newest first."""
    lp = client()
    dataset_id = resolve_id(lp, "dataset", dataset) if dataset else None
    emit_list(
        lp.jobs.list(status=status, dataset_id=dataset_id), COLUMNS, json_out=json_out, quiet=quiet, empty="no jobs"
    )


@app.command()
def cancel(
    job_id: str,
    backend: str | None = typer.Option(None, "--backend", help="terminate the pod here"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Cancel a job (cancelling, then cancelled once the pod is gone)."""
    lp = client()
    job = lp.jobs.cancel(resolve_id(lp, "job", job_id), backend=make_backend(backend, lp) if backend else None)
    emit_one(job, json_out=json_out, quiet=quiet, text=lambda j: f"job {j.id} is {status_text(j)}")


@app.command()
def events(job_id: str, json_out: bool = JsonOpt, quiet: bool = QuietOpt) -> None:
    """The job's timeline (-q: event ids)."""
    lp = client()
    found = lp.jobs.events(resolve_id(lp, "job", job_id))
    emit_list(found, EVENT_COLUMNS, json_out=json_out, quiet=quiet, empty="no events")


@app.command()
def logs(job_id: str, tail: int = typer.Option(200)) -> None:
    """The pod's messages (from the job's events)."""
    lp = client()
    typer.echo(lp.jobs.logs(resolve_id(lp, "job", job_id), tail=tail))


@app.command()
def wait(
    job_id: str,
    timeout: float | None = typer.Option(None),
    backend: str | None = typer.Option(None),
    json_out: bool = JsonOpt,
) -> None:
    """Wait for a job to end with a live progress bar; exit 0 when it succeeded."""
    lp = client()
    pods = make_backend(backend, lp) if backend else None
    job = lp.jobs.wait_for_completion(
        resolve_id(lp, "job", job_id), timeout=timeout, backend=pods, progress=not json_out
    )
    if json_out:
        typer.echo(json.dumps(as_json(job), indent=2, default=str))
        raise typer.Exit(0 if job.status == "succeeded" else 1)
    _finish(lp, job)


@app.command()
def delete(job_id: str, yes: bool = typer.Option(False, "--yes", help="do not ask")) -> None:
    """Delete an ended job with its events, metrics, costs, gate results and adapter files."""
    lp = client()
    full_id = resolve_id(lp, "job", job_id)
    if not yes:
        typer.confirm(f"delete job {full_id} and everything it produced?", abort=True)
    lp.jobs.delete(full_id)
    console.print(f"deleted job {full_id}")
