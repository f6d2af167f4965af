"""Benchmark: end-to-end metrics ingest through the embedded stack (gateway + Postgres on this machine).

Three figures, one run, one stack:

1. **Reporter throughput**: log N points (default 100,000) as fast as possible, then ``finish()``; points per
   second from the first ``log()`` until the last point is acknowledged (spooling, fsync, batching, HTTP,
   ``rpc/ingest_metrics``, upsert all included).
2. **The seeds' way**: one supabase-py ``.table("metrics_points").insert(row).execute()`` per point with the
   default ``return=representation``. Our RLS refuses that to the anon key (the anon role has no table
   privileges, and ``return=representation`` also needs a SELECT policy), so it runs as the service role:
   the seeds' fastest possible form, a single round trip per point with no token check. Ratio = 1 / 2.
3. **Flatness**: median seconds per 1,000-point ``ingest_metrics`` request into a fresh job, first with an empty
   ``metrics_points`` (before 1 and 2), then again after COPY-loading 1,000,000 more rows (1,000 other jobs x
   1,000 steps); ``ANALYZE`` and ``CHECKPOINT`` before each. Ratio loaded / empty, for new steps (inserts) and
   for the same steps sent again (updates).

    python -m bench.metrics_ingest
    python -m bench.metrics_ingest --points 20000 --seed-points 300 --rows 100000

Writes ``bench/results/metrics_ingest.json``. Targets: >= 20,000 points/s, >= 50x the seeds, flatness <= 1.3.
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

RESULTS = Path(__file__).resolve().parent / "results" / "metrics_ingest.json"
TARGET_POINTS_PER_S, TARGET_SPEEDUP, TARGET_FLATNESS = 20_000.0, 50.0, 1.3


def make_jobs(stack: Any, count: int = 1) -> tuple[str, list[tuple[str, str]]]:
    """One user with ``count`` running jobs, each with a fresh token; returns ``(user_id, [(job_id, token)])``."""
    user_id = str(uuid.uuid4())
    jobs = []
    with stack.connect() as conn:
        conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
            (user_id, f"{user_id}@bench.test"),
        )
        dataset = conn.execute(
            "insert into public.datasets (user_id, name, storage_path) values (%s, 'b', %s) returning id",
            (user_id, f"{user_id}/data.jsonl"),
        ).fetchone()[0]
        for _ in range(count):
            token = secrets.token_urlsafe(32)
            job = conn.execute(
                "insert into public.training_jobs (user_id, dataset_id, base_model, status, job_token_hash, "
                "job_token_expires_at) values (%s, %s, 'bench', 'running', %s, now() + interval '1 hour') "
                "returning id",
                (user_id, dataset, hashlib.sha256(token.encode()).hexdigest()),
            ).fetchone()[0]
            jobs.append((str(job), token))
    return user_id, jobs


def reporter_throughput(stack: Any, points: int) -> dict[str, Any]:
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
            batch_size=1000,
            flush_interval=0.05,
            handle_signals=False,
        )
        began = time.perf_counter()
        for step in range(points):
            reporter.log(step, loss=2.0 - step * 1e-6, learning_rate=2e-4, grad_norm=0.8, epoch=step / 10_000)
        stats = reporter.finish(timeout=600)
        seconds = time.perf_counter() - began
    stored = _count(stack, job_id)
    return {
        "points": points,
        "seconds": round(seconds, 3),
        "points_per_s": round(points / seconds),
        "stored": stored,
        "pending": stats.pending,
        "batch_size": 1000,
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
        "stored": _count(stack, job_id),
        "role": "service_role (anon is refused by RLS)",
    }


def batch_costs(stack: Any, batches: int, *, warmup: int = 3) -> dict[str, float]:
    """Median seconds per 1,000-point request into a fresh job: new steps, then the same steps again."""
    from lora_pipeline.pod import PodClient

    _, [(job_id, token)] = make_jobs(stack)
    inserts, updates = [], []
    with PodClient(stack.url, stack.anon_key, job_id, token, max_retries=0) as client:
        bodies = [_body(client, start) for start in range(0, (batches + warmup) * 1000, 1000)]
        for costs in (inserts, updates):
            for index, body in enumerate(bodies):
                began = time.perf_counter()
                client.post("ingest_metrics", body)
                if index >= warmup:
                    costs.append(time.perf_counter() - began)
    return {"insert_s": statistics.median(inserts), "update_s": statistics.median(updates)}


def _body(client: Any, start: int) -> bytes:
    points = [
        {"step": s, "train_loss": 1.0 / (s + 1), "learning_rate": 2e-4, "epoch": s / 10_000}
        for s in range(start, start + 1000)
    ]
    return client.ingest_body(json.dumps(points, separators=(",", ":")).encode())


def bulk_load(stack: Any, rows: int, steps_per_job: int = 1000) -> float:
    """COPY ``rows`` metric rows for ``rows / steps_per_job`` other jobs, then ANALYZE; returns seconds."""
    user_id, jobs = make_jobs(stack, max(1, rows // steps_per_job))
    began = time.perf_counter()
    with stack.connect() as conn, conn.cursor() as cursor:
        columns = "job_id, user_id, step, epoch, train_loss, learning_rate, grad_norm, extra"
        with cursor.copy(f"copy public.metrics_points ({columns}) from stdin") as copy:
            for job_id, _ in jobs:
                lines = [
                    f"{job_id}\t{user_id}\t{s}\t{s / 1000}\t{1.0 / (s + 1)}\t0.0002\t0.8\t{{}}\n"
                    for s in range(steps_per_job)
                ]
                copy.write("".join(lines))
        cursor.execute("analyze public.metrics_points")
    return time.perf_counter() - began


def _settle(stack: Any) -> None:
    """Fresh planner statistics and no checkpoint pending, so both table states are measured alike."""
    with stack.connect() as conn:
        conn.execute("analyze public.metrics_points")
        conn.execute("checkpoint")


def _count(stack: Any, job_id: str) -> int:
    with stack.connect() as conn:
        return int(
            conn.execute("select count(*) from public.metrics_points where job_id = %s", (job_id,)).fetchone()[0]
        )


def measure(points: int, seed_points: int, rows: int, batches: int) -> dict[str, Any]:
    from lora_pipeline.local_supabase import LocalSupabase

    with LocalSupabase.start() as stack:
        _settle(stack)
        empty = batch_costs(stack, batches)
        reporter = reporter_throughput(stack, points)
        seeds = seeds_way(stack, seed_points)
        load_seconds = bulk_load(stack, rows)
        _settle(stack)
        loaded = batch_costs(stack, batches)
        with stack.connect() as conn:
            table_rows = conn.execute("select count(*) from public.metrics_points").fetchone()[0]
    return {
        "reporter": reporter,
        "seeds": seeds,
        "speedup": round(reporter["points_per_s"] / seeds["points_per_s"], 1),
        "flatness": {
            "existing_rows": rows,
            "rows_after": table_rows,
            "bulk_load_seconds": round(load_seconds, 1),
            "batches_measured": batches,
            "empty_insert_ms": round(empty["insert_s"] * 1000, 2),
            "loaded_insert_ms": round(loaded["insert_s"] * 1000, 2),
            "empty_update_ms": round(empty["update_s"] * 1000, 2),
            "loaded_update_ms": round(loaded["update_s"] * 1000, 2),
            "insert_ratio": round(loaded["insert_s"] / empty["insert_s"], 3),
            "update_ratio": round(loaded["update_s"] / empty["update_s"], 3),
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the figures, write the JSON results, and return them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=100_000, help="points sent through the reporter")
    parser.add_argument("--seed-points", type=int, default=1000, help="points inserted one by one, the seeds' way")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows already in metrics_points (flatness)")
    parser.add_argument("--batches", type=int, default=30, help="1,000-point requests timed per table state")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args(argv)
    run = measure(args.points, args.seed_points, args.rows, args.batches)
    flat = run["flatness"]
    worst_flatness = max(flat["insert_ratio"], flat["update_ratio"])
    figures: dict[str, Any] = {
        "benchmark": "metrics_ingest",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, stack on the same machine",
        **run,
        "targets": {"points_per_s": TARGET_POINTS_PER_S, "speedup": TARGET_SPEEDUP, "flatness": TARGET_FLATNESS},
        "passed": run["reporter"]["points_per_s"] >= TARGET_POINTS_PER_S
        and run["speedup"] >= TARGET_SPEEDUP
        and worst_flatness <= TARGET_FLATNESS,
    }
    reporter, seeds = run["reporter"], run["seeds"]
    print(
        f"reporter: {reporter['points']:,} points in {reporter['seconds']} s = {reporter['points_per_s']:,} points/s "
        f"(stored {reporter['stored']:,}, pending {reporter['pending']})"
    )
    print(
        f"seeds' way (insert per point, return=representation, {seeds['role']}): {seeds['points']:,} points in "
        f"{seeds['seconds']} s = {seeds['points_per_s']:,} points/s"
    )
    print(f"speedup: {run['speedup']}x")
    print(
        f"flatness, ms per 1,000-point request, empty vs {flat['existing_rows']:,} existing rows: inserts "
        f"{flat['empty_insert_ms']} -> {flat['loaded_insert_ms']} (x{flat['insert_ratio']}), updates "
        f"{flat['empty_update_ms']} -> {flat['loaded_update_ms']} (x{flat['update_ratio']})"
    )
    print(
        f"targets: >= {TARGET_POINTS_PER_S:,.0f} points/s, >= {TARGET_SPEEDUP}x, flatness <= {TARGET_FLATNESS} -> "
        f"{'passed' if figures['passed'] else 'FAILED'}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return figures


if __name__ == "__main__":
    main()
