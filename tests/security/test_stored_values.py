"""Values a pod or a user stores can never break a reader, nor outlive their token (issue 12, items 5 and 7)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline import TokenRevoked
from lora_pipeline.local_supabase import LocalSupabase

from .conftest import DATASETS, new_person, rpc, seed_job

HOSTILE_TIMES = ["infinity", "-infinity", "294276-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "9999-12-31T23:59:59Z"]


@pytest.mark.parametrize("recorded_at", HOSTILE_TIMES)
def test_a_pods_timestamps_are_bounded_so_every_read_and_the_gate_still_work(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], recorded_at: str
) -> None:
    person = new_person(stack)
    job = seed_job(db, http, stack, person.id)
    points = [
        {"step": 1, "eval_loss": 2.0, "recorded_at": recorded_at},
        {"step": 2, "eval_loss": "NaN", "epoch": "Infinity", "extra": {"odd": {"deep": [1, None]}}},
    ]
    response = rpc(http, stack, "ingest_metrics", {"job_id": job.id, "job_token": job.token, "points": points})
    assert response.status_code == 200, response.text
    stored = db.execute(
        "select bool_and(isfinite(recorded_at) and recorded_at between now() - interval '1 minute' and now() + "
        "interval '1 minute'), max(epoch) from public.metrics_points where job_id = %s",
        (job.id,),
    ).fetchone()
    assert stored == (True, 0.0), "an unreadable time is stored as the arrival time, a non-finite epoch as 0"
    with stack.client(user=_local_user(stack, person)) as lp:
        history = lp.metrics.history(job.id)
        assert [p.step for p in history] == [1, 2] and all(p.recorded_at is not None for p in history)
        assert lp.metrics.final(job.id)["eval_loss"] != lp.metrics.final(job.id)["eval_loss"]  # NaN, read back
        assert lp.metrics.final(job.id, "min")["eval_loss"] == 2.0


def test_a_direct_insert_of_an_unreadable_time_is_refused(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    job = seed_job(db, http, stack, new_person(stack).id)
    db.execute("alter table public.metrics_points disable trigger bound_metric_point")
    try:
        with pytest.raises(psycopg.errors.CheckViolation):
            db.execute(
                "insert into public.metrics_points (job_id, user_id, step, recorded_at) values (%s, %s, 1, 'infinity')",
                (job.id, job.user_id),
            )
    finally:
        db.execute("alter table public.metrics_points enable trigger bound_metric_point")


def test_progress_a_pod_sends_is_bounded(stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any]) -> None:
    job = seed_job(db, http, stack, new_person(stack).id)
    huge = {"blob": "x" * 100_000}
    for progress in (huge, [1, 2], "text", {"step": 3}):
        response = rpc(http, stack, "pod_heartbeat", {"job_id": job.id, "job_token": job.token, "progress": progress})
        assert response.status_code == 200, response.text
    stored = db.execute("select progress from public.training_jobs where id = %s", (job.id,)).fetchone()
    assert stored == ({"step": 3},)


def _local_user(stack: LocalSupabase, person: Any) -> Any:
    from lora_pipeline.local_supabase.stack import LocalUser

    return LocalUser(id=person.id, email=person.email, password=person.password, access_token=person.access_token)


def _redeem(http: httpx.Client, stack: LocalSupabase, token: str) -> dict[str, Any]:
    response = rpc(http, stack, "redeem_download_token", {"token": token})
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def _sign(http: httpx.Client, stack: LocalSupabase, grant: dict[str, Any], seconds: int) -> httpx.Response:
    return http.post(
        f"/storage/v1/object/sign/{DATASETS}/{grant['path']}",
        json={"expiresIn": seconds},
        headers={
            "apikey": stack.anon_key,
            "Authorization": f"Bearer {stack.anon_key}",
            "x-lora-download-grant": grant["grant"],
        },
    )


def test_revoking_a_redeemed_token_stops_its_grant(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    person = new_person(stack)
    job = seed_job(db, http, stack, person.id)
    with stack.client(user=_local_user(stack, person)) as lp:
        issued = lp.tokens.issue(job.dataset_id)
        grant = _redeem(http, stack, issued.token)
        assert _sign(http, stack, grant, 60).status_code == 200
        lp.tokens.revoke(issued.id)
        assert _sign(http, stack, grant, 60).status_code in (400, 403, 404), "a revoked token's grant signs nothing"
        with pytest.raises(TokenRevoked):
            lp.tokens.redeem(issued.token)


def test_a_grant_and_its_signed_url_never_outlive_the_token(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    person = new_person(stack)
    job = seed_job(db, http, stack, person.id)
    with stack.client(user=_local_user(stack, person)) as lp:
        issued = lp.tokens.issue(job.dataset_id, ttl=timedelta(seconds=30))
        download = lp.tokens.redeem(issued.token)
    token_expires = db.execute(
        "select expires_at, grant_expires_at from public.dataset_download_tokens where id = %s", (issued.id,)
    ).fetchone()
    assert token_expires is not None
    assert token_expires[1] <= token_expires[0], "the grant ends with the token"
    assert download.expires_at <= token_expires[0] + timedelta(seconds=1)
    assert download.expires_at - datetime.now(timezone.utc) <= timedelta(seconds=31)
    body = httpx.get(download.signed_url, timeout=10)
    assert body.status_code == 200 and body.content == job.dataset_bytes


def test_oversized_or_odd_json_from_a_pod_is_stored_as_a_marker(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    job = seed_job(db, http, stack, new_person(stack).id)
    args = {"job_id": job.id, "job_token": job.token}
    logged = rpc(http, stack, "pod_log_event", args | {"level": "info", "kind": "k", "message": "m", "data": [1, 2]})
    assert logged.status_code in (200, 204), logged.text
    point = {"step": 1, "train_loss": 1.0, "extra": {"blob": "x" * 70_000}}
    assert rpc(http, stack, "ingest_metrics", args | {"points": [point]}).status_code == 200
    failed = rpc(
        http,
        stack,
        "pod_set_status",
        args | {"status": "failed", "reason": "training_error", "error": {"trace": "y" * 30_000}},
    )
    assert failed.status_code == 200, failed.text
    data = db.execute("select data from public.job_events where job_id = %s and kind = 'k'", (job.id,)).fetchone()
    extra = db.execute("select extra from public.metrics_points where job_id = %s", (job.id,)).fetchone()
    error = db.execute("select error from public.training_jobs where id = %s", (job.id,)).fetchone()
    for stored in (data, extra, error):
        assert stored is not None and list(stored[0]) == ["dropped"], stored
