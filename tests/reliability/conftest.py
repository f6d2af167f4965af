"""Fault-injection fixtures: a private stack for tests that kill its gateway or restart its Postgres (the
plugin's session stack is never disturbed), jobs with known job tokens, and reporters with short timeouts.

Every wait here polls a condition against a deadline; generous deadlines, because CI machines are small and
busy, and a deadline is only ever reached when something is broken.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.pod import MetricsReporter, SendPolicy

SLOWEST_LOG_CALL = 0.4
"""Seconds one ``log()`` call may take under the faults here. It takes microseconds; the bound only leaves room
for a busy CI machine, and stays below what waiting on the network (timeouts of 0.5 s and more, backoff of 0.5 s
and more) or on a failing disk would cost."""


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds passed; returns its last truth."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@dataclass(frozen=True)
class PodJob:
    id: str
    user_id: str
    token: str


def make_pod_job(stack: LocalSupabase, *, status: str = "running") -> PodJob:
    """A job (with its user and dataset) and a fresh job token, written as the superuser."""
    token = secrets.token_urlsafe(32)
    user_id = str(uuid.uuid4())
    with stack.connect() as conn:
        conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
            (user_id, f"{user_id}@example.test"),
        )
        row = conn.execute(
            "insert into public.datasets (user_id, name, storage_path) values (%s, 'd', %s) returning id",
            (user_id, f"{user_id}/{uuid.uuid4()}/data.jsonl"),
        ).fetchone()
        assert row is not None
        row = conn.execute(
            "insert into public.training_jobs (user_id, dataset_id, base_model, status, job_token_hash,"
            " job_token_expires_at) values (%s, %s, 'tiny', %s, %s, now() + interval '1 hour') returning id",
            (user_id, row[0], status, hashlib.sha256(token.encode()).hexdigest()),
        ).fetchone()
        assert row is not None
    return PodJob(str(row[0]), user_id, token)


def stored(stack: LocalSupabase, job_id: str) -> dict[int, dict[str, Any]]:
    """The job's metric rows by step, read as the superuser."""
    with stack.connect() as conn, conn.cursor() as cursor:
        cursor.execute("select * from public.metrics_points where job_id = %s order by step", (job_id,))
        names = [column.name for column in cursor.description or ()]
        return {row[names.index("step")]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def fault_policy(**changes: Any) -> SendPolicy:
    """Short timeouts and cool-downs, so that faults show and heal within a second or two."""
    values: dict[str, Any] = {"timeout": 5.0, "max_retries": 1, "failure_threshold": 2, "cool_down": 0.3}
    values.update(changes)
    return SendPolicy(**values)


@pytest.fixture
def make_reporter(tmp_path: Path) -> Iterator[Callable[..., MetricsReporter]]:
    """``make_reporter(job, url, anon_key, **options)``: a reporter with fast intervals, finished afterwards."""
    made: list[MetricsReporter] = []

    def make(job: PodJob, url: str, anon_key: str, **options: Any) -> MetricsReporter:
        options.setdefault("spool_dir", tmp_path / "spool")
        options.setdefault("flush_interval", 0.05)
        options.setdefault("spool_interval", 0.02)
        options.setdefault("handle_signals", False)
        options.setdefault("rank", 0)
        options.setdefault("policy", fault_policy())
        reporter = MetricsReporter(job.id, job.token, url, anon_key, **options)
        made.append(reporter)
        return reporter

    yield make
    for reporter in made:
        reporter.finish(timeout=2)


@pytest.fixture(scope="module")
def private_stack_for_module() -> Iterator[LocalSupabase]:
    # Durable (fsync and synchronous commit on, as a real deployment runs): a temporary stack turns them off
    # for speed, and then a Postgres crash loses commits it had already acknowledged.
    root = Path(tempfile.mkdtemp(prefix="lora-reliability-"))
    stack = LocalSupabase.start(data_dir=root, gateway="process")
    try:
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_stack(private_stack_for_module: LocalSupabase) -> LocalSupabase:
    """A stack of this module's own, healthy and empty at the start of each test (tests crash its parts)."""
    stack = private_stack_for_module
    stack.start_gateway()
    assert wait_until(lambda: _accepts_queries(stack), timeout=60), "the private stack's Postgres is not back"
    stack.reset()
    return stack


def _accepts_queries(stack: LocalSupabase) -> bool:
    try:
        with stack.connect(connect_timeout=2) as conn:
            conn.execute("select 1")
    except Exception:
        return False
    return True


def chat_dataset(path: Path, records: int = 24) -> Path:
    """A small, valid chat dataset (the pod's selftest trainer reads it)."""
    with path.open("w", encoding="utf-8") as handle:
        for index in range(records):
            question = f"How do I reset the password of account number {index}?"
            answer = f"Open settings, choose security, then 'reset password' for account {index}."
            messages = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            handle.write(json.dumps({"messages": messages}) + "\n")
    return path
