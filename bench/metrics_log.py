"""Benchmark: what ``MetricsReporter.log()`` costs the training thread while its threads send to a real stack.

Starts a durable embedded stack, makes a job with a known token (SQL as superuser), and times each
``reporter.log(step, **values)`` call with ``perf_counter_ns`` in two loop shapes:

1. **the peers' shape** (the headline): a tight loop, 6 floats a call (``bench._shape``), as wandb's and
   MLflow's benchmarks log; the reporter's spool writer and sender compete with the caller for the GIL throughout;
2. **a training step's shape**: 4 values a call and a 1 ms sleep every 50 calls, as a step waiting on the GPU
   releases the GIL (a real step leaves the sender far more room). The sleeps are not timed.

The values are built before the timer starts. Reported: median, p99, p99.9 and max per call, and how many rows
reached Postgres. Baseline, same loop and timer, just before: a no-op function taking the same arguments
(``def f(step, *, epoch=None, **values): pass``), i.e. what any Python call with these arguments costs here.

    python -m bench.metrics_log               # 100,000 calls per shape
    python -m bench.metrics_log --calls 20000

Target: p99 < 20 µs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

from ._durability import start_stack
from ._jobs import make_jobs
from ._report import Figure, Result, percentile
from ._shape import VALUES_PER_STEP, step_values
from ._suite import run_standalone, standalone

NAME = "metrics_log"
TARGET_P99_US = 20.0
STEP_EVERY, STEP_SECONDS = 50, 0.001  # the caller releases the GIL like a training step would


def _no_op(step: int | None = None, *, epoch: float | None = None, **values: Any) -> None:
    return None


def _step_shape_values(step: int) -> dict[str, float]:
    return {"loss": 2.0 - step * 1e-5, "learning_rate": 2e-4, "grad_norm": 0.8, "epoch": step / 10_000}


SHAPES: dict[str, tuple[Callable[[int], dict[str, float]], int]] = {
    "tight": (step_values, 0),
    "step": (_step_shape_values, STEP_EVERY),
}
"""Loop shape -> (the values of a step, sleep 1 ms every so many calls; 0: never)."""


def timed_calls(log: Callable[..., None], calls: int, shape: str = "tight") -> tuple[list[int], float]:
    """Nanoseconds per ``log(step, **values)`` call, sorted, and the loop's wall seconds (sleeps included)."""
    build, sleep_every = SHAPES[shape]
    values = [build(step) for step in range(calls)]
    clock = time.perf_counter_ns
    durations = []
    began = time.perf_counter()
    for step in range(calls):
        start = clock()
        log(step, **values[step])
        durations.append(clock() - start)
        if sleep_every and step % sleep_every == 0:
            time.sleep(STEP_SECONDS)
    seconds = time.perf_counter() - began
    durations.sort()
    return durations, seconds


def _summary(durations: list[int]) -> dict[str, float]:
    return {
        "median_us": round(percentile(durations, 0.5) / 1000, 3),
        "p99_us": round(percentile(durations, 0.99) / 1000, 3),
        "p999_us": round(percentile(durations, 0.999) / 1000, 3),
        "max_us": round(durations[-1] / 1000, 1),
        "mean_us": round(sum(durations) / len(durations) / 1000, 3),
    }


def measure(calls: int) -> dict[str, Any]:
    from lora_pipeline.pod import MetricsReporter

    measured: dict[str, Any] = {"calls": calls, "values_per_call": {"tight": VALUES_PER_STEP, "step": 4}}
    with start_stack(durable=True) as stack:
        for shape in SHAPES:
            baseline, _ = timed_calls(_no_op, calls, shape)
            _, [(job_id, token)] = make_jobs(stack)
            with tempfile.TemporaryDirectory(prefix="lora-bench-") as spool:
                reporter = MetricsReporter(
                    job_id,
                    token,
                    stack.url,
                    stack.anon_key,
                    spool_dir=spool,
                    rank=0,
                    flush_interval=0.05,
                    handle_signals=False,
                )
                durations, loop_seconds = timed_calls(reporter.log, calls, shape)
                sent_during_loop = reporter.stats().sent
                # flush(timeout) waits until every logged call is acknowledged; finish() alone may return while
                # the spool writer is still encoding a large pass (a race in finish()), leaving rows unsent.
                reporter.flush(timeout=120)
                stats = reporter.finish(timeout=120)
            measured[shape] = {
                "log": _summary(durations),
                "no_op_baseline": _summary(baseline),
                "loop_seconds": round(loop_seconds, 3),
                "rows_sent_during_loop": sent_during_loop,
                "rows_sent_total": stats.sent,
                "rows_pending_after_finish": stats.pending,
            }
    measured["step"].update(sleep_every_calls=STEP_EVERY, sleep_seconds=STEP_SECONDS)
    return measured


def run(*, quick: bool = False, calls: int | None = None) -> Result:
    measured = measure(calls or (10_000 if quick else 100_000))
    calls_text = f"{measured['calls']:,} calls"
    tight, step = measured["tight"], measured["step"]
    log, base = tight["log"], tight["no_op_baseline"]
    words = f"tight loop, 6 floats, {calls_text}, sender busy"
    figures = [
        Figure(f"log() median, {words}", log["median_us"], "µs", base["median_us"], "no-op call"),
        Figure(
            f"log() p99, {words}",
            log["p99_us"],
            "µs",
            base["p99_us"],
            "no-op call",
            target=f"p99 < {TARGET_P99_US:g} µs",
            passed=log["p99_us"] < TARGET_P99_US,
        ),
        Figure("log() p99.9, same", log["p999_us"], "µs", base["p999_us"], "no-op call"),
        Figure(
            f"log() p99, step shape (4 values, 1 ms sleep every {STEP_EVERY} calls)",
            step["log"]["p99_us"],
            "µs",
            step["no_op_baseline"]["p99_us"],
            "no-op call",
        ),
    ]
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = standalone(NAME, argv, lambda p: p.add_argument("--calls", type=int, help="log() calls to time"))
    return run_standalone(NAME, lambda: run(quick=args.quick, calls=args.calls), args)


if __name__ == "__main__":
    main()
