"""Hugging Face ``Trainer`` integration: stream metrics and progress of a run to its job, mark the job failed
when training raises.

    from lora_pipeline.integrations.transformers import LoraPipelineCallback, reporting

    with reporting() as callback:                      # MetricsReporter.from_env(); finished on exit
        trainer = Trainer(..., callbacks=[callback])
        trainer.train()                                # an exception marks the job failed, then re-raises

What the Trainer's ``logs`` become (research/tracking.md §1.6):

- periodic train logs: ``loss`` -> ``train_loss``, ``learning_rate``, ``grad_norm``; ``tokens_per_second`` from
  the growth of ``num_input_tokens_seen`` between two logs (or the Trainer's own throughput when it logs one);
  ``gpu_memory_gb`` = ``torch.cuda.max_memory_allocated()`` in GiB when CUDA is in use;
- evaluation logs: ``eval_loss``, ``perplexity = exp(eval_loss)`` (``inf`` on overflow, as HF's ``run_clm``),
  every other ``eval_*`` value to ``extra``; the reporter is flushed at once;
- the end-of-training summary (``train_runtime``, ...) goes to ``extra`` only, with its run-average
  ``train_loss`` renamed ``train_loss_mean`` so that it does not overwrite the last logged loss.

With a :class:`~lora_pipeline.types.runs.Run` (``LoraPipelineCallback(run=...)``, or
``LoraPipelineCallback.start(lp, ...)`` which starts one) the callback also records the run's real
configuration at ``on_train_begin`` (TrainingArguments, the model's LoRA config, model name, dataset size,
world size: see :mod:`._trainer_config`) and, when it owns the run, finishes it at ``on_train_end``. It works
unchanged with TRL's ``SFTTrainer`` (a ``Trainer``).

Only the world process zero reports. No hook ever raises into training: failures are logged once per hook.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from transformers import TrainerCallback

from .._logging import get_logger
from ..pod.client import PodClient
from ..pod.reporter import MetricsReporter
from ._trainer_config import trainer_config

if TYPE_CHECKING:
    from .._client import LoraPipeline
    from ..types.runs import Run

log = get_logger("integrations.transformers")

# Keys only the end-of-training summary has. Not ``train_runtime``: with ``include_num_input_tokens_seen``
# recent Transformers add it (and ``train_tokens_per_second``) to every step's log.
_SUMMARY_KEYS = frozenset({"train_samples_per_second", "train_steps_per_second", "total_flos"})
_TRAIN_COLUMNS = {"loss": "train_loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm"}
_GIB = float(1 << 30)


def map_logs(logs: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split one Trainer ``logs`` dict into ``(columns, extra)`` for :meth:`MetricsReporter.log`.

    ``epoch`` is left out (it is passed separately); see the module docstring for the mapping.
    """
    values = {k: v for k, v in logs.items() if k != "epoch" and v is not None}
    if _SUMMARY_KEYS & values.keys():
        return {}, {("train_loss_mean" if k == "train_loss" else k): v for k, v in values.items()}
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in values.items():
        if key in _TRAIN_COLUMNS:
            columns[_TRAIN_COLUMNS[key]] = value
        elif key == "eval_loss":
            columns["eval_loss"] = value
            columns["perplexity"] = perplexity(value)
        elif key == "train_tokens_per_second":
            columns["tokens_per_second"] = value
        else:
            extra[key] = value
    return columns, extra


def perplexity(loss: Any) -> float:
    """``exp(loss)``; ``inf`` when it overflows, NaN for a NaN loss."""
    try:
        return math.exp(float(loss))
    except OverflowError:
        return math.inf
    except (TypeError, ValueError):
        return math.nan


def failure_reason(error: BaseException) -> str:
    """``oom`` for out-of-memory errors (CUDA or host), else ``training_error``."""
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError":
        return "oom"
    return "oom" if "out of memory" in str(error).lower() else "training_error"


class LoraPipelineCallback(TrainerCallback):  # type: ignore[misc]  # transformers is untyped
    """Sends a ``Trainer`` run's metrics and progress to its job through a :class:`MetricsReporter`.

    Args:
        reporter: the reporter; default :meth:`MetricsReporter.from_env` (raises ``ConfigError`` when the job's
            variables are missing).
        update_progress: mirror ``step``/``total_steps``/``epoch`` into the job's progress (a heartbeat at most
            every ``progress_interval`` seconds of the reporter, sent by its background thread).
        client: the :class:`PodClient` for :meth:`fail`; default the reporter's.
        log_lines: how many recent logs :meth:`fail` includes in the failure message.
        run: report into this run (its reporter and client) and record the run's configuration at
            ``on_train_begin``.
        finish_run: finish ``run`` at ``on_train_end`` (default: when the callback started it, see :meth:`start`).
    """

    def __init__(
        self,
        reporter: MetricsReporter | None = None,
        *,
        update_progress: bool = True,
        client: PodClient | None = None,
        log_lines: int = 20,
        run: Run | None = None,
        finish_run: bool = False,
    ) -> None:
        self.run = run
        self.finish_run = finish_run and run is not None
        if reporter is None:
            reporter = run.reporter if run is not None else MetricsReporter.from_env()
        self.reporter = reporter
        if client is None:
            client = run.client if run is not None else self.reporter.client
        self.client = client
        self.recorded_config: dict[str, Any] | None = None
        self.update_progress = update_progress
        self.recent: deque[str] = deque(maxlen=log_lines)
        self._tokens_seen: tuple[float, int] | None = None
        self._cuda: bool | None = None
        self._failed_hooks: set[str] = set()
        self._marked_failed = False

    @classmethod
    def start(cls, lp: LoraPipeline, **run_arguments: Any) -> LoraPipelineCallback:
        """Start a run (``lp.runs.start(**run_arguments)``) that this callback owns: its configuration is
        recorded when training begins and it finishes at ``on_train_end`` (the gate runs when ``model_name``
        is given). Use it as a context manager so that a training exception fails the run::

            with LoraPipelineCallback.start(lp, dataset_id=ds.id, base_model=name, model_name="bot") as callback:
                SFTTrainer(model=model, args=args, train_dataset=data, callbacks=[callback]).train()
        """
        return cls(run=lp.runs.start(**run_arguments), finish_run=True)

    def __enter__(self) -> LoraPipelineCallback:
        return self

    def __exit__(self, kind: Any, error: BaseException | None, tb: Any) -> None:
        """With a run: end it as the run's own ``with`` block does (failed on an exception, cancelled on
        Ctrl-C, else succeeded unless it already finished); the exception propagates."""
        if self.run is not None:
            self.run.__exit__(kind, error, tb)

    # -- Trainer hooks --------------------------------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._safely("on_train_begin", state, self._progress, state)
        if self.run is not None:
            self._safely("on_train_begin", state, self._record_config, args, kwargs)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._safely("on_step_end", state, self._progress, state)
        if getattr(control, "should_save", False) and not getattr(control, "should_log", False):
            self._safely("on_step_end", state, self.reporter.checkpoint)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self._safely("on_log", state, self._report, state, logs or {})
        if getattr(control, "should_save", False):
            # The Trainer writes a checkpoint next; a run resumed from it will not log these steps again, so
            # they must be on disk (in the spool) before it exists.
            self._safely("on_log", state, self.reporter.checkpoint)

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        self._safely("on_evaluate", state, self._evaluated, state, metrics or {})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._safely("on_train_end", state, self._ended, state)

    # -- failure --------------------------------------------------------------------------------------------

    def fail(self, error: BaseException, *, reason: str | None = None, timeout: float = 10.0) -> bool:
        """Mark the job ``failed`` with ``reason`` (default :func:`failure_reason`) and a message holding the
        exception, its traceback and the last logs. Flushes metrics first. Never raises; returns whether the
        status was recorded (once per callback; other ranks do nothing)."""
        if self._marked_failed or not self.reporter.enabled or self.client is None:
            return False
        self._marked_failed = True
        reason = reason or failure_reason(error)
        if self.run is not None:  # the run ends itself: reporter finished, heartbeats stopped
            return self.run.fail(self.failure_message(error), reason=reason).status == "failed"
        message = self.failure_message(error)
        details = {"type": type(error).__name__, "message": str(error)[:2000], "reason": reason}
        details["traceback"] = "".join(traceback.format_exception(error))[-4000:]
        try:
            self.reporter.flush(timeout=min(5.0, timeout))
            self.client.set_status("failed", reason=reason, message=message, error=details, timeout=timeout)
        except Exception as report_error:
            log.error("could not mark job %s failed: %s", self.reporter.job_id, report_error)
            return False
        return True

    def failure_message(self, error: BaseException) -> str:
        """``<Type>: <message>`` and the last log lines, under the 20,000 characters a job event holds."""
        lines = [f"training failed: {type(error).__name__}: {error}", *self.recent]
        return "\n".join(lines)[-20000:]

    # -- internals ------------------------------------------------------------------------------------------

    def _safely(self, hook: str, state: Any, action: Callable[..., object], *args: Any) -> None:
        if not getattr(state, "is_world_process_zero", True) or not self.reporter.enabled:
            return
        try:
            action(*args)
        except Exception as error:  # never into training
            if hook not in self._failed_hooks:
                self._failed_hooks.add(hook)
                log.warning("LoraPipelineCallback.%s failed (%s); training continues", hook, error)

    def _evaluated(self, state: Any, metrics: Mapping[str, Any]) -> None:
        self._report(state, metrics)  # the same values also come through on_log: merging them is harmless
        self.reporter.flush()

    def _ended(self, state: Any) -> None:
        self._progress(state)
        self.reporter.flush()
        if self.finish_run and self.run is not None:
            self.run.finish("succeeded")

    def _record_config(self, args: Any, hook_arguments: Mapping[str, Any]) -> None:
        if self.run is None or self.run.finished:
            return
        config = trainer_config(args, hook_arguments.get("model"), hook_arguments.get("train_dataloader"))
        self.recorded_config = self.run.record_config(config)

    def _progress(self, state: Any) -> None:
        if self.update_progress:
            progress = {"step": state.global_step, "total_steps": state.max_steps, "epoch": state.epoch}
            self.reporter.set_progress(**{k: v for k, v in progress.items() if v is not None})

    def _report(self, state: Any, logs: Mapping[str, Any]) -> None:
        columns, extra = map_logs(logs)
        if not columns and not extra:
            return
        if "train_loss" in columns:
            columns.update(self._system_metrics(state))
        epoch = logs.get("epoch", getattr(state, "epoch", None))
        self.reporter.log(state.global_step, epoch=epoch, extra=extra, **columns)
        shown = ", ".join(f"{k}={_short(v)}" for k, v in {**columns, **extra}.items())
        self.recent.append(f"step {state.global_step}: {shown}")

    def _system_metrics(self, state: Any) -> dict[str, float]:
        values: dict[str, float] = {}
        seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
        now = time.monotonic()
        if seen > 0:
            if self._tokens_seen is not None and seen > self._tokens_seen[1] and now > self._tokens_seen[0]:
                values["tokens_per_second"] = (seen - self._tokens_seen[1]) / (now - self._tokens_seen[0])
            self._tokens_seen = (now, seen)
        memory = self._gpu_memory_gib()
        if memory is not None:
            values["gpu_memory_gb"] = memory
        return values

    def _gpu_memory_gib(self) -> float | None:
        torch = sys.modules.get("torch")  # the Trainer imported it; never import it here
        if torch is None:
            return None
        if self._cuda is None:
            self._cuda = bool(torch.cuda.is_available())
        return float(torch.cuda.max_memory_allocated()) / _GIB if self._cuda else None


@contextlib.contextmanager
def reporting(
    reporter: MetricsReporter | None = None,
    *,
    update_progress: bool = True,
    finish_timeout: float = 30.0,
    **reporter_options: Any,
) -> Iterator[LoraPipelineCallback]:
    """A :class:`LoraPipelineCallback` for the ``with`` block: if the block raises, the job is marked failed
    (reason ``oom`` or ``training_error``) and the exception propagates.

    Without ``reporter``, one is made with :meth:`MetricsReporter.from_env` (``reporter_options`` go to it) and
    finished on exit; a reporter passed in is left to its owner.
    """
    own = reporter is None
    if reporter is None:
        reporter = MetricsReporter.from_env(**reporter_options)
    callback = LoraPipelineCallback(reporter, update_progress=update_progress)
    try:
        yield callback
    except BaseException as error:
        if not isinstance(error, GeneratorExit):
            callback.fail(error)
        raise
    finally:
        if own:
            reporter.finish(timeout=finish_timeout)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


__all__ = ["LoraPipelineCallback", "failure_reason", "map_logs", "perplexity", "reporting"]
