"""``lora-pipeline runpod``: GPU types and prices; reaping stray pods."""

from __future__ import annotations

import typer

from ._clients import backend as make_backend
from ._clients import client
from ._common import console
from ._output import Column, JsonOpt, QuietOpt, emit_list

app = typer.Typer(help="RunPod helpers: GPU prices, stray-pod reaper.", no_args_is_help=True)


@app.command()
def gpus(
    live: bool = typer.Option(False, help="ask RunPod for current prices (needs RUNPOD_API_KEY)"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """The GPU configurations jobs can use, with list (or live) prices (-q: the keys for --gpu)."""
    from ..gpus import GPUS

    pods = make_backend("runpod", client()) if live else None
    rows = []
    for gpu in GPUS.values():
        price = pods.price(gpu.key) if pods is not None else gpu.price_per_hour
        rows.append(gpu.model_copy(update={"price_per_hour": price or 0.0}))
    columns: list[Column] = [
        ("key", lambda g: g.key),
        ("name", lambda g: g.name),
        ("vram_gb", lambda g: g.vram_gb),
        ("usd_per_hour", lambda g: f"{g.price_per_hour or 0:.2f}"),
        ("runpod_id", lambda g: g.runpod_id),
    ]
    emit_list(rows, columns, json_out=json_out, quiet=quiet, ids=lambda g: g.key)


@app.command()
def reap(
    dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be terminated"),
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Terminate lp- pods whose job ended, vanished or stopped heartbeating (run with --role service)."""
    lp = client()
    condemned = lp.jobs.reap(backend=make_backend("runpod", lp), dry_run=dry_run)
    verb = "would terminate" if dry_run else "terminated"
    columns: list[Column] = [("pod_id", lambda h: h.pod_id), ("name", lambda h: h.name), ("gpu", lambda h: h.gpu_type)]
    emit_list(condemned, columns, json_out=json_out, quiet=quiet, ids=lambda h: h.pod_id, empty=f"no pod {verb}")
    if not (json_out or quiet):
        console.print(f"# {len(condemned)} pod(s) {verb}")
