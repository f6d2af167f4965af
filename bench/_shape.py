"""The shape of one training step's metrics, shared by our benchmarks and the peers' (wandb, MLflow).

Six floats per step, as the peers' own loops log them (``wandb.log(dict)``, ``mlflow.log_metrics(dict)``). All
six fill columns of ``metrics_points``, so one of our rows carries six metric values; an MLflow row carries one.
Figures are given both in rows/s and in metric values/s so the two stores compare.
"""

from __future__ import annotations

VALUES_PER_STEP = 6


def step_values(step: int) -> dict[str, float]:
    """The six values of ``step`` (built before the timer starts, as a training loop already holds them)."""
    return {
        "loss": 2.0 - step * 1e-6,
        "learning_rate": 2e-4,
        "grad_norm": 0.8 + (step % 7) * 0.01,
        "tokens_per_second": 12_000.0 + step % 100,
        "gpu_memory_gb": 21.5,
        "perplexity": 7.4 - step * 1e-6,
    }
