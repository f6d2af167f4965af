"""Report metrics from your own training loop, on any machine, with a job token (no service key).

    # on the server: a job and its token (shown once)
    creds = lp.jobs.issue_token(job.id)
    # on the training machine: the four variables of creds.env()
    LORA_JOB_ID=... LORA_JOB_TOKEN=... SUPABASE_URL=... SUPABASE_ANON_KEY=... python examples/custom_training_loop.py

The "model" here is a line fitted by plain stochastic gradient descent, so the example runs anywhere in a
second; the reporting calls are the ones a PyTorch loop makes. ``log()`` costs microseconds and never raises:
points go to an on-disk spool first and a background thread sends them in batches, so a network outage or a
crash loses nothing (``lora-pipeline metrics sync`` uploads what a killed process left behind).
"""

from __future__ import annotations

import argparse
import math
import random

from lora_pipeline.pod import MetricsReporter


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a custom training loop that reports its metrics")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--eval-every", type=int, default=20)
    args = parser.parse_args(argv)

    rng = random.Random(0)
    data = [(x, 3.0 * x + 0.5 + rng.gauss(0, 0.1)) for x in (rng.uniform(-1, 1) for _ in range(512))]
    train, held_out = data[:448], data[448:]
    weight, bias, lr = 0.0, 0.0, 0.05

    def mse(rows: list[tuple[float, float]]) -> float:
        return sum((weight * x + bias - y) ** 2 for x, y in rows) / len(rows)

    with MetricsReporter.from_env() as reporter:  # finish() on exit: flush, bounded wait, spool keeps the rest
        for step in range(1, args.steps + 1):
            batch = rng.sample(train, 16)
            grad_w = sum(2 * (weight * x + bias - y) * x for x, y in batch) / len(batch)
            grad_b = sum(2 * (weight * x + bias - y) for x, y in batch) / len(batch)
            weight, bias = weight - lr * grad_w, bias - lr * grad_b
            reporter.log(
                step,
                epoch=step * len(batch) / len(train),
                loss=mse(batch),  # "loss" fills the train_loss column
                learning_rate=lr,
                grad_norm=math.hypot(grad_w, grad_b),
                weight=weight,  # any other name goes to the row's `extra`
            )
            if step % args.eval_every == 0:
                reporter.log(step, eval_loss=mse(held_out))  # same step: merged, the train loss stays
            reporter.set_progress(step=step, total_steps=args.steps)  # throttled heartbeat with progress
            if reporter.cancel_requested:  # the owner cancelled the job
                break
        stats = reporter.finish(timeout=30)  # flush and wait (the with block would too, e.g. after an error)
    print(f"sent {stats.sent} points, {stats.pending} pending, fitted y = {weight:.2f} x + {bias:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
