"""``lp.metrics``: read a job's metrics back: history, latest point, final values, a DataFrame, a plot.

Reads run as the client's role: a signed-in user sees only their own jobs' points (row-level security on
``metrics_points``), the service role sees every job. Pods write through ``lora_pipeline.pod`` instead.

Non-finite values come back as floats (``nan``, ``inf``): Postgres stores them as such and PostgREST sends them
as the strings ``"NaN"``/``"Infinity"``, which :class:`~lora_pipeline.types.metrics.MetricPoint` parses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError
from .._ops import Offload, Plan
from .._resource import SyncAPIResource
from ..types.metrics import METRIC_COLUMNS, Aggregation, MetricPoint
from ._common import require_id, rows, table

PAGE_SIZE = 1000
"""Rows per request: Supabase's default ``max_rows`` cap."""
_SELECTABLE = frozenset({*METRIC_COLUMNS, "job_id", "user_id", "step", "epoch", "extra", "recorded_at"})


def select_list(columns: Iterable[str] | None) -> str:
    """The PostgREST ``select`` for ``columns`` (``step`` always included); names outside the table's
    columns are read from ``extra``."""
    if columns is None:
        return "*"
    wanted = ["step", *columns]
    if any(name not in _SELECTABLE for name in wanted):
        wanted.append("extra")
    return ",".join(dict.fromkeys(name for name in wanted if name in _SELECTABLE))


def aggregate(points: Sequence[MetricPoint], aggregation: Aggregation | str = Aggregation.LAST) -> dict[str, float]:
    """Reduce each metric's history to one value (see :class:`Aggregation` for NaN's part).

    Points are taken in step order; metrics that never got a numeric value are absent from the result.
    """
    how = _aggregation(aggregation)
    series: dict[str, list[float]] = {}
    for point in sorted(points, key=lambda p: p.step):
        for name, value in point.metrics().items():
            series.setdefault(name, []).append(value)
    return {name: _reduce(values, how) for name, values in series.items()}


def _aggregation(value: Aggregation | str) -> Aggregation:
    try:
        return Aggregation(value)
    except ValueError:
        choices = ", ".join(a.value for a in Aggregation)
        raise ConfigError(f"aggregation must be one of {choices}, got {value!r}", argument="aggregation") from None


def _reduce(values: list[float], how: Aggregation) -> float:
    if how is Aggregation.LAST:
        return values[-1]
    numbers = [v for v in values if not math.isnan(v)]
    if not numbers:
        return math.nan
    return min(numbers) if how is Aggregation.MIN else max(numbers)


def to_dataframe(points: Sequence[MetricPoint]) -> Any:
    """A pandas DataFrame indexed by step: one column per metric (``extra`` keys flattened), plus ``epoch``
    and ``recorded_at``."""
    pandas = _optional("pandas", "pandas")
    records = []
    for point in points:
        record: dict[str, Any] = {"step": point.step, "epoch": point.epoch}
        record.update({name: getattr(point, name) for name in METRIC_COLUMNS})
        record.update({(f"extra.{k}" if k in record else k): v for k, v in point.extra.items()})
        record["recorded_at"] = point.recorded_at
        records.append(record)
    frame = pandas.DataFrame.from_records(records, columns=None if records else ["step"])
    return frame.set_index("step").sort_index()


def render_plot(histories: dict[str, list[MetricPoint]], metrics: Sequence[str], path: str | Path | None = None) -> Any:
    """One figure, one panel per metric, one line per job; non-finite values are marked with ``x`` at the
    top of their panel (a diverged run should be seen, not silently skipped). Saved as PNG when ``path``."""
    _optional("matplotlib", "plot")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * max(1, len(metrics)), 4.0), layout="constrained")
    axes = figure.subplots(1, max(1, len(metrics)), squeeze=False)[0]
    for axis, metric in zip(axes, metrics, strict=False):
        for job_id, points in histories.items():
            _plot_series(axis, job_id, points, metric)
        axis.set_title(metric)
        axis.set_xlabel("step")
        axis.grid(alpha=0.3)
        if axis.has_data():
            axis.legend(fontsize="small")
    if path is not None:
        figure.savefig(Path(path), dpi=110, format="png")
    return figure


def _plot_series(axis: Any, job_id: str, points: list[MetricPoint], metric: str) -> None:
    series = [(p.step, value) for p in points if (value := p.value(metric)) is not None]
    finite = [(step, value) for step, value in series if math.isfinite(value)]
    label = job_id[:8]
    if finite:
        line = axis.plot([s for s, _ in finite], [v for _, v in finite], label=label, linewidth=1.4)[0]
        color = line.get_color()
    else:
        color = None
    odd = [step for step, value in series if not math.isfinite(value)]
    if odd:
        axis.plot(
            odd, [0.97] * len(odd), "x", color=color, transform=axis.get_xaxis_transform(), label=f"{label} (NaN/inf)"
        )


def _optional(module: str, extra: str) -> Any:
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError as error:
        raise ImportError(f"this needs {module}: pip install 'lora-pipeline[{extra}]'") from error


def history(
    job_id: str, columns: Sequence[str] | None = None, since_step: int | None = None
) -> Plan[list[MetricPoint]]:
    """Every point of a job in step order, paged by keyset (``step > last``) so deep pages stay cheap."""
    job_id = require_id(job_id, "job_id")
    select = select_list(columns)
    after = -1 if since_step is None else int(since_step) - 1
    page_size = PAGE_SIZE
    points: list[MetricPoint] = []
    while True:

        def build(t: Any, start: int = after, size: int = page_size) -> Any:
            return t.select(select).eq("job_id", job_id).gt("step", start).order("step").limit(size)

        page = rows((yield table("metrics_points", build)))
        points += [MetricPoint.model_validate(row) for row in page]
        if not page:
            return points
        # A short page is the end, or a server whose max_rows is below ours: the next (empty) page tells.
        page_size = min(page_size, len(page))
        after = page[-1]["step"]


class _MetricsPlans:
    _core: Any

    def _plan_history(
        self, job_id: str, columns: Sequence[str] | None = None, since_step: int | None = None
    ) -> Plan[list[MetricPoint]]:
        return (yield from history(job_id, columns, since_step))

    def _plan_latest(self, job_id: str) -> Plan[MetricPoint | None]:
        job_id = require_id(job_id, "job_id")
        result = yield table(
            "metrics_points", lambda t: t.select("*").eq("job_id", job_id).order("step", desc=True).limit(1)
        )
        found = rows(result)
        return MetricPoint.model_validate(found[0]) if found else None

    def _plan_final(self, job_id: str, aggregation: Aggregation | str) -> Plan[dict[str, float]]:
        how = _aggregation(aggregation)
        points = yield from self._plan_history(job_id)
        return aggregate(points, how)

    def _plan_dataframe(self, job_id: str) -> Plan[Any]:
        _optional("pandas", "pandas")
        points = yield from self._plan_history(job_id)
        return (yield Offload(to_dataframe, (points,)))

    def _plan_plot(self, job_ids: str | Sequence[str], metrics: Sequence[str], path: str | Path | None) -> Plan[Any]:
        _optional("matplotlib", "plot")
        ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        histories: dict[str, list[MetricPoint]] = {}
        for job_id in ids:
            histories[require_id(job_id, "job_ids")] = yield from self._plan_history(job_id, columns=list(metrics))
        return (yield Offload(render_plot, (histories, list(metrics), path)))


class Metrics(SyncAPIResource, _MetricsPlans):
    """A job's metrics (``lp.metrics``), as written by its pod's reporter."""

    def history(
        self, job_id: str, *, columns: Sequence[str] | None = None, since_step: int | None = None
    ) -> list[MetricPoint]:
        """Every point of the job in step order (read in pages of 1000).

        Args:
            job_id: the job.
            columns: only these metrics (``step`` always comes); names that are not columns come from ``extra``.
            since_step: only points with ``step >= since_step`` (for polling a running job).

        Example::

            points = lp.metrics.history(job.id, columns=["train_loss", "eval_loss"])
        """
        return self._run(self._plan_history(job_id, columns, since_step))

    def latest(self, job_id: str) -> MetricPoint | None:
        """The point with the highest step, or ``None`` before the first one."""
        return self._run(self._plan_latest(job_id))

    def final(self, job_id: str, aggregation: Aggregation | str = "last") -> dict[str, float]:
        """One value per metric: ``last`` (value at the highest step that has one, NaN included), ``min`` or
        ``max`` (NaN ignored unless every value is NaN). Infinities take part as values. Used by the gates.

        Raises:
            ConfigError: an unknown aggregation.
        """
        return self._run(self._plan_final(job_id, aggregation))

    def dataframe(self, job_id: str) -> Any:
        """The history as a pandas ``DataFrame`` indexed by step (extra ``pandas``).

        Raises:
            ImportError: pandas is not installed; the message says what to install.
        """
        return self._run(self._plan_dataframe(job_id))

    def plot(
        self,
        job_ids: str | Sequence[str],
        metrics: Sequence[str] = ("train_loss", "eval_loss"),
        path: str | Path | None = None,
    ) -> Any:
        """Compare jobs in one matplotlib ``Figure`` (extra ``plot``), saved as PNG when ``path`` is given.

        Example::

            lp.metrics.plot([baseline.id, candidate.id], path="loss.png")
        """
        return self._run(self._plan_plot(job_ids, metrics, path))


__all__ = ["PAGE_SIZE", "Metrics", "aggregate", "render_plot", "select_list", "to_dataframe"]
