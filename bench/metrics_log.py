"""Benchmark: what ``MetricsReporter.log()`` costs the training thread while its threads send to a real stack.

Starts the embedded stack, makes a job with a known token (SQL as superuser), and calls
``reporter.log(step, loss=..., learning_rate=..., grad_norm=..., epoch=...)`` 100,000 times in a tight loop,
timing each call with ``perf_counter_ns``. Every 50 calls the loop sleeps 1 ms, as a training step waiting on
the GPU releases the GIL; the reporter flushes every 50 ms, so its spool writer and sender compete with the caller
for the GIL throughout (a real step leaves them far more room). Reported: median, p99, p99.9 and max per call (the
sleeps are not timed), and how many points reached Postgres during the loop.

Baseline, same loop and timer, just before: a no-op function taking the same arguments (``def f(step, *,
epoch=None, **values): pass``), i.e. what any Python call with these keyword arguments costs here, timer included.

    python -m bench.metrics_log               # 100,000 calls
    python -m bench.metrics_log --calls 20000

Target: p99 < 20 µs.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from typing import Any

from ._jobs import make_jobs
from ._report import Figure, Result, percentile
from ._suite import run_standalone, standalone

NAME = "metrics_log"
TARGET_P99_US = 20.0
STEP_EVERY, STEP_SECONDS = 50, 0.001  # the caller releases the GIL like a training step would


def _no_op(step: int | None = None, *, epoch: float | None = None, **values: Any) -> None:
    return None


def timed_calls(log: Callable[..., None], calls: int) -> tuple[list[int], float]:
    """Nanoseconds per ``log(...)`` call, sorted, and the loop's wall seconds (sleeps included)."""
    clock = time.perf_counter_ns
    durations = []
    began = time.perf_counter()
    for step in range(calls):
        start = clock()
        log(step, loss=2.0 - step * 1e-5, learning_rate=2e-4, grad_norm=0.8, epoch=step / 10_000)
        durations.append(clock() - start)
        if step % STEP_EVERY == 0:
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
    from lora_pipeline.local_supabase import LocalSupabase
    from lora_pipeline.pod import MetricsReporter

    with LocalSupabase.start() as stack, tempfile.TemporaryDirectory(prefix="lora-bench-") as spool:
        baseline, _ = timed_calls(_no_op, calls)
        _, [(job_id, token)] = make_jobs(stack)
        reporter = MetricsReporter(
            job_id, token, stack.url, stack.anon_key, spool_dir=spool, rank=0, flush_interval=0.05, handle_signals=False
        )
        durations, loop_seconds = timed_calls(reporter.log, calls)
        sent_during_loop = reporter.stats().sent
        # flush(timeout) waits until every logged call is acknowledged; finish() alone may return while the spool
        # writer is still encoding a large pass (a race in finish(), reported separately), leaving points unsent.
        reporter.flush(timeout=120)
        stats = reporter.finish(timeout=120)
    return {
        "calls": calls,
        "values_per_call": 4,
        "sleep_every_calls": STEP_EVERY,
        "sleep_seconds": STEP_SECONDS,
        "log": _summary(durations),
        "no_op_baseline": _summary(baseline),
        "loop_seconds": round(loop_seconds, 3),
        "points_sent_during_loop": sent_during_loop,
        "points_sent_total": stats.sent,
        "points_pending_after_finish": stats.pending,
    }


def run(*, quick: bool = False, calls: int | None = None) -> Result:
    measured = measure(calls or (10_000 if quick else 100_000))
    log, base = measured["log"], measured["no_op_baseline"]
    calls_text = f"{measured['calls']:,} calls"
    figures = [
        Figure(f"log() median, {calls_text}, sender busy", log["median_us"], "µs", base["median_us"], "no-op call"),
        Figure(
            f"log() p99, {calls_text}, sender busy",
            log["p99_us"],
            "µs",
            base["p99_us"],
            "no-op call",
            target=f"p99 < {TARGET_P99_US:g} µs",
            passed=log["p99_us"] < TARGET_P99_US,
        ),
        Figure("log() p99.9", log["p999_us"], "µs", base["p999_us"], "no-op call"),
    ]
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = standalone(NAME, argv, lambda p: p.add_argument("--calls", type=int, help="log() calls to time"))
    return run_standalone(NAME, lambda: run(quick=args.quick, calls=args.calls), args)


if __name__ == "__main__":
    main()
