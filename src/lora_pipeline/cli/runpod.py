"""``lora-pipeline runpod``: GPU types and prices; reaping stray pods."""

from __future__ import annotations

import typer

from ._clients import backend as make_backend
from ._clients import client
from ._common import console

app = typer.Typer(help="RunPod helpers: GPU prices, stray-pod reaper.", no_args_is_help=True)


@app.command()
def gpus(live: bool = typer.Option(False, help="ask RunPod for current prices (needs RUNPOD_API_KEY)")) -> None:
    """The GPU configurations jobs can use, with list (or live) prices."""
    from ..gpus import GPUS

    pods = make_backend("runpod", client()) if live else None
    for gpu in GPUS.values():
        price = pods.price(gpu.key) if pods is not None else gpu.price_per_hour
        console.print(
            f"{gpu.key:10} {gpu.name:18} {gpu.vram_gb:>4} GB  ${price or 0:.2f}/h  {gpu.runpod_id}", highlight=False
        )


@app.command()
def reap(dry_run: bool = typer.Option(False, "--dry-run", help="only list what would be terminated")) -> None:
    """Terminate lp- pods whose job ended, vanished or stopped heartbeating (run with the service role)."""
    lp = client()
    condemned = lp.jobs.reap(backend=make_backend("runpod", lp), dry_run=dry_run)
    verb = "would terminate" if dry_run else "terminated"
    for handle in condemned:
        console.print(f"{verb} {handle.pod_id} ({handle.name})")
    console.print(f"{len(condemned)} pod(s) {verb}")
