"""Metric history shaped for charts: columns (uPlot's ``[xs, ys...]``), a downsample that keeps real points,
and a per-viewer cache so a page load reads only the rows added since the last one.

Downsampling picks, per bucket of consecutive steps, the points holding each series' minimum and maximum: every
point drawn is a real logged point, so hovering shows exact values, and spikes survive (a plain stride would
drop them). Zooming in asks for the visible range again, which is exact once it holds few enough points.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..types.metrics import MetricPoint

CHART_METRICS: tuple[str, ...] = ("train_loss", "eval_loss", "learning_rate")
"""The metrics the job and compare pages draw."""
MAX_CHART_POINTS = 2000
"""Steps sent for one chart: about two per horizontal pixel on a laptop screen."""


@dataclass
class Series:
    """One job's chart metrics as parallel columns, in step order."""

    steps: list[int] = field(default_factory=list)
    values: dict[str, list[float | None]] = field(default_factory=lambda: {m: [] for m in CHART_METRICS})

    @property
    def last_step(self) -> int:
        return self.steps[-1] if self.steps else -1

    def extend(self, points: Sequence[MetricPoint]) -> None:
        """Append points newer than the last step (a repeated poll adds nothing twice)."""
        for point in points:
            if point.step <= self.last_step:
                continue
            self.steps.append(point.step)
            for name in CHART_METRICS:
                self.values[name].append(_finite(point.value(name)))

    def window(self, start: float | None = None, end: float | None = None) -> Series:
        """The points with ``start <= step <= end``."""
        low = 0 if start is None else _bisect(self.steps, start)
        high = len(self.steps) if end is None else _bisect(self.steps, end, right=True)
        return Series(self.steps[low:high], {name: column[low:high] for name, column in self.values.items()})

    def columns(self, max_points: int = MAX_CHART_POINTS) -> dict[str, Any]:
        """``{"steps": [...], "train_loss": [...], ...}``, at most about ``max_points`` steps, real points only."""
        keep = downsample_indices(self.steps, self.values, max_points)
        out: dict[str, Any] = {"steps": [self.steps[i] for i in keep]}
        for name, column in self.values.items():
            out[name] = [column[i] for i in keep]
        out["total"] = len(self.steps)
        out["exact"] = len(keep) == len(self.steps)
        return out


def points_payload(points: Sequence[MetricPoint]) -> dict[str, Any]:
    """New points for a live tick, as columns (no downsampling: a tick carries only rows after the last step)."""
    series = Series()
    series.extend(points)
    payload: dict[str, Any] = {"steps": series.steps, **series.values}
    return payload


def downsample_indices(steps: Sequence[int], values: dict[str, list[float | None]], max_points: int) -> list[int]:
    """Indices to draw: all when few enough, else per bucket the first, last, min and max of each series."""
    count = len(steps)
    if count <= max_points:
        return list(range(count))
    per_bucket = 2 + 2 * len(values)
    buckets = max(1, max_points // per_bucket)
    size = math.ceil(count / buckets)
    keep: set[int] = {0, count - 1}
    for start in range(0, count, size):
        stop = min(count, start + size)
        keep.update((start, stop - 1))
        for column in values.values():
            present = [i for i in range(start, stop) if column[i] is not None]
            if present:
                keep.add(min(present, key=lambda i: column[i]))  # type: ignore[arg-type, return-value]
                keep.add(max(present, key=lambda i: column[i]))  # type: ignore[arg-type, return-value]
    return sorted(keep)


class SeriesCache:
    """Each viewer's series per job, bounded: a reload reads only ``step > last_seen`` through the SDK."""

    def __init__(self, capacity: int = 32) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], Series] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, viewer: str, job_id: str) -> Series:
        with self._lock:
            key = (viewer, job_id)
            series = self._entries.pop(key, None) or Series()
            self._entries[key] = series
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
            return series

    def forget(self, viewer: str) -> None:
        with self._lock:
            for key in [key for key in self._entries if key[0] == viewer]:
                del self._entries[key]


def _finite(value: float | None) -> float | None:
    """JSON has no NaN or infinity: a non-finite value is a gap in the line (the events timeline says why)."""
    return value if value is not None and math.isfinite(value) else None


def _bisect(steps: Sequence[int], target: float, *, right: bool = False) -> int:
    from bisect import bisect_left, bisect_right

    return (bisect_right if right else bisect_left)(steps, target)
