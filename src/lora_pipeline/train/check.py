"""``python -m lora_pipeline.train.check``: the real trainer on this machine, timed.

Trains the tiny offline model (built from the demo's dataset) for a fixed number of steps and prints
tokens/s, the mean optimizer-step time and, on a GPU, the peak GPU memory, as one JSON line. The same
command runs on a CPU in CI (small numbers) and on a GPU unchanged; ``--quantization 4bit`` adds the
QLoRA path (CUDA only). It downloads nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

DEMO_DATASET = Path(__file__).resolve().parents[3] / "examples" / "data" / "support_chat.jsonl"


def run_check(
    dataset: Path, *, steps: int, batch_size: int, quantization: str | None = None, hidden_size: int = 128
) -> dict[str, Any]:
    """Train ``steps`` steps of the tiny model on ``dataset`` and return the figures."""
    import torch

    from ..presets import resolve_hyperparameters
    from .tiny import build_tiny_base_model
    from .trainer import train_lora

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="lora-check-") as work:
        base = build_tiny_base_model(dataset, Path(work) / "base", hidden_size=hidden_size, seed=0)
        overrides: dict[str, Any] = {
            "learning_rate": 1e-2,
            "max_steps": steps,
            "batch_size": batch_size,
            "gradient_accumulation_steps": 1,
            "max_seq_len": 256,
            "eval_fraction": 0.0,
            **({"quantization": quantization} if quantization else {}),
        }
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        result = train_lora(
            base_model=base,
            dataset_path=dataset,
            output_dir=Path(work) / "adapter",
            hyperparameters=resolve_hyperparameters("balanced", overrides),
        )
        summary = result.summary
        return {
            "device": summary["device"],
            "quantization": quantization,
            "steps": result.steps,
            "batch_size": batch_size,
            "tokens_seen": summary["tokens_seen"],
            "tokens_per_second": round(result.tokens_per_second, 1),
            "step_ms": round(1000 * summary["train_seconds"] / max(1, result.steps), 2),
            "peak_gpu_memory_mib": (
                round(torch.cuda.max_memory_allocated() / 2**20, 1) if torch.cuda.is_available() else None
            ),
            "train_loss_first": summary["train_loss_first"],
            "train_loss_last": summary["train_loss_last"],
            "versions": summary["versions"],
        }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--dataset", type=Path, default=DEMO_DATASET)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--quantization", choices=["4bit", "8bit"], default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    figures = run_check(
        args.dataset,
        steps=args.steps,
        batch_size=args.batch_size,
        quantization=args.quantization,
        hidden_size=args.hidden_size,
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
