"""Trainer callbacks that ``train_lora`` installs for itself: loss history, throughput, progress."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import TrainerCallback

from .._logging import get_logger

log = get_logger("train")


class LossRecorder(TrainerCallback):
    """Keeps ``(step, loss)`` of every training and evaluation log, exactly as the callbacks saw them."""

    def __init__(self) -> None:
        self.train_losses: list[tuple[int, float]] = []
        self.eval_losses: list[tuple[int, float]] = []

    @property
    def last_eval_step(self) -> int | None:
        return self.eval_losses[-1][0] if self.eval_losses else None

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" in logs:
            self.train_losses.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.eval_losses.append((state.global_step, float(logs["eval_loss"])))


class ThroughputMeter(TrainerCallback):
    """Times the optimizer steps alone, so tokens/s leaves out evaluation, logging and start-up; counts the
    tokens (all processes together) of this run's steps, not those before a checkpoint it resumed from."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.tokens = 0
        self._tokens_before = 0
        self._step_started: float | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._tokens_before = state.num_input_tokens_seen

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._step_started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._step_started is None:
            return
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # CUDA kernels run ahead of Python; count the step when it has finished.
        self.seconds += time.perf_counter() - self._step_started
        self._step_started = None
        self.tokens = state.num_input_tokens_seen - self._tokens_before

    def tokens_per_second(self, tokens: int) -> float:
        return tokens / self.seconds if self.seconds > 0 else 0.0


class ProgressCallback(TrainerCallback):
    """Calls ``progress(step, total_steps)`` after every optimizer step."""

    def __init__(self, progress: Callable[[int, int], None]) -> None:
        self._progress = progress

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._progress(state.global_step, state.max_steps)


class MainProcessOnly(TrainerCallback):
    """Passes events to ``callback`` on the main process only: in a data-parallel run every process runs the
    callbacks, and the metrics (already averaged over processes) must be reported, and the job moved, once."""

    def __init__(self, callback: Any) -> None:
        self.callback = callback

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            inner = getattr(object.__getattribute__(self, "callback"), name, None)

            def forward(args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
                if inner is None or not state.is_world_process_zero:
                    return None
                return inner(args, state, control, **kwargs)

            return forward
        return object.__getattribute__(self, name)


class StopTogether(TrainerCallback):
    """Stops every process when one asked to (a cancel seen by the main process alone): a process that
    stepped on alone would wait forever in the next gradient all-reduce. Installed after the other callbacks."""

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if args.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([int(bool(control.should_training_stop))], device=args.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            control.should_training_stop = bool(flag.item())
        return control


class LogLines(TrainerCallback):
    """One log line per Trainer log, through the package logger (in place of the Trainer's ``print``)."""

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        values = " ".join(f"{key}={_short(value)}" for key, value in (logs or {}).items())
        log.info("step %d/%d %s", state.global_step, state.max_steps, values)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
