"""Benchmark: end-to-end metrics ingest through the embedded stack (gateway + Postgres on this machine).

Figures, one run:

1. **Reporter throughput, durable** (the headline): on ``LocalSupabase.start(durable=True)`` (PostgreSQL's
   default durability, as a peer's server runs), log N steps of 6 floats each (default 100,000) as fast as
   possible, then ``flush()``; rows/s and metric values/s from the first ``log()`` until the last row is
   acknowledged (spooling, fsync, batching, HTTP, ``rpc/ingest_metrics``, upsert all included), and the rows
   counted in the database afterwards.
2. **The seeds' way** (the baseline, same durable stack): one supabase-py
   ``.table("metrics_points").insert(row).execute()`` per step with the default ``return=representation``. Our
   RLS refuses that to the anon key (the anon role has no table privileges, and ``return=representation`` also
   needs a SELECT policy), so it runs as the service role: the seeds' fastest possible form, a single round trip
   per row with no token check.
3. **The same reporter on the fast test settings** (``fsync``/``synchronous_commit``/``full_page_writes`` off, a
   temporary stack's default), a second, labelled row against 1.

The flatness figure (ingest cost with 1,000,000 rows in the table) is ``bench.ingest_flatness``.

    python -m bench.metrics_ingest
    python -m bench.metrics_ingest --points 20000 --seed-points 300

Targets (durable): >= 20,000 rows/s and >= 50x the seeds' way.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

from ._durability import LABELS, check, start_stack
from ._jobs import count_points, make_jobs
from ._report import Figure, Result
from ._shape import VALUES_PER_STEP, step_values
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
        values = [step_values(step) for step in range(points)]
        began = time.perf_counter()
        for step in range(points):
            reporter.log(step, **values[step])
        # flush(timeout) waits until every logged call is acknowledged; finish() alone may return while the spool
        # writer is still encoding a large pass (a race in finish(), reported separately), leaving points unsent.
        reporter.flush(timeout=600)
        stats = reporter.finish(timeout=600)
        seconds = time.perf_counter() - began
    return {
        "points": points,
        "seconds": round(seconds, 3),
        "points_per_s": round(points / seconds),
        "values_per_s": round(points * VALUES_PER_STEP / seconds),
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
        values = step_values(step)
        row = {"job_id": job_id, "user_id": user_id, "step": step, "train_loss": values.pop("loss"), **values}
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
    with start_stack(durable=True) as stack:
        durable_settings = check(stack, True)
        seeds = seeds_way(stack, seed_points)
        reporter = reporter_throughput(stack, points)
    with start_stack(durable=False) as stack:
        fast_settings = check(stack, False)
        fast = reporter_throughput(stack, points)
    return {
        "values_per_row": VALUES_PER_STEP,
        "reporter": reporter,
        "seeds": seeds,
        "speedup": round(reporter["points_per_s"] / seeds["points_per_s"], 1),
        "settings": {"durable": durable_settings, "fast": fast_settings},
        "fast_settings": {"reporter": fast},
    }


def run(*, quick: bool = False, points: int | None = None, seed_points: int | None = None) -> Result:
    measured = measure(points or (10_000 if quick else 100_000), seed_points or (200 if quick else 1000))
    reporter, seeds, fast = measured["reporter"], measured["seeds"], measured["fast_settings"]["reporter"]
    rate = float(reporter["points_per_s"])
    figures = [
        Figure(
            f"batched reporter, {reporter['points']:,} rows of 6 floats, {LABELS[True]}",
            rate,
            "rows/s",
            seeds["points_per_s"],
            "1 POST per row, return=representation, durable",
            target=f">= {TARGET_POINTS_PER_S:,.0f}/s and >= {TARGET_SPEEDUP:g}x",
            passed=rate >= TARGET_POINTS_PER_S and rate / seeds["points_per_s"] >= TARGET_SPEEDUP,
        ),
        Figure(
            "same, in metric values",
            float(reporter["values_per_s"]),
            "values/s",
            seeds["points_per_s"] * VALUES_PER_STEP,
            "1 POST per row, durable",
        ),
        Figure(
            f"same reporter, {LABELS[False]}",
            float(fast["points_per_s"]),
            "rows/s",
            rate,
            "durable",
        ),
    ]
    for label, outcome in (("durable", reporter), ("fast settings", fast)):
        figures.append(
            Figure(
                f"rows counted in the database, {label}",
                int(outcome["stored"]),
                "rows",
                int(outcome["points"]),
                "steps logged",
                target="ratio = 1",
                passed=outcome["stored"] == outcome["points"],
            )
        )
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def arguments(parser: Any) -> None:
        parser.add_argument("--points", type=int, help="steps logged through the reporter (default 100,000)")
        parser.add_argument("--seed-points", type=int, help="rows inserted one by one, the seeds' way (1,000)")

    args = standalone(NAME, argv, arguments)
    return run_standalone(NAME, lambda: run(quick=args.quick, points=args.points, seed_points=args.seed_points), args)


if __name__ == "__main__":
    main()
