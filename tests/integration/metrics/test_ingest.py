"""The metrics path end to end, on the embedded stack: reporter -> gateway -> rpc/ingest_metrics -> Postgres."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline import PermissionDenied
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.pod import PodClient, SendPolicy, sync_spool
from lora_pipeline.pod._delivery import Delivery

from .conftest import Blackhole, PodJob, stored


def wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def test_ten_thousand_points_through_a_gateway_outage_arrive_exactly_once(
    local_supabase: LocalSupabase, pod_job: Any, make_reporter: Any, tmp_path: Path
) -> None:
    job = pod_job()
    reporter = make_reporter(job, batch_size=500)
    for step in range(3000):
        reporter.log(step, loss=1.0 / (step + 1), epoch=step / 1000)
    assert reporter.flush(timeout=20)
    local_supabase.kill_gateway()
    try:
        slowest = 0.0
        for step in range(3000, 7000):
            began = time.perf_counter()
            reporter.log(step, loss=1.0 / (step + 1), epoch=step / 1000)
            slowest = max(slowest, time.perf_counter() - began)
            if step % 500 == 0:
                time.sleep(0.05)
        assert wait_until(lambda: reporter.stats().circuit == "open")
        assert reporter.stats().pending > 0
    finally:
        local_supabase.start_gateway()
    for step in range(7000, 10_000):
        reporter.log(step, loss=1.0 / (step + 1), epoch=step / 1000)
    stats = reporter.finish(timeout=30)
    result = sync_spool(
        tmp_path / "spool", url=local_supabase.url, anon_key=local_supabase.anon_key, job_token=job.token, env={}
    )

    rows = stored(local_supabase, job.id)
    assert len(rows) == 10_000 and sorted(rows) == list(range(10_000))
    assert all(rows[s]["train_loss"] == 1.0 / (s + 1) for s in (0, 4321, 9999))
    assert stats.sent + result.sent == 10_000 and result.pending == 0
    assert slowest < 0.05, "log() never waits for the network"


def test_a_killed_training_process_loses_nothing_its_spool_held(
    local_supabase: LocalSupabase, pod_job: Any, make_reporter: Any, tmp_path: Path
) -> None:
    job = pod_job()
    child = textwrap.dedent(f"""
        import sys, time
        from lora_pipeline.pod import MetricsReporter
        reporter = MetricsReporter({job.id!r}, {job.token!r}, sys.argv[1], {local_supabase.anon_key!r},
                                   spool_dir={str(tmp_path / "spool")!r}, rank=0, spool_interval=0.02)
        for step in range(1000):
            reporter.log(step, loss=float(step), eval_loss=2.0 if step % 100 == 0 else None)
        while reporter.stats().spooled < 1000:
            time.sleep(0.01)
        print("spooled", flush=True)
        time.sleep(60)
    """)
    with Blackhole() as hung_url:  # nothing gets acknowledged before the kill
        process = subprocess.Popen([sys.executable, "-c", child, hung_url], stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "spooled"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    spool_file = tmp_path / "spool" / f"{job.id}.jsonl"
    with open(spool_file, "ab") as handle:  # and a record torn by a crash mid-write
        handle.write(b'{"v":1,"count":1,"logged":1,"crc32":0,"points":[{"step":5000,"train')

    reporter = make_reporter(job)
    assert reporter.stats().pending == 1000
    reporter.finish(timeout=20)
    rows = stored(local_supabase, job.id)
    assert sorted(rows) == list(range(1000))
    assert rows[100]["eval_loss"] == 2.0 and rows[999]["train_loss"] == 999.0


def test_train_and_eval_rows_at_one_step_both_survive_in_one_batch_and_across_batches(
    local_supabase: LocalSupabase, pod_job: Any, make_reporter: Any
) -> None:
    job = pod_job()
    reporter = make_reporter(job, flush_interval=60)
    reporter.log(10, loss=1.5, learning_rate=1e-4, epoch=0.5)
    reporter.log(10, eval_loss=1.7, eval_accuracy=0.4)
    assert reporter.flush(timeout=10)
    reporter.log(20, loss=1.2, epoch=1.0)
    assert reporter.flush(timeout=10)
    reporter.log(20, eval_loss=1.4, eval_accuracy=0.5)
    reporter.log(5, loss=9.0)
    assert reporter.flush(timeout=10)
    reporter.log(5, loss=3.0)  # a resumed run replays steps: the last write wins
    assert reporter.flush(timeout=10)
    rows = stored(local_supabase, job.id)
    assert (rows[10]["train_loss"], rows[10]["eval_loss"], rows[10]["learning_rate"]) == (1.5, 1.7, 1e-4)
    assert (rows[20]["train_loss"], rows[20]["eval_loss"], rows[20]["epoch"]) == (1.2, 1.4, 1.0)
    assert rows[20]["extra"] == {"eval_accuracy": 0.5}
    assert rows[5]["train_loss"] == 3.0 and rows[5]["epoch"] == 0.0, "epoch defaults to 0"


def test_odd_values_are_stored_or_dropped_without_losing_the_batch(
    local_supabase: LocalSupabase, pod_job: Any, make_reporter: Any
) -> None:
    job = pod_job()
    reporter = make_reporter(job)
    reporter.log(
        1,
        loss=math.nan,
        perplexity=math.inf,
        grad_norm=-math.inf,
        huge=1e308,
        tiny=5e-324,
        big_int=10**400,
        label="oops",
        **{"weird/name ü": 1.0, "nul\x00name": 2.0},
    )
    reporter.log(2, loss="0.5", learning_rate=0.1)
    reporter.log(2**31, loss=1.0)
    assert reporter.flush(timeout=10)
    rows = stored(local_supabase, job.id)
    assert sorted(rows) == [1, 2]
    assert math.isnan(rows[1]["train_loss"]) and rows[1]["perplexity"] == math.inf
    assert rows[1]["grad_norm"] == -math.inf
    extra = rows[1]["extra"]  # jsonb keeps numbers as numeric: 1e308 comes back as a 309-digit integer
    assert {name: float(value) for name, value in extra.items()} == {
        "huge": 1e308,
        "tiny": 5e-324,
        "big_int": math.inf,
        "weird/name ü": 1.0,
    }
    assert rows[2]["train_loss"] is None and rows[2]["learning_rate"] == 0.1
    assert reporter.stats().dropped_values == 4


def test_a_batch_over_the_functions_limit_is_split(local_supabase: LocalSupabase, pod_job: Any) -> None:
    job = pod_job()
    points = json.dumps([{"step": step, "train_loss": 0.5} for step in range(2500)]).encode()
    with PodClient(local_supabase.url, local_supabase.anon_key, job.id, job.token, max_retries=0) as client:
        delivered = Delivery(client, SendPolicy(max_request_bytes=10**7)).send(points)
    assert (delivered.rows_written, delivered.rejected) == (2500, 0)
    assert len(stored(local_supabase, job.id)) == 2500


def test_the_token_of_one_job_cannot_write_into_another(
    local_supabase: LocalSupabase, pod_job: Any, make_reporter: Any
) -> None:
    victim, intruder = pod_job(), pod_job()
    with PodClient(local_supabase.url, local_supabase.anon_key, victim.id, intruder.token, max_retries=0) as client:
        with pytest.raises(PermissionDenied) as caught:
            client.ingest_metrics([{"step": 1, "train_loss": 0.1}])
        with pytest.raises(PermissionDenied):
            client.heartbeat({"step": 99})
    assert caught.value.code == "42501"
    reporter = make_reporter(PodJob(victim.id, victim.user_id, intruder.token))
    reporter.log(1, loss=0.1)
    assert wait_until(lambda: reporter.stats().circuit == "stopped")
    assert stored(local_supabase, victim.id) == {} and stored(local_supabase, intruder.id) == {}


def test_a_job_that_ends_stops_the_reporter_once_and_keeps_its_points(
    local_supabase: LocalSupabase, pod_job: Any, make_reporter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    job = pod_job()
    reporter = make_reporter(job)
    reporter.log(1, loss=1.0)
    assert reporter.flush(timeout=10)
    with local_supabase.connect() as conn:
        conn.execute("update public.training_jobs set status = 'succeeded' where id = %s", (job.id,))
    with caplog.at_level("ERROR", logger="lora_pipeline"):
        for step in range(2, 40):
            reporter.log(step, loss=1.0)
            reporter.flush()
            time.sleep(0.005)
        assert wait_until(lambda: reporter.stats().circuit == "stopped")
        stats = reporter.finish(timeout=5)
    assert len([r for r in caplog.records if "can no longer be sent" in r.getMessage()]) == 1
    assert stats.pending == 38 and stats.last_error and "42501" in stats.last_error
    assert Path(stats.spool_path or "").exists()
    assert sorted(stored(local_supabase, job.id)) == [1]


def test_finish_is_bounded_by_a_hung_server_and_sync_delivers_the_rest(
    local_supabase: LocalSupabase,
    pod_job: Any,
    make_reporter: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    job = pod_job()
    with Blackhole() as hung_url:
        reporter = make_reporter(job, url=hung_url, policy=SendPolicy(timeout=30))
        for step in range(500):
            reporter.log(step, loss=0.25)
        time.sleep(0.3)
        began = time.monotonic()
        stats = reporter.finish(timeout=1.5)
        assert time.monotonic() - began < 2.5
    assert stats.pending == 500
    hint = capsys.readouterr().err
    assert f"lora-pipeline metrics sync {tmp_path / 'spool'}" in hint
    result = sync_spool(
        tmp_path / "spool", url=local_supabase.url, anon_key=local_supabase.anon_key, job_token=job.token, env={}
    )
    assert result.ok and result.sent == 500
    assert len(stored(local_supabase, job.id)) == 500
