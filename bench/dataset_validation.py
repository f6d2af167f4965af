"""Benchmark: streaming dataset validation throughput (MB/s) and peak memory (RSS) as the file grows.

Generates deterministic chat JSONL files (~1.4 KB lines: a system prompt and 1-3 user/assistant exchanges),
streamed to a temporary directory, then validates each size in a fresh subprocess pinned to one core, so that
each run's peak RSS (the child's ``VmHWM``) is its own. A baseline run in the same conditions only reads the
lines and ``json.loads`` them: the ratio says what the checks cost on top of parsing. Throughput is given per
wall second and per CPU second of the child: on a shared machine the second is the one that means "one core".
The duplicate table's memory per entry is measured against a ``set[int]`` and a ``dict[int, int]`` with
tracemalloc, and its size at its default limit is measured too: the most it can ever hold.

    python -m bench.dataset_validation                 # 100 MB and 1 GB
    python -m bench.dataset_validation --quick         # 20 MB
    python -m bench.dataset_validation --sizes 100,500

Writes ``bench/results/dataset_validation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "dataset_validation.json"
TARGET_MB_PER_S = 50.0
TARGET_PEAK_RSS_MB = 150.0
_VOCABULARY = (
    "the model learns to answer questions about billing accounts refunds shipping orders and product details "
    "with short helpful replies that cite the policy and ask for the order number when it is missing please "
    "thanks customer support agent escalate ticket priority warranty return label tracking delivery address"
)
_WORDS = _VOCABULARY.split()


def generate(path: Path, size_mb: int, seed: int = 0) -> int:
    """Write a chat JSONL file of about ``size_mb`` MB, line by line; return its number of lines."""
    rng = random.Random(seed)
    limit, written, lines = size_mb * 1_000_000, 0, 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        while written < limit:
            line = json.dumps(_record(rng, lines)) + "\n"
            out.write(line)
            written += len(line)
            lines += 1
    return lines


def _record(rng: random.Random, index: int) -> dict[str, Any]:
    def text(low: int, high: int) -> str:
        return " ".join(rng.choices(_WORDS, k=rng.randint(low, high)))

    messages = [{"role": "system", "content": f"You are support agent #{index}. " + text(5, 20)}]
    for _ in range(rng.randint(1, 3)):
        messages.append({"role": "user", "content": text(8, 50)})
        messages.append({"role": "assistant", "content": text(15, 90)})
    return {"messages": messages}


# --- child processes --------------------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def _child_validate(path: str) -> dict[str, Any]:
    from lora_pipeline.datasets import validate_file

    started, cpu_started = time.perf_counter(), time.process_time()
    report = validate_file(path)
    return {
        "seconds": time.perf_counter() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "valid": report.valid,
        "num_examples": report.num_examples,
        "tokens_p95": report.tokens.p95,
        "sha256": report.sha256,
    }


def _child_baseline(path: str) -> dict[str, Any]:
    started, cpu_started, count = time.perf_counter(), time.process_time(), 0
    with open(path, "rb") as stream:
        for raw in stream:
            json.loads(raw)
            count += 1
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "num_examples": count}


def _child_dedup_memory(entries: int) -> dict[str, Any]:
    """Live bytes per entry of each structure, counting the int objects a set or dict keeps alive."""
    import tracemalloc

    from lora_pipeline.datasets._dedup import SeenHashes

    def keys() -> Any:
        rng = random.Random(1)
        return ((rng.getrandbits(64) | 1, line) for line in range(1, entries + 1))

    builders = {
        "set_int": lambda: {key for key, _ in keys()},
        "dict_int_int": lambda: dict(keys()),
        "seen_hashes": lambda: _fill_table(SeenHashes(), keys()),
    }
    tracemalloc.start()
    results = {}
    for name, build in builders.items():
        before = tracemalloc.get_traced_memory()[0]
        held = build()
        results[name] = round((tracemalloc.get_traced_memory()[0] - before) / entries, 1)
        del held
    tracemalloc.stop()
    return {"entries": entries, "bytes_per_entry": results}


def _child_dedup_limit(_: str) -> dict[str, Any]:
    """The duplicate table at its default limit: the most memory it can take, whatever the file size."""
    from lora_pipeline.datasets._dedup import DEFAULT_MAX_ENTRIES, SeenHashes

    rng = random.Random(2)
    table = _fill_table(SeenHashes(), ((rng.getrandbits(64) | 1, n) for n in range(1, DEFAULT_MAX_ENTRIES + 2)))
    return {"entries": table.size, "full": table.full, "table_mb": round(table.nbytes / 2**20, 1)}


def _fill_table(table: Any, pairs: Any) -> Any:
    for key, line in pairs:
        table.add(key, line)
    return table


def _run_child(mode: str, arg: str) -> dict[str, Any]:
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parent.parent / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, arg]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def _child_main(mode: str, arg: str) -> None:
    _pin_to_one_core()
    runners = {"validate": _child_validate, "baseline": _child_baseline, "dedup_limit": _child_dedup_limit}
    result = _child_dedup_memory(int(arg)) if mode == "dedup" else runners[mode](arg)
    result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
    print(json.dumps(result))


# --- the benchmark ----------------------------------------------------------------------------------------


def measure_size(directory: Path, size_mb: int) -> dict[str, Any]:
    """Generate one file, validate it and run the baseline, each in a fresh one-core process."""
    path = directory / f"chat_{size_mb}mb.jsonl"
    lines = generate(path, size_mb)
    size = path.stat().st_size
    validation = _run_child("validate", str(path))
    baseline = _run_child("baseline", str(path))
    path.unlink()
    mb = size / 1e6
    return {
        "size_mb": size_mb,
        "bytes": size,
        "lines": lines,
        "seconds": round(validation["seconds"], 3),
        "mb_per_s": round(mb / validation["seconds"], 1),
        "mb_per_cpu_s": round(mb / validation["cpu_seconds"], 1),
        "peak_rss_mb": validation["peak_rss_mb"],
        "valid": validation["valid"],
        "num_examples": validation["num_examples"],
        "baseline_mb_per_s": round(mb / baseline["seconds"], 1),
        "baseline_mb_per_cpu_s": round(mb / baseline["cpu_seconds"], 1),
        "baseline_peak_rss_mb": baseline["peak_rss_mb"],
        "ratio_to_baseline_cpu": round(baseline["cpu_seconds"] / validation["cpu_seconds"], 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def _print_table(figures: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dataset validation on one pinned core: MB per wall second, and per CPU second")
    columns = ("size", "lines", "seconds", "MB/s", "MB/s CPU", "peak RSS MB", "json.loads only, MB/s CPU", "ratio")
    for column in columns:
        table.add_column(column, justify="right")
    for run in figures["runs"]:
        table.add_row(
            f"{run['size_mb']:,} MB",
            f"{run['lines']:,}",
            f"{run['seconds']:.2f}",
            f"{run['mb_per_s']:.1f}",
            f"{run['mb_per_cpu_s']:.1f}",
            f"{run['peak_rss_mb']:.1f}",
            f"{run['baseline_mb_per_cpu_s']:.1f}",
            f"{run['ratio_to_baseline_cpu']:.2f}",
        )
    console = Console()
    console.print(table)
    dedup = figures["dedup_memory"]
    console.print(f"duplicate table, bytes per entry at {dedup['entries']:,} entries: {dedup['bytes_per_entry']}")
    limit = figures["dedup_table_at_limit"]
    console.print(
        f"duplicate table at its limit ({limit['entries']:,} examples): {limit['table_mb']} MiB, "
        f"peak RSS of a process holding it {limit['peak_rss_mb']} MB"
    )
    loads = [run["load_average_1min"] for run in figures["runs"]]
    console.print(
        f"targets: >= {TARGET_MB_PER_S} MB per CPU second, peak RSS < {TARGET_PEAK_RSS_MB} MB -> "
        f"{figures['passed']} (1-minute load average as each run ended: {loads})"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a table, write the JSON results, and return the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100,1000", help="file sizes in MB, comma-separated")
    parser.add_argument("--quick", action="store_true", help="one 20 MB file")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child_main(*args.child)
        return {}
    sizes = [20] if args.quick else [int(size) for size in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="lora-bench-") as directory:
        runs = [measure_size(Path(directory), size) for size in sizes]
    figures: dict[str, Any] = {
        "benchmark": "dataset_validation",
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, pinned to one",
        "runs": runs,
        "dedup_memory": _run_child("dedup", "1000000"),
        "dedup_table_at_limit": _run_child("dedup_limit", "-"),
        "passed": all(
            run["mb_per_cpu_s"] >= TARGET_MB_PER_S and run["peak_rss_mb"] < TARGET_PEAK_RSS_MB for run in runs
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    _print_table(figures)
    return figures


if __name__ == "__main__":
    main()
