"""Benchmark: how long a cold pod takes to ``import lora_pipeline.pod``, and what that import drags in.

Each timing is a fresh interpreter (``sys.executable -c ...``), wall clock from spawn to exit, median of several
runs; the baseline, ``python -c pass``, is timed interleaved with them, so both see the same machine. Two
imports are timed: the package (``import lora_pipeline.pod``) and what a training script really does first
(``from lora_pipeline.pod import MetricsReporter``, which loads tenacity; httpx comes with the first request).
For each, a child lists the modules the import added to ``sys.modules``; none of the heavy or server-side
packages may be among them.

    python -m bench.pod_import
    python -m bench.pod_import --runs 21
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from ._report import Figure, Result
from ._suite import run_standalone, standalone

NAME = "pod_import"
FORBIDDEN = ("runpod", "torch", "transformers", "pandas", "matplotlib", "numpy", "supabase", "pydantic")
"""Packages a cold pod must not load just to report metrics (numpy comes with torch; supabase and pydantic are
the app side's)."""
IMPORTS = {
    "import lora_pipeline.pod": "import lora_pipeline.pod",
    "from lora_pipeline.pod import MetricsReporter": "from lora_pipeline.pod import MetricsReporter",
}
_LIST_MODULES = (
    "import sys; before = set(sys.modules); {statement}; added = sorted(set(sys.modules) - before); "
    "import json; print(json.dumps(added))"
)


def _spawn_seconds(code: str) -> float:
    began = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - began


def _modules_added(statement: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LIST_MODULES.format(statement=statement)], check=True, capture_output=True, text=True
    )
    return list(json.loads(done.stdout))


def _slowest_imports(statement: str, count: int = 12) -> dict[str, float]:
    """The modules with the largest cumulative import time (``-X importtime``), in ms, one run."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], check=True, capture_output=True, text=True
    )
    cumulative = {}
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            cumulative[parts[2].strip()] = int(parts[1]) / 1000
    top = sorted(cumulative.items(), key=lambda item: item[1], reverse=True)[:count]
    return {name: round(ms, 1) for name, ms in top}


def measure(runs: int) -> dict[str, Any]:
    """Median seconds per fresh process for ``pass`` and each import, interleaved; and the modules added."""
    codes = {"python -c pass": "pass", **IMPORTS}
    for code in codes.values():  # warm the file cache and the bytecode caches once
        _spawn_seconds(code)
    samples: dict[str, list[float]] = {label: [] for label in codes}
    for _ in range(runs):
        for label, code in codes.items():
            samples[label].append(_spawn_seconds(code))
    modules = {label: _modules_added(statement) for label, statement in IMPORTS.items()}
    slowest = _slowest_imports(IMPORTS["from lora_pipeline.pod import MetricsReporter"])
    return {
        "runs": runs,
        "median_ms": {label: round(statistics.median(values) * 1000, 2) for label, values in samples.items()},
        "min_ms": {label: round(min(values) * 1000, 2) for label, values in samples.items()},
        "modules": modules,
        "top_level_packages": {
            label: sorted({name.split(".")[0] for name in names}) for label, names in modules.items()
        },
        "slowest_imports_ms": slowest,
        "forbidden_checked": list(FORBIDDEN),
        "forbidden_loaded": {
            label: sorted({name.split(".")[0] for name in names} & set(FORBIDDEN)) for label, names in modules.items()
        },
    }


def run(*, quick: bool = False, runs: int | None = None) -> Result:
    measured = measure(runs or (3 if quick else 11))
    baseline = measured["median_ms"]["python -c pass"]
    figures, notes = [], []
    for label in IMPORTS:
        figures.append(
            Figure(f"`{label}`, fresh process", measured["median_ms"][label], "ms", baseline, "python -c pass")
        )
    for label in IMPORTS:
        loaded = measured["forbidden_loaded"][label]
        figures.append(
            Figure(
                f"modules loaded by `{label}`",
                len(measured["modules"][label]),
                "modules",
                target="no forbidden one",
                passed=not loaded,
            )
        )
        notes.append(f"`{label}` loads {', '.join(loaded) or 'none'} of the forbidden {', '.join(FORBIDDEN)}")
    slowest = ", ".join(f"{name} {ms:g} ms" for name, ms in list(measured["slowest_imports_ms"].items())[:6])
    notes.append(f"slowest imports behind MetricsReporter (cumulative, -X importtime): {slowest}")
    return Result(figures, measured, notes)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = standalone(NAME, argv, lambda p: p.add_argument("--runs", type=int, help="processes timed per command"))
    payload = run_standalone(NAME, lambda: run(quick=args.quick, runs=args.runs), args)
    details = payload["benchmarks"][NAME].get("details", {})
    for label, packages in details.get("top_level_packages", {}).items():
        print(f"`{label}` loads: {', '.join(packages)}")
    return payload


if __name__ == "__main__":
    main()
