"""A run killed mid-way (SIGKILL, as a lost container) resumes from its latest checkpoint: the restarted
run continues at the next step, the steps reported across both runs are those of an uninterrupted run,
each once, and the final loss matches the uninterrupted run's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from lora_pipeline.presets import resolve_hyperparameters
from lora_pipeline.train import train_lora

STEPS, EVERY, KILL_AT = 12, 4, 10
LOSS_TOLERANCE = 1e-3
"""Absolute difference allowed between the resumed and the uninterrupted final loss (fp32 on CPU; the
resumed run restores the optimizer, scheduler, RNG states and data position, so it is about 1e-6)."""
HYPERPARAMETERS = {
    "learning_rate": 2e-2,
    "batch_size": 4,
    "gradient_accumulation_steps": 1,
    "max_seq_len": 128,
    "eval_fraction": 0.0,
    "dropout": 0.1,  # dropout draws from the RNG, so a resume that lost the RNG state would drift
    "max_steps": STEPS,
    "checkpoint_steps": EVERY,
    "seed": 5,
}


class Steps(TrainerCallback):  # type: ignore[misc]
    def __init__(self) -> None:
        self.logged: list[int] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if "loss" in (logs or {}):
            self.logged.append(state.global_step)


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    from transformers import TrainerCallback
    from lora_pipeline.presets import resolve_hyperparameters
    from lora_pipeline.train import train_lora

    class Kill(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if "loss" in (logs or {}):
                print(f"logged {state.global_step}", flush=True)
            if state.global_step == int(sys.argv[4]):
                os.kill(os.getpid(), signal.SIGKILL)

    torch.set_num_threads(1)
    train_lora(base_model=sys.argv[1], dataset_path=sys.argv[2], output_dir=sys.argv[3] + "/adapter",
               hyperparameters=resolve_hyperparameters("balanced", eval(sys.argv[5])),
               checkpoint_dir=sys.argv[3] + "/checkpoints", callbacks=[Kill()])
    """
)


def test_a_killed_run_resumes_at_the_right_step_and_ends_like_an_uninterrupted_one(
    tiny_base_model: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    hyperparameters = resolve_hyperparameters("balanced", HYPERPARAMETERS)
    whole = Steps()
    uninterrupted = train_lora(
        base_model=tiny_base_model,
        dataset_path=sample_dataset,
        output_dir=tmp_path / "whole" / "adapter",
        hyperparameters=hyperparameters,
        checkpoint_dir=tmp_path / "whole" / "checkpoints",
        callbacks=[whole],
    )

    killed = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(tiny_base_model), str(sample_dataset), str(tmp_path / "cut"),
         str(KILL_AT), repr(HYPERPARAMETERS)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"}, check=False,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    before_kill = [int(line.split()[1]) for line in killed.stdout.splitlines() if line.startswith("logged")]
    assert before_kill == list(range(1, KILL_AT + 1))
    assert _checkpoints(tmp_path / "cut" / "checkpoints") == ["checkpoint-8"]  # only the latest is kept

    after = Steps()
    resumed = train_lora(
        base_model=tiny_base_model,
        dataset_path=sample_dataset,
        output_dir=tmp_path / "cut" / "adapter",
        hyperparameters=hyperparameters,
        checkpoint_dir=tmp_path / "cut" / "checkpoints",
        callbacks=[after],
    )

    assert resumed.resumed_from_step == resumed.summary["resumed_from_step"] == 8
    assert after.logged == [9, 10, 11, 12]  # continues after the checkpoint, nothing before it again
    reported = sorted({*before_kill[: resumed.resumed_from_step], *after.logged})
    assert reported == whole.logged == list(range(1, STEPS + 1))
    assert resumed.steps == uninterrupted.steps == STEPS
    final, expected = resumed.train_loss_history[-1], uninterrupted.train_loss_history[-1]
    assert final[0] == expected[0] == STEPS
    assert abs(final[1] - expected[1]) < LOSS_TOLERANCE
    assert [step for step, _ in resumed.train_loss_history] == [9, 10, 11, 12]
    assert resumed.adapter_files[0].is_file()
    assert _checkpoints(tmp_path / "cut" / "checkpoints") == ["checkpoint-12"]


def test_without_a_checkpoint_dir_nothing_is_saved_and_a_rerun_starts_over(
    tiny_base_model: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    hyperparameters = resolve_hyperparameters("balanced", {**HYPERPARAMETERS, "max_steps": 4, "checkpoint_steps": 2})

    result = train_lora(
        base_model=tiny_base_model,
        dataset_path=sample_dataset,
        output_dir=tmp_path / "adapter",
        hyperparameters=hyperparameters,
    )

    assert result.resumed_from_step == 0
    assert _checkpoints(tmp_path / "adapter") == []


def _checkpoints(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("checkpoint-"))
