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

Targets: >= 50 MB per CPU second, peak RSS < 150 MB at every size.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ._report import REPO_ROOT, Figure, Result
from ._suite import run_standalone, standalone

NAME = "dataset_validation"
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

    builders: dict[str, Callable[[], Any]] = {
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
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), src, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "bench.dataset_validation", "--child", mode, arg]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True, cwd=REPO_ROOT)
    return dict(json.loads(done.stdout))


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


def measure(sizes: list[int], dedup_entries: int, *, dedup_limit: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lora-bench-") as directory:
        runs = [measure_size(Path(directory), size) for size in sizes]
    return {
        "runs": runs,
        "dedup_memory": _run_child("dedup", str(dedup_entries)),
        "dedup_table_at_limit": _run_child("dedup_limit", "-") if dedup_limit else None,
    }


def run(*, quick: bool = False, sizes: list[int] | None = None) -> Result:
    measured = measure(
        sizes or ([20] if quick else [100, 1000]), 100_000 if quick else 1_000_000, dedup_limit=not quick
    )
    figures = []
    for size in measured["runs"]:
        label = f"{size['size_mb']:,} MB" if size["size_mb"] < 1000 else f"{size['size_mb'] / 1000:g} GB"
        figures.append(
            Figure(
                f"validate {label} chat JSONL, one core: MB per CPU second",
                size["mb_per_cpu_s"],
                "MB/s",
                size["baseline_mb_per_cpu_s"],
                "json.loads of each line only",
                target=f">= {TARGET_MB_PER_S:g} MB/s",
                passed=size["mb_per_cpu_s"] >= TARGET_MB_PER_S,
            )
        )
        figures.append(
            Figure(
                f"validate {label}: peak RSS of the process",
                size["peak_rss_mb"],
                "MB",
                size["baseline_peak_rss_mb"],
                "json.loads only",
                target=f"< {TARGET_PEAK_RSS_MB:g} MB",
                passed=size["peak_rss_mb"] < TARGET_PEAK_RSS_MB,
            )
        )
    runs = measured["runs"]
    if len(runs) > 1:
        first, last = runs[0], runs[-1]
        figures.append(
            Figure(
                f"peak RSS at {last['size_mb']:,} MB over peak RSS at {first['size_mb']:,} MB (flat memory)",
                last["peak_rss_mb"],
                "MB",
                first["peak_rss_mb"],
                f"{first['size_mb']:,} MB run",
            )
        )
    dedup = measured["dedup_memory"]["bytes_per_entry"]
    figures.append(
        Figure(
            f"duplicate table: bytes per entry ({measured['dedup_memory']['entries']:,} entries)",
            dedup["seen_hashes"],
            "B",
            dedup["set_int"],
            "set[int]",
        )
    )
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    if argv is None and sys.argv[1:2] == ["--child"]:
        _child_main(sys.argv[2], sys.argv[3])
        return {}

    def arguments(parser: Any) -> None:
        parser.add_argument("--sizes", help="file sizes in MB, comma-separated (default 100,1000)")

    args = standalone(NAME, argv, arguments)
    sizes = [int(size) for size in args.sizes.split(",")] if args.sizes else None
    return run_standalone(NAME, lambda: run(quick=args.quick, sizes=sizes), args)


if __name__ == "__main__":
    main()
