"""Benchmark: what ``MetricsReporter.log()`` costs the training thread while its threads send to a real stack.

Starts the embedded stack, makes a job with a known token (SQL as superuser), and calls
``reporter.log(step, loss=..., learning_rate=..., grad_norm=..., epoch=...)`` 100,000 times in a tight loop,
timing each call with ``perf_counter_ns``. Every 50 calls the loop sleeps 1 ms, as a training step waiting on
the GPU releases the GIL; the reporter flushes every 50 ms, so its spool writer and sender compete with the caller
for the GIL throughout (a real step leaves them far more room). Reported: median, p99, p99.9 and max per call (the
sleeps are not timed), the timer's own cost, and how many points reached Postgres during the loop.

    python -m bench.metrics_log               # 100,000 calls
    python -m bench.metrics_log --calls 20000

Writes ``bench/results/metrics_log.json``. Target: p99 < 20 µs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "metrics_log.json"
TARGET_P99_US = 20.0
STEP_EVERY, STEP_SECONDS = 50, 0.001  # the caller releases the GIL like a training step would


def make_job(stack: Any) -> tuple[str, str]:
    """A running job with a fresh token, made directly in SQL; returns ``(job_id, token)``."""
    token = secrets.token_urlsafe(32)
    user_id = str(uuid.uuid4())
    with stack.connect() as conn:
        conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
            (user_id, f"{user_id}@bench.test"),
        )
        dataset = conn.execute(
            "insert into public.datasets (user_id, name, storage_path) values (%s, 'b', %s) returning id",
            (user_id, f"{user_id}/data.jsonl"),
        ).fetchone()[0]
        job = conn.execute(
            "insert into public.training_jobs (user_id, dataset_id, base_model, status, job_token_hash, "
            "job_token_expires_at) values (%s, %s, 'bench', 'running', %s, now() + interval '1 hour') returning id",
            (user_id, dataset, hashlib.sha256(token.encode()).hexdigest()),
        ).fetchone()[0]
    return str(job), token


def percentile(sorted_values: list[int], fraction: float) -> float:
    return float(sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))])


def timer_overhead_ns(samples: int = 100_000) -> float:
    """The median cost of two ``perf_counter_ns`` calls around nothing."""
    clock = time.perf_counter_ns
    costs = []
    for _ in range(samples):
        began = clock()
        costs.append(clock() - began)
    return statistics.median(costs)


def measure(calls: int) -> dict[str, Any]:
    from lora_pipeline.local_supabase import LocalSupabase
    from lora_pipeline.pod import MetricsReporter

    with LocalSupabase.start() as stack, tempfile.TemporaryDirectory(prefix="lora-bench-") as spool:
        job_id, token = make_job(stack)
        reporter = MetricsReporter(
            job_id, token, stack.url, stack.anon_key, spool_dir=spool, rank=0, flush_interval=0.05, handle_signals=False
        )
        clock, log = time.perf_counter_ns, reporter.log
        durations = []
        began = time.perf_counter()
        for step in range(calls):
            start = clock()
            log(step, loss=2.0 - step * 1e-5, learning_rate=2e-4, grad_norm=0.8, epoch=step / 10_000)
            durations.append(clock() - start)
            if step % STEP_EVERY == 0:
                time.sleep(STEP_SECONDS)
        loop_seconds = time.perf_counter() - began
        sent_during_loop = reporter.stats().sent
        stats = reporter.finish(timeout=120)
    durations.sort()
    return {
        "calls": calls,
        "values_per_call": 4,
        "sleep_every_calls": STEP_EVERY,
        "sleep_seconds": STEP_SECONDS,
        "median_us": round(percentile(durations, 0.5) / 1000, 3),
        "p99_us": round(percentile(durations, 0.99) / 1000, 3),
        "p999_us": round(percentile(durations, 0.999) / 1000, 3),
        "max_us": round(durations[-1] / 1000, 1),
        "mean_us": round(sum(durations) / len(durations) / 1000, 3),
        "timer_overhead_us": round(timer_overhead_ns() / 1000, 3),
        "loop_seconds": round(loop_seconds, 3),
        "points_sent_during_loop": sent_during_loop,
        "points_sent_total": stats.sent,
        "points_pending_after_finish": stats.pending,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the figures, write the JSON results, and return them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=100_000, help="log() calls to time")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    run = measure(args.calls)
    figures: dict[str, Any] = {
        "benchmark": "metrics_log",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        **run,
        "target_p99_us": TARGET_P99_US,
        "passed": run["p99_us"] < TARGET_P99_US,
    }
    print(
        f"log() on the calling thread, {run['calls']:,} calls with 4 values each (1 ms pause every 50 calls), "
        "sender busy with a real stack:"
    )
    print(
        f"  median {run['median_us']} µs, p99 {run['p99_us']} µs, p99.9 {run['p999_us']} µs, max {run['max_us']} µs"
        f" (timer overhead {run['timer_overhead_us']} µs, included)"
    )
    print(
        f"  {run['points_sent_during_loop']:,} points reached Postgres during the {run['loop_seconds']} s loop; "
        f"{run['points_sent_total']:,} after finish()"
    )
    print(f"  target p99 < {TARGET_P99_US} µs -> {'passed' if figures['passed'] else 'FAILED'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
