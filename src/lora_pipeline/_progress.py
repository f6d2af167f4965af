"""Progress display for long work (uploads, downloads, waiting for a job): rich bars, or a callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ProgressArg = bool | Callable[[int, int], None] | None


class Progress:
    """``update(done)``/``close()`` over a rich bar, a user callback ``fn(done, total)``, or nothing."""

    def __init__(self, description: str, total: int, option: ProgressArg, *, unit: str = "bytes") -> None:
        self.total = total
        self.callback = option if callable(option) else None
        self._bar: Any = None
        self._task: Any = None
        if option is True:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )
            from rich.progress import Progress as RichProgress

            columns: list[Any] = [TextColumn("{task.description}"), BarColumn()]
            columns += [DownloadColumn(), TransferSpeedColumn()] if unit == "bytes" else []
            columns.append(TimeRemainingColumn())
            self._bar = RichProgress(*columns, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(description, total=total)

    def update(self, done: int) -> None:
        if self.callback is not None:
            self.callback(done, self.total)
        if self._bar is not None:
            self._bar.update(self._task, completed=done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


__all__ = ["Progress", "ProgressArg"]
