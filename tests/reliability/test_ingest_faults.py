"""The metrics path under faults: gateway crashes, lost replies, a network partition, Postgres restarts.

Each test keeps "training" (``log()`` in a loop) through the fault and then checks the database exactly: every
step once, with the value logged, and the reporter's own accounting (``sent``) neither short nor doubled.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg
import pytest
from tests._support.tcp_proxy import ProxyMode, TcpProxy

from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.pod import MetricsReporter

from .conftest import SLOWEST_LOG_CALL, fault_policy, make_pod_job, stored, wait_until


def loss_at(step: int) -> float:
    return 1.0 / (step + 1)


class Training:
    """``log()`` in a loop on its own thread, as a training loop would, timing every call."""

    def __init__(self, reporter: MetricsReporter, *, first_step: int = 0, pause: float = 0.002) -> None:
        self.reporter = reporter
        self.next_step = first_step
        self.pause = pause
        self.slowest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="training", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            step = self.next_step
            began = time.perf_counter()
            self.reporter.log(step, loss=loss_at(step), epoch=step / 1000, tokens_seen=step * 7)
            self.slowest = max(self.slowest, time.perf_counter() - began)
            self.next_step = step + 1
            self._stop.wait(self.pause)

    def __enter__(self) -> Training:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(10)


def log_steps(reporter: MetricsReporter, steps: range) -> None:
    for step in steps:
        reporter.log(step, loss=loss_at(step), epoch=step / 1000, tokens_seen=step * 7)


def assert_exactly_once(stack: LocalSupabase, job_id: str, steps: int) -> None:
    rows = stored(stack, job_id)
    assert len(rows) == steps, f"{len(rows)} rows for {steps} steps"
    assert sorted(rows) == list(range(steps))
    wrong = [s for s, row in rows.items() if row["train_loss"] != loss_at(s) or row["extra"] != {"tokens_seen": s * 7}]
    assert not wrong, f"steps stored with other values than logged: {wrong[:10]}"


def test_gateway_killed_and_restarted_during_ingest_loses_and_doubles_nothing(
    private_stack: LocalSupabase, make_reporter: Any
) -> None:
    stack = private_stack
    job = make_pod_job(stack)
    reporter = make_reporter(job, stack.url, stack.anon_key, batch_size=100)
    with Training(reporter) as training:
        for crash in range(3):
            delivered = reporter.stats().sent
            assert wait_until(lambda before=delivered: reporter.stats().sent >= before + 300), f"none before {crash}"
            retries = reporter.stats().retries
            stack.kill_gateway()  # SIGKILL, with requests in flight
            assert wait_until(lambda before=retries: reporter.stats().retries > before), "the crash went unnoticed"
            stack.start_gateway()
        delivered = reporter.stats().sent
        assert wait_until(lambda: reporter.stats().sent >= delivered + 300), "no delivery after the last restart"
    stats = reporter.finish(timeout=60)

    steps = training.next_step
    assert (stats.logged, stats.pending, stats.dropped_points) == (steps, 0, 0)
    assert stats.sent == steps, "each point acknowledged exactly once"
    assert_exactly_once(stack, job.id, steps)
    assert training.slowest < SLOWEST_LOG_CALL, f"log() waited {training.slowest:.3f} s for the network"


def test_replies_lost_after_the_server_committed_are_resent_without_doubling(
    local_supabase: LocalSupabase, make_reporter: Any
) -> None:
    job = make_pod_job(local_supabase)
    with TcpProxy(local_supabase.url) as proxy:
        reporter = make_reporter(job, proxy.url, local_supabase.anon_key, batch_size=50)
        log_steps(reporter, range(100))
        assert reporter.flush(timeout=30)
        proxy.lose_replies()
        log_steps(reporter, range(100, 300))
        # The reporter re-sends from its oldest unacknowledged batch, so the same points reach the server, are
        # committed, and lose their reply again and again; it hears nothing back and keeps them all pending.
        assert wait_until(lambda: proxy.stats().replies_lost >= 4, timeout=30)
        assert len(stored(local_supabase, job.id)) > 100, "the server did the work whose replies were lost"
        assert reporter.stats().sent == 100 and reporter.stats().pending == 200
        proxy.heal()
        stats = reporter.finish(timeout=60)
    assert (stats.sent, stats.pending) == (300, 0)
    assert_exactly_once(local_supabase, job.id, 300)


def test_a_partition_longer_than_the_retry_budget_spools_then_drains(
    local_supabase: LocalSupabase, make_reporter: Any
) -> None:
    job = make_pod_job(local_supabase)
    # Retry budget of one batch: 2 attempts x 0.5 s + one backoff (0.5 to 1 s); the circuit opens after two
    # batches used theirs up, so an open circuit means the partition outlasted the budget twice over.
    policy = fault_policy(timeout=0.5, max_retries=1, failure_threshold=2, cool_down=0.5)
    with TcpProxy(local_supabase.url) as proxy:
        reporter = make_reporter(job, proxy.url, local_supabase.anon_key, batch_size=100, policy=policy)
        log_steps(reporter, range(200))
        assert reporter.flush(timeout=30)
        spool = Path(reporter.stats().spool_path)
        proxy.blackhole()
        with Training(reporter, first_step=200) as training:
            assert wait_until(lambda: reporter.stats().circuit == "open", timeout=30)
            opened = reporter.stats()
            size_when_open = spool.stat().st_size
            assert wait_until(lambda: reporter.stats().pending >= opened.pending + 500, timeout=30)
            assert wait_until(lambda: spool.stat().st_size > size_when_open)
            during = reporter.stats()
        assert during.sent == 200 and during.retries >= 2 and during.last_error
        assert len(stored(local_supabase, job.id)) == 200, "nothing got through the black hole"
        assert proxy.stats().blackholed >= 1

        proxy.heal()
        assert wait_until(lambda: reporter.stats().pending == 0, timeout=60), reporter.stats()
        stats = reporter.finish(timeout=30)
    steps = training.next_step
    assert (stats.sent, stats.circuit) == (steps, "closed")
    assert_exactly_once(local_supabase, job.id, steps)
    assert training.slowest < SLOWEST_LOG_CALL, f"log() waited {training.slowest:.3f} s during the partition"


def _ingest_waiting_on_a_lock(stack: LocalSupabase) -> bool:
    with stack.connect() as conn:
        row = conn.execute(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query like '%ingest_metrics%'"
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("how", ["fast", "crash"])
def test_postgres_restarted_mid_batch_loses_nothing(private_stack: LocalSupabase, make_reporter: Any, how: str) -> None:
    stack = private_stack
    job = make_pod_job(stack)
    reporter = make_reporter(job, stack.url, stack.anon_key, batch_size=1000, policy=fault_policy(max_retries=3))
    log_steps(reporter, range(200))
    assert reporter.flush(timeout=30)
    # Hold the row lock of step 250 in an open transaction, so the next batch is stuck inside Postgres.
    blocker = psycopg.connect(stack.db_url)
    try:
        blocker.execute(
            "insert into public.metrics_points (job_id, user_id, step, train_loss) values (%s, %s, 250, -1)",
            (job.id, job.user_id),
        )
        log_steps(reporter, range(200, 300))
        reporter.flush()
        assert wait_until(lambda: _ingest_waiting_on_a_lock(stack)), "the batch never reached Postgres"
        if how == "crash":
            stack.postgres.kill()  # immediate shutdown: crash recovery on the next start
        stack.postgres.restart()
    finally:
        with contextlib.suppress(psycopg.Error):
            blocker.close()
    log_steps(reporter, range(300, 400))
    stats = reporter.finish(timeout=60)

    assert (stats.sent, stats.pending) == (400, 0)
    assert stats.retries >= 1, "the batch in flight failed and was retried"
    assert_exactly_once(stack, job.id, 400)  # step 250 holds the logged value, not the rolled-back -1


@pytest.mark.slow
def test_a_flaky_network_for_a_while_loses_and_doubles_nothing(
    local_supabase: LocalSupabase, make_reporter: Any
) -> None:
    """Every fault of the proxy, in a seeded random order, while training logs for about fifteen seconds."""
    job = make_pod_job(local_supabase)
    chooser = random.Random(int(os.environ.get("LORA_FAULT_SEED", "11")))
    faults = [ProxyMode.DELAY, ProxyMode.DROP, ProxyMode.RESET, ProxyMode.BLACKHOLE, ProxyMode.LOSE_REPLIES]
    policy = fault_policy(timeout=0.5, max_retries=2, failure_threshold=3, cool_down=0.3)
    with TcpProxy(local_supabase.url) as proxy:
        reporter = make_reporter(job, proxy.url, local_supabase.anon_key, batch_size=50, policy=policy)
        with Training(reporter) as training:
            sequence = faults * 2 + [chooser.choice(faults) for _ in range(2)]
            chooser.shuffle(sequence)
            for fault in sequence:
                proxy.set_mode(fault, latency=chooser.uniform(0.01, 0.2))
                time.sleep(chooser.uniform(0.2, 0.8))  # how long this fault lasts (the scenario, not a wait)
                proxy.heal()
                delivered = reporter.stats().sent
                assert wait_until(lambda before=delivered: reporter.stats().sent > before, timeout=60), fault
        stats = reporter.finish(timeout=60)
        seen = proxy.stats()
    steps = training.next_step
    assert (stats.sent, stats.pending, stats.dropped_points) == (steps, 0, 0)
    assert seen.reset and seen.dropped and seen.blackholed and seen.replies_lost, seen
    assert_exactly_once(local_supabase, job.id, steps)
