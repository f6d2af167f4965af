"""Each capability example runs as a user would run it (a subprocess, settings from the environment) against
the embedded stack; the RunPod one against the fake RunPod server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.backends.local import LocalBackend

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "data" / "support_chat.jsonl"


def run_example(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "LORA_", "RUNPOD_"))}
    return subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py"), *args],
        env={**clean, "COLUMNS": "160", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def signed_in(local_supabase: Any, user_factory: Any) -> tuple[Any, Any, dict[str, str]]:
    """(user, client, the environment of a signed-in user: URL, anon key, access token; no service key)."""
    user, lp = user_factory()
    env = {
        "SUPABASE_URL": local_supabase.url,
        "SUPABASE_ANON_KEY": local_supabase.anon_key,
        "LORA_PIPELINE_ACCESS_TOKEN": user.access_token,
    }
    return user, lp, env


def test_validate_and_upload_uploads_a_valid_file_and_refuses_an_invalid_one(
    signed_in: tuple[Any, Any, dict[str, str]], tmp_path: Path
) -> None:
    _, lp, env = signed_in
    app = {"NEXT_PUBLIC_APP_URL": "https://app.example.test"}
    done = run_example("validate_and_upload", {**env, **app}, str(SAMPLE), "--name", "support")
    assert done.returncode == 0, done.stderr
    [dataset] = lp.datasets.list()
    assert dataset.name == "support" and f"uploaded support as {dataset.id}" in done.stdout
    assert (
        "single-use download link" in done.stdout and "https://app.example.test/datasets/download?token=" in done.stdout
    )

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "user", "content": "hi"}]}\n{not json\n')
    refused = run_example("validate_and_upload", env, str(broken), "--name", "broken")
    assert refused.returncode == 1 and "not uploaded" in refused.stdout
    assert [d.name for d in lp.datasets.list()] == ["support"], "nothing of an invalid file is uploaded"


def test_a_custom_training_loop_reports_every_step_with_a_job_token(
    signed_in: tuple[Any, Any, dict[str, str]], tmp_path: Path
) -> None:
    _, lp, _ = signed_in
    dataset = lp.datasets.upload(SAMPLE, name="support", progress=None)
    job = lp.jobs.create(dataset.id, base_model="tiny")
    credentials = lp.jobs.issue_token(job.id)
    env = {**credentials.env(), "LORA_PIPELINE_SPOOL_DIR": str(tmp_path / "spool")}
    assert not any("SERVICE" in name for name in env)
    done = run_example("custom_training_loop", env, "--steps", "120", "--eval-every", "20")
    assert done.returncode == 0, done.stderr
    assert "sent 120 points, 0 pending, fitted y = 2.9" in done.stdout
    points = lp.metrics.history(job.id)
    assert [p.step for p in points] == list(range(1, 121))
    assert all(p.train_loss is not None for p in points)
    assert [p.step for p in points if p.eval_loss is not None] == list(range(20, 121, 20))
    assert points[-1].train_loss < points[0].train_loss and "weight" in points[-1].extra


def test_deploy_to_runpod_launches_a_pod_with_failover(
    signed_in: tuple[Any, Any, dict[str, str]], fake_runpod: Any
) -> None:
    _, lp, env = signed_in
    dataset = lp.datasets.upload(SAMPLE, name="support", progress=None)
    fake_runpod.script("createPod", ["capacity_error"] * 2)  # REST v2 (the default): A40 in both clouds
    env = {**env, "RUNPOD_API_KEY": fake_runpod.api_key, "RUNPOD_API_BASE_URL": fake_runpod.url}
    done = run_example(
        "deploy_to_runpod",
        env,
        dataset.id,
        "--base-model",
        "Qwen/Qwen2.5-0.5B-Instruct",
        "--gpu",
        "A40",
        "--gpu",
        "L40S",
    )
    assert done.returncode == 0, done.stderr
    [job] = lp.jobs.list()
    assert job.status == "provisioning" and job.gpu_type == "L40S" and job.pod_id
    assert f"job {job.id}: provisioning on L40S" in done.stdout
    tried = [c.input["gpu"]["id"] for c in fake_runpod.calls_to("createPod")]
    assert tried == ["NVIDIA A40", "NVIDIA A40", "NVIDIA L40S"]


def test_gates_in_ci_exit_codes_and_report(signed_in: tuple[Any, Any, dict[str, str]], tmp_path: Path) -> None:
    _, lp, env = signed_in
    dataset = lp.datasets.upload(SAMPLE, name="support", progress=None)
    backend = LocalBackend(work_dir=tmp_path / "pods", extra_env={"LORA_TRAINER": "selftest"})
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend)
    job = lp.jobs.wait_for_completion(job.id, backend=backend, poll_interval=0.2, timeout=60, progress=None)
    assert job.status == "succeeded"

    report = tmp_path / "gate.json"
    first = run_example("gates_in_ci", env, job.id, "--model", "support-bot", "--report", str(report))
    assert first.returncode == 0, first.stdout + first.stderr
    written = json.loads(report.read_text())
    assert written["decision"] == "warn"  # no champion yet: the ratio condition has no baseline
    assert {c["kind"] for c in written["conditions"]} == {"max", "ratio"}
    assert len(lp.baselines.list("support-bot")) == 2, "conditions are created once"

    strict = run_example("gates_in_ci", env, job.id, "--model", "support-bot", "--strict")
    assert strict.returncode == 1 and len(lp.baselines.list("support-bot")) == 2
    missing = run_example("gates_in_ci", env, "00000000-0000-0000-0000-000000000000", "--model", "support-bot")
    assert missing.returncode == 2 and "could not run" in missing.stdout


def test_own_machine_runs_start_to_finish_with_its_config_artifact_and_gate(
    signed_in: tuple[Any, Any, dict[str, str]], tmp_path: Path
) -> None:
    user, lp, env = signed_in
    dataset = lp.datasets.upload(SAMPLE, name="support", progress=None)
    lp.baselines.create("support-bot", metric="eval_loss", kind="max", threshold=0.1)
    done = run_example(
        "own_machine", {**env, "LORA_PIPELINE_SPOOL_DIR": str(tmp_path / "spool")}, dataset.id, "--model", "support-bot"
    )
    assert done.returncode == 0, done.stderr
    [job] = lp.runs.list()
    assert f"run {job.id}: succeeded, gate pass; fitted y = 2.9" in done.stdout
    assert job.status == "succeeded" and job.backend == "external" and job.hyperparameters["r"] == 8
    points = lp.metrics.history(job.id)
    assert [p.step for p in points] == list(range(1, 101))
    assert [p.step for p in points if p.eval_loss is not None] == list(range(20, 101, 20))
    [artifact] = lp.artifacts.list(job_id=job.id)
    assert artifact.storage_path == f"{user.id}/{job.id}/" and artifact.adapter_config == {
        "r": 8,
        "lora_alpha": 16,
        "peft_type": "LORA",
    }
    assert lp.gates.report(job.id).decision == "pass"
