"""Jobs with known job tokens, made directly in SQL as the superuser (as the metrics tests do), for benchmarks
that report metrics the way a pod does: anon key + job token."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any


def make_jobs(stack: Any, count: int = 1) -> tuple[str, list[tuple[str, str]]]:
    """One user with ``count`` running jobs, each with a fresh token; returns ``(user_id, [(job_id, token)])``."""
    user_id = str(uuid.uuid4())
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    with stack.connect() as conn:
        conn.execute(
            "insert into auth.users (id, email, aud, role) values (%s, %s, 'authenticated', 'authenticated')",
            (user_id, f"{user_id}@bench.test"),
        )
        dataset = _one(
            conn.execute(
                "insert into public.datasets (user_id, name, storage_path) values (%s, 'bench', %s) returning id",
                (user_id, f"{user_id}/data.jsonl"),
            )
        )
        jobs = [
            (
                str(
                    _one(
                        conn.execute(
                            "insert into public.training_jobs (user_id, dataset_id, base_model, status, "
                            "job_token_hash, job_token_expires_at) "
                            "values (%s, %s, 'bench', 'running', %s, now() + interval '2 hours') returning id",
                            (user_id, dataset, hashlib.sha256(token.encode()).hexdigest()),
                        )
                    )
                ),
                token,
            )
            for token in tokens
        ]
    return user_id, jobs


def settle(stack: Any) -> None:
    """Fresh planner statistics and no checkpoint pending, so that two measurements start alike.

    Every table, not only ``metrics_points``: after 1,000 jobs were added in bulk, stale statistics of
    ``training_jobs`` kept the foreign-key check of each inserted point on a sequential scan in sessions that
    planned it while the table was small (a cached plan; +16 ms per 500-point batch), which autovacuum would
    only fix a minute later.
    """
    with stack.connect() as conn:
        conn.execute("vacuum analyze")
        conn.execute("checkpoint")


def count_points(stack: Any, job_ids: list[str] | None = None) -> int:
    """Rows in ``metrics_points`` (of ``job_ids`` when given)."""
    with stack.connect() as conn:
        if job_ids is None:
            return int(_one(conn.execute("select count(*) from public.metrics_points")))
        return int(
            _one(conn.execute("select count(*) from public.metrics_points where job_id = any(%s::uuid[])", (job_ids,)))
        )


def _one(cursor: Any) -> Any:
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("the statement returned no row")
    return row[0]
