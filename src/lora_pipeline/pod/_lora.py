"""The real trainer inside the pod: :func:`lora_pipeline.train.train_lora` plus reporting and cancellation."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_lora(
    job: dict[str, Any],
    dataset: Path,
    output: Path,
    *,
    reporter: Any,
    client: Any,
    cancel: threading.Event,
    progress: Callable[[dict[str, Any]], None],
) -> dict[str, Any]:
    from transformers import TrainerCallback

    from ..integrations.transformers import LoraPipelineCallback
    from ..presets import Hyperparameters
    from ..train import train_lora
    from ..train._checkpoints import job_checkpoint_dir

    class StopOnCancel(TrainerCallback):  # type: ignore[misc]
        """Stops training at the next step once the owner asked to cancel; mirrors progress to heartbeats."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            progress({"step": state.global_step, "total_steps": state.max_steps, "epoch": state.epoch})
            if cancel.is_set():
                control.should_training_stop = True
            return control

    hp = Hyperparameters.model_validate(job["hyperparameters"])
    result = train_lora(
        base_model=job["base_model"],
        dataset_path=dataset,
        output_dir=output,
        hyperparameters=hp,
        callbacks=[LoraPipelineCallback(reporter, client=client), StopOnCancel()],
        dataset_format=(job.get("dataset") or {}).get("format"),
        # A restarted container, or the next attempt, resumes here: on the network volume when the pod has one.
        checkpoint_dir=job_checkpoint_dir(str(job["id"]), scratch=output.parent),
    )
    return dict(result.summary)


__all__ = ["run_lora"]
