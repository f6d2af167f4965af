"""The side-by-side table of ``python -m bench --peers``: one line per system, medians over the rounds."""

from __future__ import annotations

import statistics
from typing import Any

from .._report import format_number, format_ratio

HEADER = [
    "system",
    "calls",
    "log() p50",
    "p99",
    "p99.9",
    "log() to landed",
    "rows/s",
    "metric values/s",
    "landed / logged rows",
    "vs ours: p50 / p99 / p99.9 / values/s",
]


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] for run in runs))


def _ratios(runs: list[dict[str, Any]], ours: list[dict[str, Any]]) -> str:
    if runs is ours:
        return "1 (the baseline)"
    texts = []
    for key in ("p50_us", "p99_us", "p999_us", "values_per_s"):
        texts.append(format_ratio(statistics.median(r[key] / o[key] for r, o in zip(runs, ours, strict=True))))
    return " / ".join(texts)


def _landed(runs: list[dict[str, Any]]) -> str:
    ok = all(run["rows_landed"] == run["rows_expected"] for run in runs)
    counts = sorted({f"{run['rows_landed']:,} / {run['rows_expected']:,}" for run in runs})
    return ", ".join(counts) + (" ok" if ok else " MISMATCH")


def rows(measured: dict[str, Any]) -> list[list[str]]:
    ours = measured["systems"]["ours"]["runs"]
    lines = []
    for label, system in measured["systems"].items():
        runs = system["runs"]
        lines.append(
            [
                label,
                f"{system['calls']:,}",
                format_number(_median(runs, "p50_us"), "µs"),
                format_number(_median(runs, "p99_us"), "µs"),
                format_number(_median(runs, "p999_us"), "µs"),
                format_number(_median(runs, "seconds"), "s"),
                format_number(_median(runs, "rows_per_s")),
                format_number(_median(runs, "values_per_s")),
                _landed(runs),
                _ratios(runs, ours),
            ]
        )
    return lines


def side_by_side(measured: dict[str, Any]) -> str:
    """A Markdown table (aligned for a terminal), then the load average before each run."""
    table = [HEADER, *rows(measured)]
    widths = [max(len(line[column]) for line in table) for column in range(len(HEADER))]
    right = set(range(1, 8))

    def line(cells: list[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join(("-" * (w + 1) + ":" if i in right else "-" * (w + 2)) for i, w in enumerate(widths)) + "|"
    text = [line(table[0]), rule, *(line(cells) for cells in table[1:])]
    text.append("")
    text.append(f"medians over {measured['rounds']} interleaved round(s); 1-minute load average before each run:")
    for label, system in measured["systems"].items():
        loads = ", ".join(
            str(run["load_average_before"][0]) if run["load_average_before"] else "?" for run in system["runs"]
        )
        text.append(f"  {label}: {loads}")
    return "\n".join(text)
