"""The benchmark suite runs as ``python -m bench`` and writes its figures as JSON (a smoke run of the cheapest
benchmark, which needs no database; the figures themselves are printed, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_quick_run_writes_the_figures_and_the_machine_as_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "pod_import", "--out-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    written = sorted(path.name for path in tmp_path.iterdir())
    assert len(written) == 1 and written[0].endswith("-quick.json")  # --only: no latest file
    document = json.loads((tmp_path / written[0]).read_text())
    assert {"cpu_count", "python", "git_commit", "load_average"} <= set(document["machine"])
    assert document["options"]["quick"] is True
    assert document["errors"] == {}
    outcome = document["benchmarks"]["pod_import"]
    figure = outcome["figures"][0]
    assert {"name", "value", "unit", "baseline", "baseline_name", "ratio", "target", "passed"} <= set(figure)
    assert figure["ratio"] == figure["value"] / figure["baseline"]
    assert "| pod_import |" in done.stdout  # the printed table


def test_unknown_benchmark_names_are_refused_with_the_known_ones() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "no_such_bench"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode != 0
    assert "no_such_bench" in done.stderr and "metrics_log" in done.stderr
