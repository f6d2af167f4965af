"""Benchmark: end-to-end metrics ingest through the embedded stack (gateway + Postgres on this machine).

Two figures, one run, one stack:

1. **Reporter throughput**: log N points (default 100,000) as fast as possible, then ``flush()``; points per
   second from the first ``log()`` until the last point is acknowledged (spooling, fsync, batching, HTTP,
   ``rpc/ingest_metrics``, upsert all included).
2. **The seeds' way** (the baseline): one supabase-py ``.table("metrics_points").insert(row).execute()`` per
   point with the default ``return=representation``. Our RLS refuses that to the anon key (the anon role has no
   table privileges, and ``return=representation`` also needs a SELECT policy), so it runs as the service role:
   the seeds' fastest possible form, a single round trip per point with no token check. Ratio = 1 / 2.

The flatness figure (ingest cost with 1,000,000 rows in the table) is ``bench.ingest_flatness``.

    python -m bench.metrics_ingest
    python -m bench.metrics_ingest --points 20000 --seed-points 300

Targets: >= 20,000 points/s and >= 50x the seeds' way.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from ._jobs import count_points, make_jobs
from ._report import Figure, Result
from ._suite import run_standalone, standalone

NAME = "metrics_ingest"
TARGET_POINTS_PER_S, TARGET_SPEEDUP = 20_000.0, 50.0


def reporter_throughput(stack: Any, points: int, batch_size: int = 1000) -> dict[str, Any]:
    from lora_pipeline.pod import MetricsReporter

    _, [(job_id, token)] = make_jobs(stack)
    with tempfile.TemporaryDirectory(prefix="lora-bench-") as spool:
        reporter = MetricsReporter(
            job_id,
            token,
            stack.url,
            stack.anon_key,
            spool_dir=spool,
            rank=0,
            batch_size=batch_size,
            flush_interval=0.05,
            handle_signals=False,
        )
        began = time.perf_counter()
        for step in range(points):
            reporter.log(step, loss=2.0 - step * 1e-6, learning_rate=2e-4, grad_norm=0.8, epoch=step / 10_000)
        # flush(timeout) waits until every logged call is acknowledged; finish() alone may return while the spool
        # writer is still encoding a large pass (a race in finish(), reported separately), leaving points unsent.
        reporter.flush(timeout=600)
        stats = reporter.finish(timeout=600)
        seconds = time.perf_counter() - began
    return {
        "points": points,
        "seconds": round(seconds, 3),
        "points_per_s": round(points / seconds),
        "stored": count_points(stack, [job_id]),
        "pending": stats.pending,
        "retries": stats.retries,
        "batch_size": batch_size,
    }


def seeds_way(stack: Any, points: int) -> dict[str, Any]:
    from supabase import create_client

    user_id, [(job_id, _)] = make_jobs(stack)
    client = create_client(stack.url, stack.service_role_key)
    began = time.perf_counter()
    for step in range(points):
        row = {
            "job_id": job_id,
            "user_id": user_id,
            "step": step,
            "epoch": step / 10_000,
            "train_loss": 2.0 - step * 1e-6,
            "learning_rate": 2e-4,
            "grad_norm": 0.8,
        }
        client.table("metrics_points").insert(row).execute()
    seconds = time.perf_counter() - began
    return {
        "points": points,
        "seconds": round(seconds, 3),
        "points_per_s": round(points / seconds, 1),
        "stored": count_points(stack, [job_id]),
        "role": "service_role (anon is refused by RLS)",
    }


def measure(points: int, seed_points: int) -> dict[str, Any]:
    from lora_pipeline.local_supabase import LocalSupabase

    with LocalSupabase.start() as stack:
        seeds = seeds_way(stack, seed_points)
        reporter = reporter_throughput(stack, points)
    return {"reporter": reporter, "seeds": seeds, "speedup": round(reporter["points_per_s"] / seeds["points_per_s"], 1)}


def run(*, quick: bool = False, points: int | None = None, seed_points: int | None = None) -> Result:
    measured = measure(points or (10_000 if quick else 100_000), seed_points or (200 if quick else 1000))
    reporter, seeds = measured["reporter"], measured["seeds"]
    rate = float(reporter["points_per_s"])
    figure = Figure(
        f"batched reporter, {reporter['points']:,} points, log() to acknowledged",
        rate,
        "points/s",
        seeds["points_per_s"],
        "1 POST per point, return=representation",
        target=f">= {TARGET_POINTS_PER_S:,.0f}/s and >= {TARGET_SPEEDUP:g}x",
        passed=rate >= TARGET_POINTS_PER_S and rate / seeds["points_per_s"] >= TARGET_SPEEDUP,
    )
    lost = Figure(
        "rows stored by the batched reporter",
        int(reporter["stored"]),
        "rows",
        int(reporter["points"]),
        "points logged",
        target="ratio = 1",
        passed=reporter["stored"] == reporter["points"],
    )
    return Result([figure, lost], measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def arguments(parser: Any) -> None:
        parser.add_argument("--points", type=int, help="points sent through the reporter (default 100,000)")
        parser.add_argument("--seed-points", type=int, help="points inserted one by one, the seeds' way (1,000)")

    args = standalone(NAME, argv, arguments)
    return run_standalone(NAME, lambda: run(quick=args.quick, points=args.points, seed_points=args.seed_points), args)


if __name__ == "__main__":
    main()
