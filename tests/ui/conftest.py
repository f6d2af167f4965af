"""The dashboard served for real (uvicorn on a free port) over the embedded stack, users made through its auth
API, jobs and their history written as the superuser, live points written by a real MetricsReporter."""

from __future__ import annotations

import hashlib
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.local_supabase import LocalSupabase

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("jinja2")

PASSWORD = "a long password 8"


@dataclass(frozen=True)
class SeededJob:
    id: str
    user_id: str
    token: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """``serve(viewers)``: the dashboard on a free port; returns its base URL (stopped after the test)."""
    from lora_pipeline.ui import create_app

    servers: list[tuple[Any, threading.Thread]] = []

    def start(viewers: Any, poll_seconds: float = 0.5) -> str:
        port = free_port()
        config = uvicorn.Config(
            create_app(viewers, poll_seconds=poll_seconds), host="127.0.0.1", port=port, log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        servers.append((server, thread))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture
def sign_in_viewers(local_supabase: LocalSupabase) -> Any:
    from lora_pipeline.ui import Viewers

    return Viewers(url=local_supabase.url, anon_key=local_supabase.anon_key)


@pytest.fixture
def seed(local_supabase: LocalSupabase) -> Callable[..., SeededJob]:
    """``seed(user_id, name=..., status=..., hyperparameters=..., steps=N)``: a job with N points of history."""

    def make(
        user_id: str,
        *,
        name: str = "job",
        status: str = "running",
        hyperparameters: dict[str, Any] | None = None,
        steps: int = 0,
        loss_scale: float = 1.0,
    ) -> SeededJob:
        token = secrets.token_urlsafe(32)
        with local_supabase.connect() as conn:
            dataset = conn.execute(
                "insert into public.datasets (user_id, name, storage_path) values (%s, %s, %s) returning id",
                (user_id, f"chat-{uuid.uuid4().hex[:8]}", f"{user_id}/{uuid.uuid4()}/data.jsonl"),
            ).fetchone()[0]
            job = conn.execute(
                "insert into public.training_jobs (user_id, dataset_id, name, base_model, status, gpu_type,"
                " cost_per_hour, hyperparameters, started_at, job_token_hash, job_token_expires_at)"
                " values (%s, %s, %s, 'Qwen/Qwen2.5-0.5B', %s, 'NVIDIA A40', 0.44, %s, now() - interval '20 minutes',"
                " %s, now() + interval '1 hour') returning id",
                (
                    user_id,
                    dataset,
                    name,
                    status,
                    json.dumps(hyperparameters or {"learning_rate": 2e-4, "lora_r": 16}),
                    hashlib.sha256(token.encode()).hexdigest(),
                ),
            ).fetchone()[0]
            if steps:
                conn.execute(
                    "insert into public.metrics_points (job_id, user_id, step, train_loss, eval_loss, learning_rate)"
                    " select %s, %s, s, %s * (2.5 * exp(-s / (%s::float8 / 4)) + 0.4 + 0.05 * sin(s / 7.0)),"
                    " case when s %% 50 = 0 then %s * (2.6 * exp(-s / (%s::float8 / 4)) + 0.5) end,"
                    " 2e-4 * exp(-s / (%s::float8 * 2)) from generate_series(1, %s) s",
                    (job, user_id, loss_scale, steps, loss_scale, steps, steps, steps),
                )
        return SeededJob(str(job), user_id, token)

    return make


@pytest.fixture
def make_reporter(local_supabase: LocalSupabase, tmp_path: Path) -> Iterator[Callable[[SeededJob], Any]]:
    """A pod's reporter for a seeded job, flushing fast."""
    from lora_pipeline.pod import MetricsReporter

    made: list[Any] = []

    def make(job: SeededJob) -> Any:
        reporter = MetricsReporter(
            job.id,
            job.token,
            local_supabase.url,
            local_supabase.anon_key,
            spool_dir=tmp_path / "spool",
            flush_interval=0.1,
            handle_signals=False,
            rank=0,
        )
        made.append(reporter)
        return reporter

    yield make
    for reporter in made:
        reporter.finish(timeout=2)
