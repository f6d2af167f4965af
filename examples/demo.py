"""The end-to-end demo: a real LoRA fine-tune on the embedded local stack, start to finish.

    python examples/demo.py [--steps 120] [--out demo-output]

It starts a private Supabase-compatible stack (PostgreSQL + the gateway, no Docker), signs a user up,
validates and uploads the bundled chat dataset, defines regression-gate conditions, builds a tiny base model
offline, then creates a job and deploys it with ``LocalBackend``: the same pod program a RunPod pod runs
(``python -m lora_pipeline.pod run``) trains a real LoRA adapter here, on the CPU, reporting metrics with its
job token. It waits with live progress, reads the gate's decision, downloads the adapter and loads it with
peft, prints a summary and writes ``loss.png``. The stack stops at the end (also on Ctrl-C).

``run_demo`` is the same flow as a function, so tests can run it against their own stack.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lora_pipeline import LoraPipeline
from lora_pipeline.backends.local import LocalBackend
from lora_pipeline.gates import GateReport
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.types.jobs import TrainingJob

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "data" / "support_chat.jsonl"
MODEL_NAME = "support-bot-demo"


@dataclass
class DemoResult:
    """What the demo produced, for the summary and for tests."""

    job: TrainingJob
    gate: GateReport | None
    first_eval_loss: float | None
    final: dict[str, float]
    adapter_dir: Path
    training_summary: dict[str, Any]
    cost_usd: float
    plot: Path
    seconds: float


def hyperparameters(steps: int) -> dict[str, Any]:
    """The ``balanced`` preset, tuned for a 1M-parameter model on a CPU: a larger learning rate, short
    sequences, no gradient accumulation, and a fixed number of steps."""
    return {
        "learning_rate": 1e-2,
        "max_steps": steps,
        "batch_size": 8,
        "gradient_accumulation_steps": 1,
        "max_seq_len": 256,
        "rank": 16,
        "alpha": 32,
        "warmup_ratio": 0.05,
    }


def run_demo(
    stack: LocalSupabase, out_dir: Path, *, steps: int = 120, console: Console | None = None, progress: bool = True
) -> DemoResult:
    """Sign up, upload, set the gate, train with LocalBackend, gate, download, plot; returns what it made."""
    console = console or Console()
    started = time.perf_counter()
    out_dir = out_dir.resolve()  # the pod process runs in its own folder: give it absolute paths
    out_dir.mkdir(parents=True, exist_ok=True)

    console.rule("1. A user and a signed-in client")
    user = stack.create_user(f"demo-{int(time.time())}@example.test", "a long demo password")
    lp = LoraPipeline(url=stack.url, anon_key=stack.anon_key, access_token=user.access_token)
    console.print(f"signed in as {user.email}; every request below is checked by Postgres row-level security")

    console.rule("2. Validate and upload the dataset")
    report = lp.datasets.validate(SAMPLE)
    console.print(report)
    dataset = lp.datasets.upload(SAMPLE, name="support-chat", description="bundled demo data", progress=progress)
    console.print(
        f"dataset {dataset.id}: {dataset.storage_path} ({dataset.size_bytes:,} bytes, sha256 {dataset.sha256[:12]}…)"
    )

    console.rule("3. A tiny base model, built offline from the dataset's text")
    from lora_pipeline.train import build_tiny_base_model

    base = build_tiny_base_model(SAMPLE, out_dir / "tiny-base")
    vocab = json.loads((base / "config.json").read_text())["vocab_size"]
    console.print(f"base model: {base} (random Llama-style weights, a {vocab}-token tokenizer trained on the data)")

    console.rule("4. Regression gate for the model")
    # A model that learned anything beats a uniform guess over the vocabulary (loss ln V) by a margin.
    ceiling = round(0.9 * math.log(vocab), 2)
    lp.baselines.create(MODEL_NAME, metric="eval_loss", kind="max", threshold=ceiling, severity="critical")
    lp.baselines.create(
        MODEL_NAME,
        metric="eval_loss",
        kind="delta",
        direction="lower_is_better",
        threshold=0.05,
        baseline="champion",
        severity="critical",
    )
    console.print(
        f"{MODEL_NAME}: eval_loss <= {ceiling} (90% of a uniform guess), and at most 0.05 worse than the champion"
    )

    console.rule("5. Create, deploy and follow the job")
    backend = LocalBackend(work_dir=out_dir / "pods", extra_env={"LORA_HEARTBEAT_SECONDS": "2"})
    estimate = lp.jobs.estimate(dataset.id, base_model=str(base), hyperparameters=hyperparameters(steps))
    console.print(f"estimate on a RunPod {estimate.gpu_type}: {estimate}")
    job = lp.jobs.create(
        dataset.id,
        base_model=str(base),
        name="demo-run",
        hyperparameters=hyperparameters(steps),
        gates={"model_name": MODEL_NAME},
    )
    job = lp.jobs.deploy(job.id, backend=backend)
    console.print(f"job {job.id} is {job.status}; the pod program runs as a local process with its job token only")
    job = lp.jobs.wait_for_completion(job.id, backend=backend, poll_interval=1.0, timeout=1800, progress=progress)
    if job.status != "succeeded" and job.status_reason != "gate_failed":
        console.print(lp.jobs.logs(job.id, backend=backend, tail=40))
        raise SystemExit(f"the job ended {job.status} ({job.status_reason}); its log is above")

    console.rule("6. Gate, adapter, costs")
    gate = lp.gates.report(job.id)
    if gate is not None:
        console.print(gate)
    adapter_dir = lp.artifacts.download(job.id, out_dir / "adapter", progress=progress)
    training_summary = json.loads((adapter_dir / "training_summary.json").read_text())
    _check_adapter_loads(base, adapter_dir)
    console.print(f"adapter downloaded to {adapter_dir} and loaded with peft.PeftModel.from_pretrained")
    history = lp.metrics.history(job.id, columns=["train_loss", "eval_loss"])
    evals = [p.eval_loss for p in history if p.eval_loss is not None]
    plot = plot_losses(history, out_dir / "loss.png", title=f"LoRA on a tiny model, job {job.id[:8]}")
    cost = sum(record.amount_usd for record in lp.costs.for_job(job.id))
    return DemoResult(
        job=job,
        gate=gate,
        first_eval_loss=evals[0] if evals else None,
        final=lp.metrics.final(job.id),
        adapter_dir=adapter_dir,
        training_summary=training_summary,
        cost_usd=cost,
        plot=plot,
        seconds=time.perf_counter() - started,
    )


def plot_losses(history: list[Any], path: Path, *, title: str) -> Path:
    """Train and eval loss of one job on one axes (``lp.metrics.plot`` compares jobs, one panel per metric)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=120)
    train = [(p.step, p.train_loss) for p in history if p.train_loss is not None]
    evals = [(p.step, p.eval_loss) for p in history if p.eval_loss is not None]
    axes.plot(*zip(*train, strict=True), label="train loss", linewidth=1, alpha=0.8)
    axes.plot(*zip(*evals, strict=True), label="eval loss (held-out 10%)", marker="o", linewidth=2)
    axes.set(xlabel="optimizer step", ylabel="cross-entropy (nats/token)", title=title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _check_adapter_loads(base: Path, adapter_dir: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter_dir)


def print_summary(result: DemoResult, console: Console) -> None:
    artifact = result.training_summary
    table = Table(title="lora-pipeline demo", show_header=False)
    table.add_row("job", f"{result.job.id} ({result.job.status})")
    table.add_row("steps", str(artifact.get("steps")))
    table.add_row("eval loss", f"{_fmt(result.first_eval_loss)} -> {_fmt(result.final.get('eval_loss'))}")
    table.add_row("train loss (last)", _fmt(result.final.get("train_loss")))
    table.add_row("gate", result.gate.summary if result.gate else "not run")
    table.add_row("adapter", f"lora-models/{result.job.user_id}/{result.job.id}/ -> {result.adapter_dir}")
    table.add_row("throughput", f"{artifact.get('tokens_per_second', 0):,.0f} tokens/s on {artifact.get('device')}")
    table.add_row("cost", f"${result.cost_usd:.4f} (LocalBackend is free; RunPod rates apply there)")
    table.add_row("plot", str(result.plot))
    table.add_row("wall time", f"{result.seconds:.0f} s")
    console.print(table)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _quiet_libraries() -> None:
    """Keep the demo's output to what it shows: no Transformers progress bars or deprecation chatter."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=120, help="optimizer steps (default 120, ~2 min on 2 cores)")
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="where outputs go")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    args = parser.parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=110)
    _quiet_libraries()
    began = time.perf_counter()
    with LocalSupabase.start() as stack:
        console.print(f"embedded stack up at {stack.url} in {time.perf_counter() - began:.1f} s")
        result = run_demo(stack, args.out, steps=args.steps, console=console, progress=not args.no_progress)
    print_summary(result, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
