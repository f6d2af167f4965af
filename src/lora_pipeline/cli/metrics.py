"""``lora-pipeline metrics``: upload spooled metrics, show a job's metrics."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from ._common import console, err_console

app = typer.Typer(help="Upload spooled metrics; show and plot a job's metrics.", no_args_is_help=True)


@app.command()
def sync(
    spool_dir: Path = typer.Argument(..., help="a reporter's spool directory (or one <job_id>.jsonl file)"),
    url: str | None = typer.Option(None, "--url", help="project URL (env SUPABASE_URL, LORA_PIPELINE_URL)"),
    anon_key: str | None = typer.Option(None, "--anon-key", help="anon key (env SUPABASE_ANON_KEY)"),
    job_token: str | None = typer.Option(None, "--job-token", help="the job's token (env LORA_JOB_TOKEN)"),
    timeout: float = typer.Option(30.0, help="seconds per request"),
) -> None:
    """Send the metric points a reporter could not send (replays are harmless). Exits 1 if some remain."""
    from ..pod.sync import sync_spool

    result = sync_spool(spool_dir, url=url, anon_key=anon_key, job_token=job_token, timeout=timeout)
    if not result.files:
        console.print(f"no metrics spool in {spool_dir}")
        return
    for item in result.files:
        state = "removed" if item.removed else ("kept" if item.pending or item.error else "done")
        line = f"{item.job_id or item.path.name}: sent {item.sent}, pending {item.pending} ({state})"
        if item.error:
            err_console.print(f"{line}: [red]{item.error}[/red]", highlight=False)
        else:
            console.print(line, highlight=False)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
def show(
    job_id: str = typer.Argument(..., help="the job"),
    plot: Path | None = typer.Option(None, "--plot", help="also write a PNG of train and eval loss here"),
    last: int = typer.Option(10, "--last", help="how many of the latest points to list"),
    json_out: bool = typer.Option(False, "--json", help="print {final: {how: {metric: value}}, points: [...]}"),
) -> None:
    """List a job's latest points and its final values (last, min, max) per metric."""
    from rich.table import Table

    from .._extras import require
    from ..resources.metrics import aggregate
    from ._clients import client
    from ._common import echo_json
    from ._ids import resolve_id

    if plot is not None:
        require(("matplotlib",), "plot", "--plot draws the loss curves with matplotlib")
    lp = client()
    job_id = resolve_id(lp, "job", job_id)
    points = lp.metrics.history(job_id)
    if json_out:
        finals = {how: aggregate(points, how) for how in ("last", "min", "max")}
        echo_json({"job_id": job_id, "final": finals, "points": [p.model_dump(mode="json") for p in points]})
    elif not points:
        console.print(f"job {job_id} has no metrics yet")
    else:
        table = Table(
            "metric", "last", "min", "max", title=f"{len(points)} points, steps {points[0].step}-{points[-1].step}"
        )
        finals = {how: aggregate(points, how) for how in ("last", "min", "max")}
        for name in finals["last"]:
            table.add_row(name, *(_number(finals[how].get(name)) for how in ("last", "min", "max")))
        console.print(table)
        recent = Table("step", "epoch", "train_loss", "eval_loss", "learning_rate", title="latest points")
        for point in points[-last:]:
            recent.add_row(
                str(point.step),
                _number(point.epoch),
                _number(point.train_loss),
                _number(point.eval_loss),
                _number(point.learning_rate),
            )
        console.print(recent)
    if plot is not None:
        lp.metrics.plot([job_id], path=plot)
        (err_console if json_out else console).print(f"wrote {plot}")  # stdout stays one JSON document


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return str(value) if not math.isfinite(value) else f"{value:.5g}"


__all__ = ["app"]
