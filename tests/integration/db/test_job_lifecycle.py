"""The job lifecycle is enforced by Postgres (DESIGN §5): transitions, events, notifications."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg import errors


@pytest.fixture
def job(conn: psycopg.Connection[Any]) -> str:
    uid = str(uuid.uuid4())
    conn.execute("insert into auth.users (id, email) values (%s, 'x@example.test')", (uid,))
    ds = conn.execute("insert into public.datasets (user_id, name) values (%s, 'd') returning id", (uid,)).fetchone()[0]
    return str(
        conn.execute(
            "insert into public.training_jobs (user_id, dataset_id, base_model, name) "
            "values (%s, %s, 'm', 'demo') returning id",
            (uid, ds),
        ).fetchone()[0]
    )


def move(conn: psycopg.Connection[Any], job: str, status: str, reason: str | None = None) -> None:
    conn.execute("update public.training_jobs set status = %s, status_reason = %s where id = %s", (status, reason, job))


def events(conn: psycopg.Connection[Any], job: str) -> list[str]:
    return [r[0] for r in conn.execute("select message from public.job_events where job_id = %s order by id", (job,))]


def test_the_happy_path_writes_one_event_per_transition(conn: psycopg.Connection[Any], job: str) -> None:
    for status in ("validating", "queued", "provisioning", "running", "uploading", "succeeded"):
        move(conn, job, status)
    assert events(conn, job) == [
        "created",
        "created -> validating",
        "validating -> queued",
        "queued -> provisioning",
        "provisioning -> running",
        "running -> uploading",
        "uploading -> succeeded",
    ]
    started, finished = conn.execute(
        "select started_at, finished_at from public.training_jobs where id = %s", (job,)
    ).fetchone()
    assert started is not None and finished is not None and finished >= started
    kinds = [r[0] for r in conn.execute("select kind from public.notifications where job_id = %s", (job,))]
    assert kinds == ["job_succeeded"]


def test_skipping_states_is_refused_with_the_allowed_moves(conn: psycopg.Connection[Any], job: str) -> None:
    with pytest.raises(psycopg.Error) as info:
        move(conn, job, "running")
    assert info.value.diag.sqlstate == "LP001"
    assert "cannot move job" in str(info.value) and "created to running" in str(info.value)
    assert "validating" in (info.value.diag.message_hint or "")


def test_terminal_states_are_final(conn: psycopg.Connection[Any], job: str) -> None:
    move(conn, job, "cancelled")
    with pytest.raises(psycopg.Error, match="terminal state"):
        move(conn, job, "queued")


def test_failed_needs_a_known_reason(conn: psycopg.Connection[Any], job: str) -> None:
    with pytest.raises(errors.CheckViolation):
        move(conn, job, "failed")
    move(conn, job, "failed", "validation_failed")
    message = conn.execute("select title from public.notifications where job_id = %s", (job,)).fetchone()[0]
    assert "failed (validation_failed)" in message


def test_succeeded_may_only_fail_its_gate(conn: psycopg.Connection[Any], job: str) -> None:
    for status in ("queued", "provisioning", "running", "succeeded"):
        move(conn, job, status)
    with pytest.raises(psycopg.Error, match="regression gate"):
        move(conn, job, "failed", "container_error")
    move(conn, job, "failed", "gate_failed")
    assert events(conn, job)[-1] == "succeeded -> failed (gate_failed)"


def test_infra_loss_requeues_with_the_next_attempt(conn: psycopg.Connection[Any], job: str) -> None:
    for status in ("queued", "provisioning", "running"):
        move(conn, job, status)
    move(conn, job, "queued", "pod_lost")
    attempt, reason = conn.execute(
        "select attempt, status_reason from public.training_jobs where id = %s", (job,)
    ).fetchone()
    assert (attempt, reason) == (2, "pod_lost")


def test_cancel_is_two_phase_once_a_pod_exists(conn: psycopg.Connection[Any], job: str) -> None:
    for status in ("queued", "provisioning"):
        move(conn, job, status)
    with pytest.raises(psycopg.Error):
        move(conn, job, "cancelled")
    move(conn, job, "cancelling")
    move(conn, job, "cancelled")
    assert events(conn, job)[-2:] == ["provisioning -> cancelling", "cancelling -> cancelled"]


def test_budget_stop_notification(conn: psycopg.Connection[Any], job: str) -> None:
    for status in ("queued", "provisioning", "running"):
        move(conn, job, status)
    move(conn, job, "failed", "budget_exceeded")
    kind, title = conn.execute("select kind, title from public.notifications where job_id = %s", (job,)).fetchone()
    assert kind == "budget_stop" and "budget exceeded" in title


def test_an_ended_job_keeps_its_outcome(conn: psycopg.Connection[Any], job: str) -> None:
    move(conn, job, "failed", "container_error")
    with pytest.raises(psycopg.Error, match="already ended"):
        move(conn, job, "failed", "budget_exceeded")
    assert conn.execute("select status_reason from public.training_jobs where id = %s", (job,)).fetchone() == (
        "container_error",
    )
