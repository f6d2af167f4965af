"""Benchmark: does the cost of one ingest batch stay flat as ``metrics_points`` grows to 1,000,000 rows?

One stack, ``LocalSupabase.start(durable=True)`` (PostgreSQL's defaults: the headline); the empty and loaded
states are measured again with the fast test settings, switched in place (``ALTER SYSTEM`` + reload, see
``bench._durability.switch``), as a second, labelled row. The figure is the median time of
``POST /rest/v1/rpc/ingest_metrics`` with 500 points (the reporter's default batch; anon key + job token, as a
pod sends it) into a fresh job, measured three times:

1. **empty**: ``metrics_points`` holds nothing (the baseline);
2. **loaded**: after 1,000,000 rows were added in SQL (``insert ... select`` over ``generate_series``: 1,000
   other jobs x 1,000 steps, interleaved step by step as concurrent jobs would write them);
3. **empty again**: after ``truncate`` (and forgetting the column statistics of the 1,000,000 rows, which
   ``ANALYZE`` of an empty table keeps: see ``_empty_again``); against 1 it shows how much the machine drifted.

Each state is measured for new steps (inserts) and for the same steps sent again (the upsert's update path),
after ``VACUUM ANALYZE`` (of every table) and ``CHECKPOINT``. The same batches are also timed as direct SQL (``select
public.ingest_metrics(...)`` on one connection), which leaves HTTP out; those medians are in the JSON.

    python -m bench.ingest_flatness
    python -m bench.ingest_flatness --rows 200000 --batches 20

Target: loaded / empty <= 1.3.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from ._durability import LABELS, check, start_stack, switch
from ._jobs import count_points, make_jobs, settle
from ._report import Figure, Result
from ._suite import run_standalone, standalone

NAME = "ingest_flatness"
TARGET_FLATNESS = 1.3
BATCH_POINTS = 500
_FILL_SQL = """
insert into public.metrics_points (job_id, user_id, step, epoch, train_loss, learning_rate, grad_norm, extra)
select j.id, j.user_id, s.step, s.step / 1000.0, 1.0 / (s.step + 1), 2e-4, 0.8, '{"bench": true}'::jsonb
  from generate_series(0, %(steps)s - 1) as s(step)
 cross join (select id, user_id from public.training_jobs where user_id = %(user_id)s) as j
 order by s.step, j.id
"""


def fill(stack: Any, rows: int, steps_per_job: int = 1000) -> dict[str, Any]:
    """Add ``rows`` rows for ``rows / steps_per_job`` other jobs (valid job rows), in SQL; returns timings."""
    jobs = max(1, rows // steps_per_job)
    steps = max(1, rows // jobs)
    user_id, _ = make_jobs(stack, 0)
    began = time.perf_counter()
    with stack.connect() as conn:
        dataset = conn.execute("select id from public.datasets where user_id = %s", (user_id,)).fetchone()
        assert dataset is not None
        conn.execute(
            "insert into public.training_jobs (user_id, dataset_id, base_model, status) "
            "select %s, %s, 'bench-fill', 'created' from generate_series(1, %s)",
            (user_id, dataset[0], jobs),
        )
        conn.execute(_FILL_SQL, {"steps": steps, "user_id": user_id})
    inserted = time.perf_counter() - began
    settle(stack)
    return {
        "jobs": jobs,
        "steps_per_job": steps,
        "insert_seconds": round(inserted, 2),
        "vacuum_checkpoint_seconds": round(time.perf_counter() - began - inserted, 2),
    }


def _points(start: int) -> bytes:
    points = [
        {"step": s, "train_loss": 1.0 / (s + 1), "learning_rate": 2e-4, "grad_norm": 0.8, "epoch": s / 10_000}
        for s in range(start, start + BATCH_POINTS)
    ]
    return json.dumps(points, separators=(",", ":")).encode()


def batch_costs(stack: Any, batches: int, *, warmup: int = 5) -> dict[str, Any]:
    """Median milliseconds per 500-point batch into fresh jobs: over HTTP and in SQL, new steps then again.

    The first ``warmup`` batches are not counted: a session plans the ingest statement afresh for its first
    five calls (PostgreSQL's custom plans) and those plans can be far slower on a near-empty job.
    """
    from lora_pipeline.pod import PodClient

    _, [(http_job, http_token), (sql_job, sql_token)] = make_jobs(stack, 2)
    arrays = [_points(start) for start in range(0, (batches + warmup) * BATCH_POINTS, BATCH_POINTS)]
    samples: dict[str, list[float]] = {key: [] for key in ("http_insert", "sql_insert", "http_update", "sql_update")}
    with PodClient(stack.url, stack.anon_key, http_job, http_token, max_retries=0) as client, stack.connect() as conn:
        for phase in ("insert", "update"):
            for index, array in enumerate(arrays):
                body = client.ingest_body(array)
                began = time.perf_counter()
                client.post("ingest_metrics", body)
                middle = time.perf_counter()
                conn.execute("select public.ingest_metrics(%s, %s, %s::jsonb)", (sql_job, sql_token, array.decode()))
                ended = time.perf_counter()
                if index >= warmup:
                    samples[f"http_{phase}"].append(middle - began)
                    samples[f"sql_{phase}"].append(ended - middle)
    medians: dict[str, Any] = {key: round(statistics.median(values) * 1000, 3) for key, values in samples.items()}
    medians["samples_ms"] = {key: [round(v * 1000, 1) for v in values] for key, values in samples.items()}
    return medians


def _empty_again(stack: Any) -> None:
    """Back to the first state: no rows and no column statistics.

    ``ANALYZE`` of an empty table keeps the old ``pg_statistic`` rows, so after a truncate the planner would
    still believe in ~1,000 rows per job spread over 1,000 jobs while the table's size says "empty": it then
    estimates ~3 rows for any job and chooses a nested loop over all of the job's rows, which makes each batch
    cost grow with the job's size (seen here: 60 -> 600 ms per batch). Deleting them restores the state of a
    table that never had rows, the one measured first.
    """
    with stack.connect() as conn:
        conn.execute("truncate public.metrics_points")
        conn.execute("delete from pg_catalog.pg_statistic where starelid = 'public.metrics_points'::regclass")
    settle(stack)


def measure(rows: int, batches: int) -> dict[str, Any]:
    with start_stack(durable=True) as stack:
        settings = {"durable": check(stack, True)}
        settle(stack)
        empty = batch_costs(stack, batches)
        settings["fast"] = switch(stack, False)
        empty_fast = batch_costs(stack, batches)
        switch(stack, True)
        filled = fill(stack, rows)
        table_rows = count_points(stack)
        loaded = batch_costs(stack, batches)
        switch(stack, False)
        loaded_fast = batch_costs(stack, batches)
        switch(stack, True)
        _empty_again(stack)
        empty_again = batch_costs(stack, batches)
    return {
        "settings": settings,
        "rows_added": rows,
        "rows_in_table_when_loaded": table_rows,
        "fill": filled,
        "batch_points": BATCH_POINTS,
        "batches_per_state": batches,
        "median_ms": {"empty": empty, "loaded": loaded, "empty_again": empty_again},
        "fast_settings_median_ms": {"empty": empty_fast, "loaded": loaded_fast},
        "ratio_loaded_over_empty": {key: round(loaded[key] / empty[key], 3) for key in empty if key != "samples_ms"},
    }


def run(*, quick: bool = False, rows: int | None = None, batches: int | None = None) -> Result:
    rows, batches = rows or (50_000 if quick else 1_000_000), batches or (8 if quick else 30)
    measured = measure(rows, batches)
    empty, loaded, again = (measured["median_ms"][state] for state in ("empty", "loaded", "empty_again"))
    table = f"{measured['rows_in_table_when_loaded']:,} rows"
    figures = []
    for kind, words in (("insert", "new steps"), ("update", "same steps again")):
        key = f"http_{kind}"
        figures.append(
            Figure(
                f"rpc ingest_metrics, {BATCH_POINTS} rows ({words}), table holds {table}, durable",
                loaded[key],
                "ms",
                empty[key],
                "same, empty table",
                target=f"ratio <= {TARGET_FLATNESS}",
                passed=loaded[key] / empty[key] <= TARGET_FLATNESS,
            )
        )
    fast_empty, fast_loaded = (
        measured["fast_settings_median_ms"]["empty"],
        measured["fast_settings_median_ms"]["loaded"],
    )
    figures.append(
        Figure(
            f"same (new steps), {LABELS[False]} by reload, table holds {table}",
            fast_loaded["http_insert"],
            "ms",
            fast_empty["http_insert"],
            "same, empty table",
        )
    )
    figures.append(
        Figure(
            "same in SQL only (no HTTP), new steps, loaded table, durable",
            loaded["sql_insert"],
            "ms",
            empty["sql_insert"],
            "same, empty table",
        )
    )
    figures.append(
        Figure(
            "drift: empty table again, after truncate (new steps, HTTP)",
            again["http_insert"],
            "ms",
            empty["http_insert"],
            "empty table, first",
        )
    )
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    def arguments(parser: Any) -> None:
        parser.add_argument("--rows", type=int, help="rows added to metrics_points (default 1,000,000)")
        parser.add_argument("--batches", type=int, help="500-point batches timed per state (default 30)")

    args = standalone(NAME, argv, arguments)
    return run_standalone(NAME, lambda: run(quick=args.quick, rows=args.rows, batches=args.batches), args)


if __name__ == "__main__":
    main()
