"""``lp.runs``: training runs on the user's own machine, as simple as ``wandb.init() / log() / finish()``.

``start`` creates a job on the ``external`` backend (nothing is launched), with the configuration that will
really run as its hyperparameters, issues its job token and returns a live :class:`~lora_pipeline.types.runs.Run`
that reports through the job-token functions like a pod. ``list`` and ``compare`` read runs back.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from .._exceptions import ConfigError
from .._ops import Offload, Plan
from .._resource import SyncAPIResource
from ..types._run_config import json_config
from ..types.jobs import TrainingJob
from ..types.runs import Run
from ._common import one, require_id, rows, table
from .jobs import _check_runtime, _JobPlans

EXTERNAL = "external"


class _RunPlans(_JobPlans):
    _core: Any

    def _plan_start(
        self,
        dataset_id: str,
        name: str | None,
        base_model: str,
        config: Any,
        model_name: str | None,
        max_runtime: timedelta,
        run_options: dict[str, Any],
    ) -> Plan[Run]:
        dataset_id = require_id(dataset_id, "dataset_id")
        if not isinstance(base_model, str) or not base_model.strip():
            raise ConfigError(
                "base_model must name the model you fine-tune (a Hub id or a path)", argument="base_model"
            )
        if model_name is not None and (not isinstance(model_name, str) or not model_name.strip()):
            raise ConfigError(
                "model_name must be the name of the model whose gate runs at finish", argument="model_name"
            )
        found = yield table("datasets", lambda t: t.select("id, user_id, status").eq("id", dataset_id))
        dataset = one(found, "dataset", dataset_id)
        if dataset["status"] != "ready":
            raise ConfigError(f"dataset {dataset_id} is {dataset['status']}, not ready: finish its upload first")
        row = {
            "id": str(uuid.uuid4()),
            "user_id": self._core.user_id_for(dataset["user_id"]),
            "dataset_id": dataset_id,
            "name": name,
            "base_model": base_model.strip(),
            "preset": EXTERNAL,
            "hyperparameters": json_config(config if config is not None else {}),
            "backend": EXTERNAL,
            "max_runtime_seconds": _check_runtime(max_runtime),
            "gates": {"model_name": model_name.strip()} if model_name else None,
        }
        yield table("training_jobs", lambda t: t.insert(row, returning="minimal"), idempotent=False)
        credentials = yield from self._plan_issue_token(row["id"], None)
        options = {"model_name": row["gates"] and row["gates"]["model_name"], "owner": self._core, **run_options}
        run: Run = yield Offload(
            Run, (credentials.job_id, credentials.token, credentials.url, credentials.anon_key), options
        )
        return run

    def _plan_list_runs(self, limit: int) -> Plan[list[TrainingJob]]:
        result = yield table(
            "training_jobs",
            lambda t: t.select("*").eq("backend", EXTERNAL).order("created_at", desc=True).limit(limit),
        )
        return [TrainingJob.model_validate(r) for r in rows(result)]

    def _plan_compare(self, job_ids: list[str], metric: str) -> Plan[list[tuple[str, list[tuple[int, float]]]]]:
        from .metrics import history

        if not job_ids or not metric:
            raise ConfigError("compare needs at least one job id and a metric name", argument="job_ids")
        compared = []
        for job_id in job_ids:
            wanted = require_id(job_id, "job_ids")
            found = yield table("training_jobs", _select_name(wanted))
            job = one(found, "job", wanted)
            points = yield from history(job["id"])
            series = [(p.step, v) for p in points if (v := _value(p, metric)) is not None]
            compared.append((job["name"] or job["id"][:8], series))
        return compared


class Runs(SyncAPIResource, _RunPlans):
    """Runs on your own machine (``lp.runs``)."""

    def start(
        self,
        *,
        dataset_id: str,
        base_model: str,
        name: str | None = None,
        config: Any = None,
        model_name: str | None = None,
        max_runtime: timedelta = timedelta(hours=6),
        **run_options: Any,
    ) -> Run:
        """Create a job for a run on this machine, move it to ``running`` and return the live :class:`Run`.

        ``config`` (a dict, dataclass or pydantic model) is stored as the job's hyperparameters, converted to
        JSON (values with no JSON form are dropped with a warning, credentials never stored). With
        ``model_name``, a ``succeeded`` finish runs that model's regression gate. ``run_options`` go to
        :class:`Run` (``heartbeat_interval``, ``finish_timeout``, ``spool_dir``, ...).

        Raises:
            NotFound: the dataset does not exist or is not yours.
            ConfigError: the dataset is not ready, or an argument is malformed.
        """
        return self._run(
            self._plan_start(dataset_id, name, base_model, config, model_name, max_runtime, dict(run_options))
        )

    def list(self, *, limit: int = 100) -> builtins.list[TrainingJob]:
        """Your runs on your own machines, newest first."""
        return self._run(self._plan_list_runs(limit))

    def compare(self, job_ids: Sequence[str], *, metric: str = "eval_loss", plot: bool = False) -> Any:
        """``metric`` of each job by step as a pandas DataFrame (one column per job, named by the job's name
        or id; the ``pandas`` extra); with ``plot=True`` also a matplotlib Figure of the curves overlaid (the
        ``plot`` extra): ``(frame, figure)``. Works for any jobs of yours, not only runs."""
        histories = self._run(self._plan_compare(list(job_ids), metric))
        return compare_frame(histories, metric, plot)


def _select_name(job_id: str) -> Callable[[Any], Any]:
    return lambda t: t.select("id, name").eq("id", job_id)


def _value(point: Any, metric: str) -> float | None:
    value = getattr(point, metric, None)
    if value is None:
        value = (point.extra or {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else None


def compare_frame(histories: list[tuple[str, list[tuple[int, float]]]], metric: str, plot: bool) -> Any:
    """The DataFrame (and Figure) of :meth:`Runs.compare` from each job's ``(label, [(step, value)])``."""
    from .._extras import require

    require(("pandas",), "pandas", "Runs.compare returns a DataFrame")
    import pandas

    columns: dict[str, dict[int, float]] = {}
    for label, series in histories:
        columns[label if label not in columns else f"{label} ({len(columns)})"] = dict(series)
    frame = pandas.DataFrame(columns).sort_index()
    frame.index.name = "step"
    if not plot:
        return frame
    require(("matplotlib",), "plot", "Runs.compare(plot=True) draws the curves")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots()
    for column in frame.columns:
        series = frame[column].dropna()
        axes.plot(series.index, series.values, label=column)
    axes.set_xlabel("step")
    axes.set_ylabel(metric)
    axes.legend()
    return frame, figure


__all__ = ["EXTERNAL", "Runs", "compare_frame"]
