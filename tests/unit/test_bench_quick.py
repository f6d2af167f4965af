"""The benchmark suite runs as ``python -m bench`` and writes its figures as JSON (a smoke run of the cheapest
benchmark, which needs no database; the figures themselves are printed, never asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_peers_run_only_when_asked_and_after_the_others() -> None:
    from bench._suite import BENCHMARKS, _selected

    assert "peers" not in _selected(None)
    assert _selected(None) == list(BENCHMARKS)
    assert _selected(None, peers=True) == ["peers"]
    assert _selected("peers,metrics_log") == ["metrics_log", "peers"]
    assert _selected("metrics_log", peers=True) == ["metrics_log", "peers"]


def test_wandb_run_file_records_are_read_across_chunks_and_blocks(tmp_path: Path) -> None:
    """A record split over a 32 KiB block boundary (FIRST, MIDDLE, LAST) comes back whole, in order."""
    import struct

    from bench.peers.wandb_file import BLOCK, FIRST, FULL, HEADER, LAST, MIDDLE, records

    def chunk(kind: int, payload: bytes) -> bytes:
        return struct.pack("<IHB", 0, len(payload), kind) + payload

    small = b"a" * 100
    data = HEADER + chunk(FULL, small)
    room = BLOCK - len(data) - 7
    big = bytes(index % 251 for index in range(room + BLOCK - 7 + 1000))  # the first block's rest, a block, more
    first, middle, last = big[:room], big[room : room + BLOCK - 7], big[room + BLOCK - 7 :]
    data += chunk(FIRST, first) + chunk(MIDDLE, middle) + chunk(LAST, last)
    assert len(data) == 2 * BLOCK + 7 + 1000
    data += chunk(FULL, b"tail")
    path = tmp_path / "run-x.wandb"
    path.write_bytes(data)

    assert list(records(path)) == [small, big, b"tail"]


def test_a_file_that_is_not_a_wandb_run_is_refused(tmp_path: Path) -> None:
    from bench.peers.wandb_file import records

    path = tmp_path / "other.wandb"
    path.write_bytes(b"not a run file")
    with pytest.raises(ValueError, match="not a wandb run file"):
        list(records(path))


def test_side_by_side_table_flags_a_landed_count_that_differs() -> None:
    from bench.peers.table import side_by_side

    def run(p50: float, landed: int, expected: int) -> dict[str, object]:
        return {
            "p50_us": p50,
            "p99_us": p50 * 2,
            "p999_us": p50 * 4,
            "seconds": 1.0,
            "rows_per_s": float(landed),
            "values_per_s": landed * 6.0,
            "rows_landed": landed,
            "rows_expected": expected,
            "load_average_before": [1.5, 1.0, 1.0],
        }

    measured = {
        "rounds": 1,
        "systems": {
            "ours": {"calls": 10, "values_per_row": 6, "runs": [run(2.0, 10, 10)]},
            "peer": {"calls": 10, "values_per_row": 6, "runs": [run(20.0, 9, 10)]},
        },
    }
    text = side_by_side(measured)

    ours_line, peer_line = (line for line in text.splitlines() if line.startswith(("| ours", "| peer")))
    assert "10 / 10 ok" in ours_line and "1 (the baseline)" in ours_line
    assert "9 / 10 MISMATCH" in peer_line
    assert "10.0x / 10.0x / 10.0x / 0.90x" in peer_line
