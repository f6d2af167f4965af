"""``--trainer selftest``: a real but tiny "training" that needs no GPU and no ML libraries.

It moves a character unigram model from uniform towards the training split's frequencies, one step at a time
(as gradient descent from a uniform start would), and reports its cross-entropy on a held-out tail, so the loss
really falls step by step and a run stopped early (``max_steps``) ends with a worse model. It writes a small
model file and a summary. Used by tests and as a smoke test of a fresh deployment (reporting, uploads, status)
without downloading a model. ``LORA_SELFTEST_STEP_SECONDS`` slows each step down (tests of cancels and budgets
need a job that runs).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _texts(dataset_path: Path) -> list[str]:
    from ..datasets import iter_records

    return [json.dumps(record, sort_keys=True) for _, record in iter_records(dataset_path)]


def _cross_entropy(counts: Counter[str], total: int, text: str, vocab: int, weight: float) -> float:
    """Held-out cross-entropy of ``weight * smoothed frequencies + (1 - weight) * uniform``."""
    mix = [(weight * (counts[ch] + 1) / (total + vocab) + (1 - weight) / vocab) for ch in text]
    return -sum(math.log(p) for p in mix) / max(1, len(text))


def run_selftest(
    job: dict[str, Any],
    dataset_path: Path,
    output_dir: Path,
    *,
    log: Callable[..., None],
    progress: Callable[[dict[str, Any]], None],
    cancel: threading.Event,
    steps: int = 12,
) -> dict[str, Any]:
    texts = _texts(dataset_path)
    if not texts:
        raise ValueError("the dataset has no records")
    split = max(1, len(texts) // 10)
    held_out = "".join(texts[-split:])
    counts = Counter("".join(texts[:-split] or texts))
    total = sum(counts.values())
    vocab = len(set("".join(texts))) or 1
    losses = []
    pause = float(os.environ.get("LORA_SELFTEST_STEP_SECONDS", "0"))
    # The plan has `steps` steps; max_steps stops early, part of the way from uniform (a worse model).
    limit = min(steps, int((job.get("hyperparameters") or {}).get("max_steps") or steps))
    for step in range(1, limit + 1):
        if cancel.is_set() or (pause and cancel.wait(pause)):
            break
        loss = _cross_entropy(counts, total, held_out, vocab, weight=step / steps)
        losses.append(loss)
        log(step, epoch=step / steps, train_loss=loss + 0.05, eval_loss=loss, learning_rate=1e-3 * (1 - step / steps))
        progress(
            {"step": step, "total_steps": limit, "epoch": step / steps, "train_loss": loss + 0.05, "eval_loss": loss}
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "selftest_model.json").write_text(json.dumps(dict(counts.most_common(256))))
    summary = {
        "trainer": "selftest",
        "steps": len(losses),
        "examples": len(texts),
        "first_eval_loss": losses[0] if losses else None,
        "last_eval_loss": losses[-1] if losses else None,
    }
    (output_dir / "training_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


__all__ = ["run_selftest"]
