"""The README's main job, smaller: the demo's flow on the embedded stack with a real LoRA run of a few dozen steps."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console
from supabase import create_client

pytest.importorskip("peft")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STEPS = 48


def load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo() -> Any:
    return load_example("demo")


def test_the_demo_trains_a_real_adapter_and_gates_it(local_supabase: Any, demo: Any, tmp_path: Path) -> None:
    output = io.StringIO()
    result = demo.run_demo(
        local_supabase, tmp_path, steps=STEPS, progress=False, console=Console(file=output, width=120)
    )
    job = result.job
    assert job.status == "succeeded", output.getvalue()[-3000:]

    # The loss really fell.
    assert result.first_eval_loss is not None and result.final["eval_loss"] < result.first_eval_loss - 0.5
    assert result.final["train_loss"] < result.first_eval_loss

    # The adapter is in Storage under the job's folder and loads back with peft.
    storage = create_client(local_supabase.url, local_supabase.service_role_key).storage
    listed = {o["name"] for o in storage.from_("lora-models").list(f"{job.user_id}/{job.id}")}
    assert {"adapter_model.safetensors", "adapter_config.json", "training_summary.json"} <= listed
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tmp_path / "tiny-base"), result.adapter_dir)
    trained = [p for name, p in model.named_parameters() if "lora_B" in name]
    assert trained and any(float(p.abs().sum()) > 0 for p in trained), "lora_B starts at zero; training moves it"

    # The gate ran on completion and let the first model of this name through.
    assert result.gate is not None and result.gate.decision in ("pass", "warn")
    assert result.gate.results[0].status == "pass"

    # Every optimizer step the trainer logged is a row, with its train loss.
    with psycopg.connect(local_supabase.db_url) as conn:
        rows = conn.execute(
            "select step, train_loss, eval_loss from public.metrics_points where job_id = %s order by step", (job.id,)
        ).fetchall()
    steps_with_train_loss = {step for step, train_loss, _ in rows if train_loss is not None}
    assert steps_with_train_loss == set(range(1, STEPS + 1))
    assert sum(1 for *_, eval_loss in rows if eval_loss is not None) >= 3

    assert result.plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.training_summary["steps"] == STEPS and result.training_summary["tokens_per_second"] > 0
