"""Migration 0012 adds one edge to the job state machine, created -> running, and only for external jobs:
checked on the table itself (as the superuser, so only the trigger stands in the way)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest


def _set(db: psycopg.Connection[Any], job_id: str, *, backend: str | None, status: str | None = None) -> None:
    db.execute(
        "update public.training_jobs set backend = %s, status = coalesce(%s, status) where id = %s",
        (backend, status, job_id),
    )


@pytest.mark.parametrize("backend", [None, "local", "runpod"])
def test_a_job_of_a_launching_backend_never_skips_from_created_to_running(
    local_supabase: Any, owner: Any, backend: str | None
) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny")
    with (
        local_supabase.connect() as db,
        pytest.raises(psycopg.Error, match=r"cannot move job \S+ from created to running"),
    ):
        _set(db, job.id, backend=backend, status="running")


def test_an_external_job_goes_from_created_to_running_and_nowhere_else_new(local_supabase: Any, owner: Any) -> None:
    _, lp, dataset = owner
    jobs = [lp.jobs.create(dataset.id, base_model="tiny").id for _ in range(3)]
    with local_supabase.connect() as db:
        for skipped in ("uploading", "succeeded"):
            with pytest.raises(psycopg.Error, match=f"from created to {skipped}"):
                _set(db, jobs[0], backend="external", status=skipped)
            db.rollback()
        _set(db, jobs[1], backend="external", status="running")
        db.commit()
        with pytest.raises(psycopg.Error, match='violates check constraint "training_jobs_backend_check"'):
            _set(db, jobs[2], backend="elsewhere")
    job = lp.jobs.retrieve(jobs[1])
    assert job.status == "running" and job.started_at is not None
    assert [e.message for e in lp.jobs.events(job.id) if e.kind == "status"] == ["created", "created -> running"]
