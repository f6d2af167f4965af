"""The measured programs of ``python -m bench --peers``, one process each: ``python -m bench.peers.children KIND``.

Each reads its settings as one JSON line on stdin and prints one JSON line: the sorted nanoseconds of every
``log()`` call on the calling thread, and the seconds from the first call until everything logged was
acknowledged by its store (ours: the stack's ``flush()``; wandb offline: ``finish()`` wrote the run file;
MLflow: the last synchronous call returned, or ``flush_async_logging()``). The loop is the same for all: a tight
loop over pre-built steps of 6 floats (:mod:`bench._shape`). Only this module and ``bench._shape`` are
imported, so it runs in an interpreter that has wandb and MLflow but not lora-pipeline, and vice versa.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._shape import step_values


def timed_loop(log: Callable[[int, dict[str, float]], object], calls: int) -> tuple[list[int], float]:
    """Nanoseconds per ``log(step, values)``, sorted, and the perf_counter time the loop began."""
    values = [step_values(step) for step in range(calls)]
    clock = time.perf_counter_ns
    durations = [0] * calls
    began = time.perf_counter()
    for step in range(calls):
        start = clock()
        log(step, values[step])
        durations[step] = clock() - start
    durations.sort()
    return durations, began


def ours(settings: dict[str, Any]) -> dict[str, Any]:
    """``MetricsReporter`` with its default settings, reporting to the stack with a job token, as a pod does."""
    from lora_pipeline.pod import MetricsReporter

    reporter = MetricsReporter(
        settings["job_id"],
        settings["token"],
        settings["url"],
        settings["anon_key"],
        spool_dir=settings["directory"],
        rank=0,
        handle_signals=False,
    )
    durations, began = timed_loop(lambda step, values: reporter.log(step, **values), settings["calls"])
    reporter.flush(timeout=600)
    seconds = time.perf_counter() - began
    stats = reporter.finish(timeout=60)
    return {"durations_ns": durations, "seconds": seconds, "pending": stats.pending}


def wandb_offline(settings: dict[str, Any]) -> dict[str, Any]:
    """``run.log(values, step=step)`` in offline mode; ``finish()`` returns once the run file holds everything."""
    import wandb  # type: ignore[import-not-found,unused-ignore]  # the bench-peers extra

    os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=settings["directory"])
    run = wandb.init(project="lora-bench", mode="offline", dir=settings["directory"])
    durations, began = timed_loop(lambda step, values: run.log(values, step=step), settings["calls"])
    run.finish()
    seconds = time.perf_counter() - began
    files = sorted(Path(settings["directory"]).glob("wandb/offline-run-*/run-*.wandb"))
    return {"durations_ns": durations, "seconds": seconds, "run_file": str(files[-1]) if files else None}


def mlflow_tracking(settings: dict[str, Any]) -> dict[str, Any]:
    """``mlflow.log_metrics(values, step=step)`` to the tracking server; async with buffering when asked."""
    if settings.get("async_buffering_seconds"):
        os.environ["MLFLOW_ENABLE_ASYNC_LOGGING"] = "true"
        os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = str(settings["async_buffering_seconds"])
    import mlflow  # type: ignore[import-not-found,unused-ignore]  # the bench-peers extra

    mlflow.set_tracking_uri(settings["url"])
    experiment = mlflow.set_experiment(settings["experiment"])
    with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
        durations, began = timed_loop(lambda step, values: mlflow.log_metrics(values, step=step), settings["calls"])
        if settings.get("async_buffering_seconds"):
            mlflow.flush_async_logging()
        seconds = time.perf_counter() - began
    return {"durations_ns": durations, "seconds": seconds, "run_id": run.info.run_id}


def versions() -> dict[str, str | None]:
    """What this interpreter can run: the peers' versions (None when not installed)."""
    found: dict[str, str | None] = {}
    for name in ("wandb", "mlflow"):
        try:
            found[name] = __import__(name).__version__
        except Exception:
            found[name] = None
    return found


KINDS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ours": ours,
    "wandb": wandb_offline,
    "mlflow": mlflow_tracking,
}


def main() -> None:
    kind = sys.argv[1]
    if kind == "versions":
        print(json.dumps(versions()), flush=True)
        return
    settings = json.loads(sys.stdin.readline())
    print(json.dumps(KINDS[kind](settings)), flush=True)


if __name__ == "__main__":
    main()
