"""Benchmark: how long ``LocalSupabase.start()`` takes until the stack answers, against PostgreSQL alone.

Two cases, each against its own baseline, the runs interleaved so that both see the same machine:

- **cold**, a temporary stack: ``initdb``, start, Supabase bootstrap, migrations, gateway process ready;
  baseline: ``PostgresCluster.start()`` of a temporary cluster (``initdb`` + start), the floor the stack
  builds on.
- **restart**, a stack with a ``data_dir`` started before (the notebook case): PostgreSQL start, the schema
  check, gateway; baseline: ``PostgresCluster.start(data_dir)`` of an existing cluster.

``start()`` returns once the gateway answers HTTP, so its duration is "to ready". ``stop()`` times are kept in
the JSON.

    python -m bench.stack_start
    python -m bench.stack_start --runs 5
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._report import Figure, Result
from ._suite import run_standalone, standalone

NAME = "stack_start"


def _timed(start: Callable[[], Any]) -> tuple[float, float]:
    """Seconds to start, then seconds to stop."""
    began = time.perf_counter()
    running = start()
    started = time.perf_counter() - began
    running.stop()
    return started, time.perf_counter() - began - started


def measure(runs: int) -> dict[str, Any]:
    from lora_pipeline.local_supabase import LocalSupabase
    from lora_pipeline.local_supabase.postgres import PostgresCluster

    with tempfile.TemporaryDirectory(prefix="lora-bench-") as directory:
        root = Path(directory)
        root.chmod(0o755)  # PostgreSQL runs as an unprivileged user when this is root
        stack_dir, cluster_dir = root / "stack", root / "cluster"
        LocalSupabase.start(data_dir=stack_dir).stop()  # create once; the restarts below reuse it
        PostgresCluster.start(cluster_dir).stop()
        cases: dict[str, Callable[[], Any]] = {
            "stack_cold": LocalSupabase.start,
            "postgres_cold": PostgresCluster.start,
            "stack_restart": lambda: LocalSupabase.start(data_dir=stack_dir),
            "postgres_restart": lambda: PostgresCluster.start(cluster_dir),
        }
        starts: dict[str, list[float]] = {case: [] for case in cases}
        stops: dict[str, list[float]] = {case: [] for case in cases}
        for _ in range(runs):
            for case, start in cases.items():
                started, stopped = _timed(start)
                starts[case].append(started)
                stops[case].append(stopped)
    return {
        "runs": runs,
        "start_seconds_median": {case: round(statistics.median(values), 3) for case, values in starts.items()},
        "start_seconds_all": {case: [round(v, 3) for v in values] for case, values in starts.items()},
        "stop_seconds_median": {case: round(statistics.median(values), 3) for case, values in stops.items()},
    }


def run(*, quick: bool = False, runs: int | None = None) -> Result:
    measured = measure(runs or (1 if quick else 3))
    start = measured["start_seconds_median"]
    figures = [
        Figure(
            "LocalSupabase.start(), temporary: initdb + bootstrap + migrations + gateway, to ready",
            start["stack_cold"],
            "s",
            start["postgres_cold"],
            "PostgreSQL initdb + start",
        ),
        Figure(
            "LocalSupabase.start(data_dir) again (existing data), to ready",
            start["stack_restart"],
            "s",
            start["postgres_restart"],
            "PostgreSQL start, existing cluster",
        ),
    ]
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = standalone(NAME, argv, lambda p: p.add_argument("--runs", type=int, help="starts timed per case"))
    return run_standalone(NAME, lambda: run(quick=args.quick, runs=args.runs), args)


if __name__ == "__main__":
    main()
