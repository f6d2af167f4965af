"""The suite: which benchmarks exist, in which order they run, and the command line of ``python -m bench``.

    python -m bench                                   # everything (under 10 minutes on 2 cores)
    python -m bench --quick                           # small sizes: a smoke run of a minute or so
    python -m bench --only metrics_log,pod_import     # some of them
    python -m bench --list
    python -m bench --peers                           # ours against wandb and MLflow, side by side

Prints one table (Markdown, aligned) and writes ``bench/results/<UTC time>.json`` plus ``latest.json``; a
``--quick`` run writes ``<UTC time>-quick.json`` and ``latest-quick.json`` instead, so smoke figures never
replace the real ones. Exit status 1 when a benchmark raised (targets missed are printed, not fatal).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._report import (
    RESULTS_DIR,
    Result,
    document,
    print_progress,
    render_table,
    run_benchmark,
    timestamp,
    utc_now,
    write_results,
)

BENCHMARKS: dict[str, str] = {
    "pod_import": "cold `import lora_pipeline.pod` and the modules it loads, against `python -c pass`",
    "stack_start": "LocalSupabase.start() until ready, against a bare PostgreSQL cluster start",
    "metrics_log": "MetricsReporter.log() per-call cost (6 floats, tight loop) while the sender works, against a no-op",
    "metrics_ingest": "durable ingest, rows/s and values/s end to end, against one POST per row (the seeds' way)",
    "ingest_flatness": "ms per 500-point ingest with 1,000,000 rows in metrics_points, against an empty table",
    "gateway_overhead": "/rest/v1 request cost, against the same SQL on a bare connection",
    "ui_job_page": "dashboard job page at 100,000 rows: first paint, bytes per live tick, against the whole history",
    "concurrent_pods": "50 pod processes reporting at once into a durable stack, against 1 pod alone",
    "dataset_validation": "validation MB/s and peak RSS at 100 MB and 1 GB, against json.loads alone",
}
"""Name -> what it measures; the order is the running order (the longest last)."""

PEER_BENCHMARKS: dict[str, str] = {
    "peers": "log() latency and durable ingest: ours against wandb offline and MLflow's server, interleaved",
}
"""Run only when asked (``--peers``): they need the ``bench-peers`` extra and take minutes."""

MODULES = {"peers": "bench.peers.compare"}


def runner(name: str, *, quick: bool) -> Callable[[], Result]:
    module = importlib.import_module(MODULES.get(name, f"bench.{name}"))
    run: Callable[..., Result] = module.run
    return lambda: run(quick=quick)


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks, print the table, write the JSON; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.list:
        for name, what in {**BENCHMARKS, **PEER_BENCHMARKS}.items():
            print(f"{name:20} {what}")
        return 0
    names = _selected(args.only, peers=args.peers)
    described = {**BENCHMARKS, **PEER_BENCHMARKS}
    started, began = utc_now(), time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(names, 1):
        print_progress(f"[{index}/{len(names)}] {name}: {described[name]} ...")
        results[name] = run_benchmark(name, runner(name, quick=args.quick))
        state = "FAILED" if results[name].get("error") else "done"
        print_progress(f"[{index}/{len(names)}] {name}: {state} in {results[name]['seconds']} s")
    seconds = time.perf_counter() - began
    options = {"quick": args.quick, "peers": args.peers, "only": names if args.only else None, "argv": sys.argv[1:]}
    payload = document(results, started=started, seconds=seconds, options=options)
    suffix = ("-peers" if args.peers else "") + ("-quick" if args.quick else "")
    stem = timestamp(started) + suffix
    written = write_results(payload, args.out_dir, stem, latest=None if args.only else f"latest{suffix}.json")
    _print_summary(payload, written)
    return 1 if payload["errors"] else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a fast smoke run")
    parser.add_argument("--only", help="comma-separated benchmark names (see --list)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--peers", action="store_true", help="ours against wandb and MLflow (the bench-peers extra), side by side"
    )
    parser.add_argument("--out-dir", type=Path, default=RESULTS_DIR, help="where to write the JSON results")
    return parser


def _selected(only: str | None, *, peers: bool = False) -> list[str]:
    """``--only``'s names in running order, the peers last; ``--peers`` alone runs only the peers."""
    known = {**BENCHMARKS, **PEER_BENCHMARKS}
    if not only:
        return list(PEER_BENCHMARKS) if peers else list(BENCHMARKS)
    wanted = [name.strip() for name in only.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return [name for name in known if name in wanted or (peers and name in PEER_BENCHMARKS)]


def _print_summary(payload: dict[str, Any], written: list[Path]) -> None:
    machine = payload["machine"]
    print()
    print(render_table(payload["benchmarks"]))
    for outcome in payload["benchmarks"].values():
        for table in outcome.get("tables", []):
            print()
            print(table)
    print()
    print(
        f"{machine['cpu_count']} CPUs ({machine['cpu_model']}), Python {machine['python']}, {machine['postgres']}, "
        f"commit {str(machine['git_commit'])[:12]}{' (dirty)' if machine['git_dirty'] else ''}; "
        f"load average at the end {machine['load_average']}; wall time {payload['wall_seconds']} s"
    )
    print("ratio = value / baseline, both measured in this run.")
    for name, outcome in payload["benchmarks"].items():
        for note in outcome.get("notes", []):
            print(f"{name}: {note}")
    if payload["missed_targets"]:
        print("targets missed: " + "; ".join(payload["missed_targets"]))
    for name, error in payload["errors"].items():
        print(f"{name} FAILED: {error}")
    print("results: " + ", ".join(str(path) for path in written))


def standalone(name: str, argv: list[str] | None, add_arguments: Callable[[argparse.ArgumentParser], object]) -> Any:
    """``python -m bench.<name>``: the benchmark's own options plus ``--quick`` and ``--out``.

    Returns the parsed arguments after ``add_arguments`` added the benchmark's own; the caller runs it
    with :func:`run_standalone`.
    """
    module = importlib.import_module(f"bench.{name}")
    parser = argparse.ArgumentParser(
        prog=f"python -m bench.{name}", description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes: a fast smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / f"{name}.json", help="where to write the JSON")
    add_arguments(parser)
    return parser.parse_args(argv)


def run_standalone(name: str, run: Callable[[], Result], args: Any) -> dict[str, Any]:
    """Run one benchmark as the suite would, print its table, write its JSON; return the document."""
    started, began = utc_now(), time.perf_counter()
    results = {name: run_benchmark(name, run)}
    options = {key: value for key, value in vars(args).items() if key != "out"}
    payload = document(results, started=started, seconds=time.perf_counter() - began, options=options)
    written = write_results(payload, args.out.parent, args.out.stem, latest=None)
    _print_summary(payload, written)
    if payload["errors"]:
        raise SystemExit(1)
    return payload
