"""A run on your own machine (a GPU box, a notebook, a cluster node), as simple as ``wandb.init/log/finish``.

    SUPABASE_URL=... SUPABASE_ANON_KEY=... LORA_PIPELINE_ACCESS_TOKEN=... \
        python examples/own_machine.py <dataset id> --model support-bot

``lp.runs.start`` creates a job for the run (backend ``external``: nothing is launched), stores the config
that really runs, and returns a ``Run`` that reports with the job's own token, like a pod. Leaving the
``with`` block normally ends the job ``succeeded`` and runs the model's regression gate; an exception ends it
``failed/training_error`` with the message (and propagates); Ctrl-C ends it ``cancelled``.

The "model" is a line fitted by stochastic gradient descent so that the example runs anywhere in a second; the
reporting calls are the ones a PyTorch loop makes (see LoraPipelineCallback for the Trainer / TRL version).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from lora_pipeline import LoraPipeline


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a training run on this machine, reported to lora-pipeline")
    parser.add_argument("dataset_id")
    parser.add_argument("--model", default=None, help="run this model's regression gate at the end")
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args(argv)

    config = {"r": 8, "lora_alpha": 16, "learning_rate": 0.05, "batch_size": 16, "steps": args.steps}
    rng = random.Random(0)
    data = [(x, 3.0 * x + 0.5 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(512))]
    train, held_out = data[:448], data[448:]
    weight = bias = 0.0

    def mse(rows: list[tuple[float, float]]) -> float:
        return sum((weight * x + bias - y) ** 2 for x, y in rows) / len(rows)

    with (
        LoraPipeline.from_env() as lp,
        lp.runs.start(
            dataset_id=args.dataset_id, name="own-machine", base_model="line", config=config, model_name=args.model
        ) as run,
    ):
        for step in range(1, args.steps + 1):
            batch = rng.sample(train, config["batch_size"])
            grad_w = sum(2 * (weight * x + bias - y) * x for x, y in batch) / len(batch)
            grad_b = sum(2 * (weight * x + bias - y) for x, y in batch) / len(batch)
            weight, bias = weight - config["learning_rate"] * grad_w, bias - config["learning_rate"] * grad_b
            run.log(step, train_loss=mse(batch), learning_rate=config["learning_rate"])
            if step % 20 == 0:
                run.log(step, eval_loss=mse(held_out))
            run.set_progress(step=step, total_steps=args.steps)
        with tempfile.TemporaryDirectory() as folder:  # what a PEFT model.save_pretrained(folder) writes
            Path(folder, "adapter_config.json").write_text(json.dumps({"r": 8, "lora_alpha": 16, "peft_type": "LORA"}))
            Path(folder, "weights.json").write_text(json.dumps({"weight": weight, "bias": bias}))
            run.log_artifact(folder)
    outcome = run.finish()  # the with block finished it; finish() again returns that outcome
    gate = f", gate {outcome.gate.decision}" if outcome.gate else ""
    print(f"run {run.job_id}: {outcome.status}{gate}; fitted y = {weight:.2f} x + {bias:.2f}")
    return 0 if outcome.status == "succeeded" else 1


if __name__ == "__main__":
    raise SystemExit(main())
