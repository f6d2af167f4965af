"""Figures, the printed table, machine information and the JSON results shared by every benchmark.

A benchmark returns a :class:`Result`: its :class:`Figure` rows (what the table prints) and a free-form
``details`` dict (what only the JSON keeps). A figure's ``ratio`` is always ``value / baseline``, the baseline
being measured in the same run on the same machine, so that a noisy shared machine moves both alike.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Figure:
    """One row of the table."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str | None = None
    target: str | None = None
    """The target in words (``p99 < 20 µs``, ``ratio <= 1.3``), when the issue set one."""
    passed: bool | None = None
    ratio: float | None = None
    """``value / baseline``; filled in from the two unless given."""

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = self.value / self.baseline


@dataclass
class Result:
    """What one benchmark measured."""

    figures: list[Figure]
    details: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    """Lines printed under the table (what a figure's short text cannot say)."""
    tables: list[str] = field(default_factory=list)
    """Whole tables of the benchmark's own (e.g. the peers side by side), printed after the main one."""


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The value at ``fraction`` (0..1) of an already sorted sequence (nearest rank, no interpolation)."""
    return float(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))])


def load_average() -> list[float]:
    """The 1, 5 and 15-minute load averages (other work on a shared machine shows up here)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """Where and on what the figures were measured."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity) if affinity is not None else None,
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "postgres": _postgres_version(),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "load_average": load_average(),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _postgres_version() -> str | None:
    try:
        from lora_pipeline.local_supabase.postgres import find_bin_dir

        done = subprocess.run(
            [str(find_bin_dir() / "postgres"), "--version"], capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip() or None
    except Exception:
        return None


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", *args],
            capture_output=True,
            text=True,
            cwd=REPO_ROOT,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


# --- the table --------------------------------------------------------------------------------------------


def format_number(value: float | None, unit: str = "") -> str:
    """``1,234`` / ``12.3`` / ``0.123`` with the unit, or ``-``."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,} {unit}".strip()
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.1f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3f}"
    return f"{text} {unit}".strip()


def format_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    if ratio >= 100:
        return f"{ratio:,.0f}x"
    return f"{ratio:.1f}x" if ratio >= 10 else f"{ratio:.2f}x"


def table_rows(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row per figure: benchmark, figure, value, baseline, ratio, target, ok."""
    rows = []
    for name, outcome in results.items():
        if outcome.get("error"):
            rows.append([name, "ERROR: " + outcome["error"].splitlines()[0][:100], "", "", "", "", "FAIL"])
            continue
        for figure in outcome["figures"]:
            baseline = figure["baseline"]
            baseline_text = "-"
            if baseline is not None:
                baseline_text = f"{format_number(baseline, figure['unit'])} ({figure['baseline_name']})"
            ratio = figure["ratio"]
            ok = {True: "ok", False: "MISS", None: ""}[figure["passed"]]
            rows.append(
                [
                    name,
                    figure["name"],
                    format_number(figure["value"], figure["unit"]),
                    baseline_text,
                    format_ratio(ratio),
                    figure["target"] or "",
                    ok,
                ]
            )
    return rows


def render_table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown pipe table, aligned so that it also reads well in a terminal (and pastes into the README)."""
    header = ["benchmark", "figure", "value", "baseline (same run)", "ratio", "target", "ok"]
    rows = [header, *table_rows(results)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    right = {2, 4}

    def line(cells: list[str]) -> str:
        padded = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":" if i in right else "-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])


# --- running and writing ----------------------------------------------------------------------------------


def run_benchmark(name: str, run: Callable[[], Result]) -> dict[str, Any]:
    """Run one benchmark; its figures, details, seconds and the load around it, or the error it raised."""
    load_before, began = load_average(), time.perf_counter()
    try:
        result = run()
    except Exception as error:
        import traceback

        traceback.print_exc()
        return {
            "error": f"{type(error).__name__}: {error}",
            "seconds": round(time.perf_counter() - began, 1),
            "load_average_before": load_before,
            "load_average_after": load_average(),
        }
    return {
        "seconds": round(time.perf_counter() - began, 1),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "figures": [asdict(figure) for figure in result.figures],
        "notes": result.notes,
        "tables": result.tables,
        "details": result.details,
    }


def document(
    results: dict[str, dict[str, Any]], *, started: datetime, seconds: float, options: dict[str, Any]
) -> dict[str, Any]:
    """The JSON written to ``bench/results/``."""
    return {
        "suite": "lora-pipeline bench",
        "started_at": started.isoformat(timespec="seconds"),
        "wall_seconds": round(seconds, 1),
        "options": options,
        "machine": machine_info(),
        "benchmarks": results,
        "missed_targets": [
            f"{name}: {figure['name']}"
            for name, outcome in results.items()
            for figure in outcome.get("figures", [])
            if figure["passed"] is False
        ],
        "errors": {name: outcome["error"] for name, outcome in results.items() if outcome.get("error")},
    }


def write_results(payload: dict[str, Any], out_dir: Path, stem: str, *, latest: str | None) -> list[Path]:
    """Write ``<stem>.json`` (and ``latest`` when given) under ``out_dir``; returns the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2, default=str) + "\n"
    written = []
    for file_name in (f"{stem}.json", latest):
        if file_name:
            path = out_dir / file_name
            temporary = path.with_suffix(".json.tmp")
            temporary.write_text(text, encoding="utf-8")
            temporary.replace(path)
            written.append(path)
    return written


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
