"""The pod program with the real trainer under LocalBackend: a pod killed mid-training (SIGKILL) and restarted
on the same disk, as RunPod restarts an exited container, resumes from its latest checkpoint and finishes
once, with every training step in the metrics exactly once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lora_pipeline.backends.local import LocalBackend
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.types.jobs import JobStatus

STEPS, EVERY = 60, 10


def _step(lp: Any, job_id: str) -> int:
    return int((lp.jobs.retrieve(job_id).progress or {}).get("step") or 0)


def test_a_killed_pod_resumes_from_its_checkpoint_and_reports_every_step_once(
    local_supabase: LocalSupabase, user_factory: Any, tiny_base_model: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    _, lp = user_factory()
    dataset = lp.datasets.upload(sample_dataset, name="support", progress=None)
    backend = LocalBackend(
        work_dir=tmp_path / "pods",
        extra_env={"LORA_HEARTBEAT_SECONDS": "0.2", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    hyperparameters = {"learning_rate": 2e-2, "batch_size": 4, "gradient_accumulation_steps": 1, "max_seq_len": 128,
                       "eval_fraction": 0.0, "max_steps": STEPS, "checkpoint_steps": EVERY}  # fmt: skip
    job = lp.jobs.create(dataset.id, base_model=str(tiny_base_model), hyperparameters=hyperparameters)
    job = lp.jobs.deploy(job.id, backend=backend)
    handle = backend.handle_for(job.pod_id)
    assert handle is not None

    deadline = time.monotonic() + 180
    while _step(lp, job.id) < 2 * EVERY + 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    killed_at = _step(lp, job.id)
    backend.kill(handle)
    backend.wait(handle, timeout=30)
    assert 2 * EVERY < killed_at < STEPS, backend.logs(handle)
    backend.restart(handle)
    job = lp.jobs.wait_for_completion(job.id, backend=backend, timeout=240, poll_interval=0.5, progress=None)

    logs = backend.logs(handle, tail=2000)
    assert job.status is JobStatus.SUCCEEDED, logs
    assert "resuming from checkpoint-" in logs
    steps = [point.step for point in lp.metrics.history(job.id) if point.train_loss is not None]
    assert steps == list(range(1, STEPS + 1))  # complete, in order, once each
    assert len(lp.artifacts.list(job_id=job.id)) == 1
