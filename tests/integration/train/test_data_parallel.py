"""Two processes on the gloo backend (``torchrun``, as ``accelerate launch`` starts them): the trainer runs
data parallel, the callbacks that report metrics run on the main process only, once per step, and only
the main process writes the adapter and the summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

STEPS = 4
WORKER = textwrap.dedent(
    """
    import json, os, sys
    import torch
    from transformers import TrainerCallback
    from lora_pipeline.presets import resolve_hyperparameters
    from lora_pipeline.train import train_lora

    rank, out = os.environ["RANK"], sys.argv[3]

    class Record(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if "loss" in (logs or {}):
                with open(f"{out}/reported-{rank}.jsonl", "a") as f:
                    f.write(json.dumps({"step": state.global_step, "loss": logs["loss"]}) + "\\n")

    class StopAt(TrainerCallback):  # like the pod's cancel: it runs on the main process only
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == int(sys.argv[5]):
                control.should_training_stop = True
            return control

    torch.set_num_threads(1)
    result = train_lora(base_model=sys.argv[1], dataset_path=sys.argv[2], output_dir=out + "/adapter",
                        hyperparameters=resolve_hyperparameters("balanced", json.loads(sys.argv[4])),
                        callbacks=[Record(), StopAt()])
    with open(f"{out}/result-{rank}.json", "w") as f:
        json.dump({"steps": result.steps, "backend": torch.distributed.get_backend(),
                   "world": torch.distributed.get_world_size(), "summary": result.summary}, f)
    """
)


def _train_on_two_processes(model: Path, dataset: Path, out: Path, stop_at: int) -> subprocess.CompletedProcess[str]:
    hyperparameters = {"learning_rate": 2e-2, "batch_size": 4, "gradient_accumulation_steps": 1,
                       "max_seq_len": 128, "eval_fraction": 0.0, "max_steps": STEPS}  # fmt: skip
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "--no-python", sys.executable, "-c", WORKER, str(model), str(dataset),
               str(out), json.dumps(hyperparameters), str(stop_at)]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, check=False)


def test_two_gloo_processes_report_each_step_once_and_save_once(
    tiny_base_model: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    finished = _train_on_two_processes(tiny_base_model, sample_dataset, tmp_path, stop_at=0)

    assert finished.returncode == 0, finished.stderr[-3000:]
    reported = [json.loads(line) for line in (tmp_path / "reported-0.jsonl").read_text().splitlines()]
    assert [point["step"] for point in reported] == list(range(1, STEPS + 1))  # each step once
    assert not (tmp_path / "reported-1.jsonl").exists()  # the second process reports nothing
    main, other = (json.loads((tmp_path / f"result-{rank}.json").read_text()) for rank in (0, 1))
    assert (main["backend"], main["world"], main["steps"], other["steps"]) == ("gloo", 2, STEPS, STEPS)
    summary = json.loads((tmp_path / "adapter" / "training_summary.json").read_text())
    assert summary["processes"] == 2 and summary["global_batch_size"] == 2 * 4
    assert summary["tokens_seen"] == main["summary"]["tokens_seen"] > STEPS * 2 * 4 * 20  # both processes' tokens
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()


def test_a_stop_on_the_main_process_stops_both_processes_at_the_same_step(
    tiny_base_model: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    finished = _train_on_two_processes(tiny_base_model, sample_dataset, tmp_path, stop_at=2)

    assert finished.returncode == 0, finished.stderr[-3000:]  # neither process waits alone in an all-reduce
    steps = [json.loads((tmp_path / f"result-{rank}.json").read_text())["steps"] for rank in (0, 1)]
    assert steps == [2, 2]
