"""The live view of a training job while waiting for it: step/total, loss, ETA and cost so far."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..types.jobs import TrainingJob

ProgressOption = bool | Callable[[TrainingJob], None] | None


def describe(job: TrainingJob, cost: float | None) -> str:
    """One line: ``running  step 40/120  loss 1.83  eval 1.91  ETA 2m10s  $0.04``."""
    parts = [f"{job.status}"]
    progress = job.progress
    if _number(progress.get("step")) is not None and _number(progress.get("total_steps")):
        parts.append(f"step {progress['step']}/{progress['total_steps']}")
    for key, label in (("train_loss", "loss"), ("eval_loss", "eval")):
        if isinstance(progress.get(key), (int, float)):
            parts.append(f"{label} {progress[key]:.4g}")
    eta = _eta(job)
    if eta is not None:
        parts.append(f"ETA {int(eta // 60)}m{int(eta % 60):02d}s")
    if cost is not None:
        parts.append(f"${cost:.2f}")
    return "  ".join(parts)


def _eta(job: TrainingJob) -> float | None:
    fraction, runtime = job.fraction_done, job.runtime_seconds()
    if not fraction or runtime is None or fraction >= 1:
        return None
    return runtime * (1 - fraction) / fraction


class JobProgress:
    """A rich progress bar over training steps, or a user callback called with every fresh job row."""

    def __init__(self, option: ProgressOption) -> None:
        self.callback = option if callable(option) else None
        self._bar: Any = None
        self._task: Any = None
        if option is True:
            from rich.progress import BarColumn, Progress, TextColumn

            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[line]}"), transient=False
            )
            self._bar.start()
            self._task = self._bar.add_task("job", total=None, line="")

    def update(self, job: TrainingJob, cost: float | None) -> None:
        if self.callback is not None:
            self.callback(job)
        if self._bar is not None:
            total, step = _number(job.progress.get("total_steps")), _number(job.progress.get("step"))
            self._bar.update(
                self._task,
                description=f"job {job.id[:8]}",
                total=total if total and total > 0 else None,
                completed=step or 0,
                line=describe(job, cost),
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _number(value: object) -> float | None:
    """A progress value as a finite number, or None: progress is what a pod sent, so anything may be there."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        return None
    return float(value)


__all__ = ["JobProgress", "ProgressOption", "describe"]
