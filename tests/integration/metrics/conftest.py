"""Jobs with known job tokens, made directly in SQL as the superuser, and reporters pointed at the embedded
stack (the plugin's session ``local_supabase``; our tables are reset after each test)."""

from __future__ import annotations

import hashlib
import secrets
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.local_supabase import LocalSupabase


@dataclass(frozen=True)
class PodJob:
    id: str
    user_id: str
    token: str


@pytest.fixture
def pod_job(local_supabase: LocalSupabase) -> Any:
    """``pod_job(user_id=None, status="running")``: a job (and its user and dataset) with a fresh token."""

    def make(*, user_id: str | None = None, status: str = "running") -> PodJob:
        token = secrets.token_urlsafe(32)
        with local_supabase.connect() as conn:
            if user_id is None:
                user_id = str(uuid.uuid4())
                conn.execute(
                    "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
                    (user_id, f"{user_id}@example.test"),
                )
            dataset = conn.execute(
                "insert into public.datasets (user_id, name, storage_path) values (%s, %s, %s) returning id",
                (user_id, f"d-{uuid.uuid4().hex[:12]}", f"{user_id}/{uuid.uuid4()}/data.jsonl"),
            ).fetchone()[0]
            job = conn.execute(
                "insert into public.training_jobs (user_id, dataset_id, base_model, status, job_token_hash,"
                " job_token_expires_at) values (%s, %s, 'tiny', %s, %s, now() + interval '1 hour') returning id",
                (user_id, dataset, status, hashlib.sha256(token.encode()).hexdigest()),
            ).fetchone()[0]
        return PodJob(str(job), user_id, token)

    return make


@pytest.fixture
def make_reporter(local_supabase: LocalSupabase, tmp_path: Path) -> Iterator[Any]:
    """``make_reporter(job, **options)``: a reporter for ``job`` on the stack with fast intervals."""
    from lora_pipeline.pod import MetricsReporter, SendPolicy

    made: list[MetricsReporter] = []

    def make(job: PodJob, **options: Any) -> MetricsReporter:
        options.setdefault("spool_dir", tmp_path / "spool")
        options.setdefault("flush_interval", 0.1)
        options.setdefault("spool_interval", 0.02)
        options.setdefault("handle_signals", False)
        options.setdefault("rank", 0)
        options.setdefault("policy", SendPolicy(timeout=5, max_retries=1, failure_threshold=2, cool_down=0.3))
        url = options.pop("url", local_supabase.url)
        reporter = MetricsReporter(job.id, options.pop("job_token", job.token), url, local_supabase.anon_key, **options)
        made.append(reporter)
        return reporter

    yield make
    for reporter in made:
        reporter.finish(timeout=2)


def stored(stack: LocalSupabase, job_id: str) -> dict[int, dict[str, Any]]:
    """The job's rows, by step, read as the superuser (float8 NaN/Infinity come back as Python floats)."""
    with stack.connect() as conn, conn.cursor() as cursor:
        cursor.execute("select * from public.metrics_points where job_id = %s order by step", (job_id,))
        names = [column.name for column in cursor.description or ()]
        return {row[names.index("step")]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


class Blackhole:
    """A TCP server that accepts connections and never answers (a hung server)."""

    def __enter__(self) -> str:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.05)
        self.clients: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                self.clients.append(self.server.accept()[0])
            except OSError:
                continue

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        for client in self.clients:
            client.close()
        self.server.close()
