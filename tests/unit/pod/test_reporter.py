"""MetricsReporter against a real (fake) HTTP server: batching, merging, outages, permanent failures, exit."""

from __future__ import annotations

import json
import logging
import math
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_pipeline import ConfigError
from lora_pipeline.pod import MetricsReporter, SendPolicy
from lora_pipeline.pod.spool import Spool

from .conftest import ANON_KEY, TOKEN, FakeSupabase


def wait_until(predicate: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_logged_points_arrive_in_batches_no_larger_than_batch_size(
    make_reporter: Any, fake_supabase: FakeSupabase
) -> None:
    reporter = make_reporter(batch_size=100)
    for step in range(1000):
        reporter.log(step, loss=1.0 / (step + 1), learning_rate=1e-4, epoch=step / 500)
    assert reporter.flush(timeout=5)
    stats = reporter.finish(timeout=5)
    assert sorted(fake_supabase.rows) == list(range(1000))
    assert all(len(body["points"]) <= 100 for body in fake_supabase.ingest_requests())
    assert (stats.sent, stats.pending, stats.dropped_values, stats.circuit) == (1000, 0, 0, "closed")
    assert fake_supabase.rows[500]["epoch"] == 1.0
    assert not Path(stats.spool_path or "").exists(), "a fully acknowledged spool is removed on finish"


def test_a_batch_over_the_byte_limit_is_cut_into_several_requests(
    make_reporter: Any, fake_supabase: FakeSupabase
) -> None:
    reporter = make_reporter(policy=SendPolicy(max_request_bytes=4_000))
    for step in range(200):
        reporter.log(step, loss=0.5, **{f"metric_{i}": float(i) for i in range(5)})
    assert reporter.flush(timeout=5)
    bodies = [json.dumps(body["points"]) for body in fake_supabase.ingest_requests()]
    assert len(bodies) > 5 and all(len(b) <= 4_500 for b in bodies)
    assert len(fake_supabase.rows) == 200


def test_train_and_eval_rows_at_one_step_merge_in_one_batch(make_reporter: Any, fake_supabase: FakeSupabase) -> None:
    reporter = make_reporter(flush_interval=60)
    reporter.log(10, loss=1.5, epoch=1.0)
    reporter.log(10, eval_loss=1.7, eval_accuracy=0.4)
    reporter.log(9, loss=1.6)  # steps going backwards are fine: they overwrite
    assert reporter.flush(timeout=5)
    [body] = fake_supabase.ingest_requests()
    at_ten = [p for p in body["points"] if p["step"] == 10]
    assert len(at_ten) == 1, "duplicate steps are merged client-side"
    assert fake_supabase.rows[10]["train_loss"] == 1.5 and fake_supabase.rows[10]["eval_loss"] == 1.7
    assert fake_supabase.rows[10]["extra"] == {"eval_accuracy": 0.4}


def test_non_finite_values_travel_as_strings(make_reporter: Any, fake_supabase: FakeSupabase) -> None:
    reporter = make_reporter()
    reporter.log(1, loss=math.nan, perplexity=math.inf, grad_norm=-math.inf, huge=1e308)
    assert reporter.flush(timeout=5)
    row = fake_supabase.rows[1]
    assert (row["train_loss"], row["perplexity"], row["grad_norm"]) == ("NaN", "Infinity", "-Infinity")
    assert row["extra"]["huge"] == 1e308


def test_bad_values_are_dropped_with_one_warning_per_name(
    make_reporter: Any, fake_supabase: FakeSupabase, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = make_reporter()
    with caplog.at_level(logging.WARNING, logger="lora_pipeline"):
        for step in range(5):
            reporter.log(step, loss="high", learning_rate=0.1)
        reporter.log(-1, loss=1.0)
        reporter.log(2.5, loss=1.0)  # type: ignore[arg-type]
    assert reporter.flush(timeout=5)
    warnings = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len([w for w in warnings if "'loss'" in w]) == 1
    assert len([w for w in warnings if "'step'" in w]) == 1
    assert reporter.stats().dropped_values == 7
    assert sorted(fake_supabase.rows) == [0, 1, 2, 3, 4]
    assert "train_loss" not in fake_supabase.rows[0]


def test_an_outage_keeps_points_on_disk_opens_the_circuit_and_recovers(
    make_reporter: Any, fake_supabase: FakeSupabase
) -> None:
    fake_supabase.down.set()
    reporter = make_reporter(policy=SendPolicy(timeout=1, max_retries=1, failure_threshold=2, cool_down=0.3))
    slowest = 0.0
    for step in range(3000):
        began = time.perf_counter()
        reporter.log(step, loss=1.0)
        slowest = max(slowest, time.perf_counter() - began)
        if step % 300 == 0:
            time.sleep(0.02)
    assert wait_until(lambda: reporter.stats().circuit == "open", 5)
    assert wait_until(lambda: reporter.stats().spooled == 3000, 5)
    assert reporter.stats().pending == 3000 and not fake_supabase.rows
    fake_supabase.down.clear()
    assert wait_until(lambda: reporter.stats().pending == 0, 10)
    stats = reporter.finish(timeout=5)
    assert sorted(fake_supabase.rows) == list(range(3000))
    assert stats.retries >= 1 and stats.circuit == "closed"
    assert slowest < 0.05, "log() never waits for the network"


def test_a_dead_token_stops_sending_reports_once_and_keeps_the_spool(
    make_reporter: Any,
    fake_supabase: FakeSupabase,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The guarantee: a permanent failure is never retried, and once the sender has seen one it starts no new
    request. Requests already in flight then (at most ``max_in_flight``, as the sender pipelines disjoint
    batches) may still reach the server: how many did is a matter of timing, not of the guarantee."""
    from lora_pipeline.pod import SendPolicy

    policy = SendPolicy(timeout=2.0, max_retries=2, failure_threshold=3, cool_down=0.2)
    fake_supabase.ended = True
    reporter = make_reporter(policy=policy)
    with caplog.at_level(logging.ERROR, logger="lora_pipeline"):
        for step in range(50):
            reporter.log(step, loss=1.0)
            reporter.flush()
            time.sleep(0.002)
        assert wait_until(lambda: reporter.stats().circuit == "stopped")
        for step in range(50, 80):  # logged after the stop: spooled, never sent
            reporter.log(step, loss=1.0)
            reporter.flush()
        stats = reporter.finish(timeout=5)
    errors = [r.getMessage() for r in caplog.records if "can no longer be sent" in r.getMessage()]
    assert len(errors) == 1 and "lora-pipeline metrics sync" in errors[0] and TOKEN not in errors[0]
    sent = len(fake_supabase.ingest_requests())
    assert 1 <= sent <= policy.max_in_flight, "no retries of a permanent failure, no request after it"
    assert stats.pending == 80 and Path(stats.spool_path or "").exists()
    hint = [line for line in capsys.readouterr().err.splitlines() if "metrics sync" in line]
    assert len(hint) == 1 and str(Path(stats.spool_path or "").parent) in hint[0]


def test_a_new_reporter_replays_what_its_spool_holds(
    make_reporter: Any, fake_supabase: FakeSupabase, tmp_path: Path
) -> None:
    fake_supabase.ended = True
    first = make_reporter()
    for step in range(120):
        first.log(step, loss=2.0)
    first.finish(timeout=2)
    assert fake_supabase.rows == {}
    fake_supabase.ended = False
    second = make_reporter()
    second.log(500, loss=1.0)
    second.finish(timeout=5)
    assert sorted(fake_supabase.rows) == [*range(120), 500]


def test_finish_returns_within_its_timeout_when_the_server_never_answers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Blackhole() as url:
        reporter = MetricsReporter(
            str(uuid.uuid4()),
            TOKEN,
            url,
            ANON_KEY,
            spool_dir=tmp_path,
            rank=0,
            flush_interval=0.05,
            handle_signals=False,
            policy=SendPolicy(timeout=30),
        )
        for step in range(10):
            reporter.log(step, loss=1.0)
        time.sleep(0.2)  # a request is now stuck waiting for an answer
        began = time.monotonic()
        stats = reporter.finish(timeout=1.5)
        elapsed = time.monotonic() - began
    assert elapsed < 2.5
    assert stats.pending == 10
    assert "metrics sync" in capsys.readouterr().err
    assert Spool.read(Path(stats.spool_path or ""), warn=print).pending() == (1, 10)


def test_memory_stays_bounded_when_the_spool_cannot_be_written(
    make_reporter: Any, fake_supabase: FakeSupabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    reporter = make_reporter(batch_size=100, max_buffer=300)

    def disk_full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(reporter.spool, "append", disk_full)
    for step in range(1000):
        reporter.log(step, loss=1.0)
    assert wait_until(lambda: reporter.stats().dropped_points > 0)
    stats = reporter.stats()
    assert stats.pending <= 300 + 100 and stats.dropped_points >= 600
    monkeypatch.undo()
    assert wait_until(lambda: reporter.stats().pending == 0)
    assert len(fake_supabase.rows) == 1000 - reporter.stats().dropped_points


def test_ranks_other_than_zero_do_nothing(fake_supabase: FakeSupabase, tmp_path: Path) -> None:
    reporter = MetricsReporter(fake_supabase.job_id, TOKEN, fake_supabase.url, ANON_KEY, spool_dir=tmp_path, rank=1)
    reporter.log(1, loss=1.0)
    reporter.set_progress(step=1)
    assert reporter.flush(timeout=1) is True
    assert reporter.finish().enabled is False
    assert fake_supabase.requests == [] and list(tmp_path.iterdir()) == []
    env = {"RANK": "3", "LOCAL_RANK": "0"}
    assert MetricsReporter.from_env(env=env).enabled is False, "needs no settings on other ranks"
    forced = MetricsReporter(
        fake_supabase.job_id,
        TOKEN,
        fake_supabase.url,
        ANON_KEY,
        spool_dir=tmp_path,
        rank=2,
        enabled=True,
        handle_signals=False,
    )
    assert forced.enabled
    forced.finish(timeout=1)


def test_from_env_reads_the_documented_names_and_names_every_missing_one(
    fake_supabase: FakeSupabase, tmp_path: Path
) -> None:
    env = {
        "LORA_JOB_ID": fake_supabase.job_id,
        "LORA_JOB_TOKEN": TOKEN,
        "NEXT_PUBLIC_SUPABASE_URL": fake_supabase.url,
        "NEXT_PUBLIC_SUPABASE_ANON_KEY": ANON_KEY,
        "LORA_PIPELINE_SPOOL_DIR": str(tmp_path),
    }
    reporter = MetricsReporter.from_env(env=env, handle_signals=False, flush_interval=0.05)
    reporter.log(1, loss=1.0)
    reporter.finish(timeout=5)
    assert 1 in fake_supabase.rows

    with pytest.raises(ConfigError) as caught:
        MetricsReporter.from_env(env={"LORA_JOB_ID": fake_supabase.job_id})
    message = str(caught.value)
    for name in (
        "LORA_JOB_TOKEN",
        "SUPABASE_URL",
        "NEXT_PUBLIC_SUPABASE_URL",
        "LORA_PIPELINE_URL",
        "SUPABASE_ANON_KEY",
        "NEXT_PUBLIC_SUPABASE_ANON_KEY",
        "LORA_PIPELINE_ANON_KEY",
    ):
        assert name in message
    assert "SUPABASE_SERVICE_ROLE_KEY" not in caught.value.env_names


def test_a_service_role_key_is_refused_and_job_ids_must_be_uuids(fake_supabase: FakeSupabase) -> None:
    service_key = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJlLXNpZ24"
    with pytest.raises(ConfigError, match="service-role"):
        MetricsReporter(fake_supabase.job_id, TOKEN, fake_supabase.url, service_key, rank=0)
    with pytest.raises(ConfigError, match="UUID"):
        MetricsReporter("../../etc", TOKEN, fake_supabase.url, ANON_KEY, rank=0)


def test_progress_is_sent_as_a_throttled_heartbeat(make_reporter: Any, fake_supabase: FakeSupabase) -> None:
    reporter = make_reporter(progress_interval=0.1)
    for step in range(50):
        reporter.set_progress(step=step, total_steps=100)
        time.sleep(0.005)
    assert wait_until(lambda: any(n == "pod_heartbeat" for n, _ in fake_supabase.requests))
    time.sleep(0.2)
    beats = [body for name, body in fake_supabase.requests if name == "pod_heartbeat"]
    assert 1 <= len(beats) <= 6
    assert beats[-1]["progress"]["total_steps"] == 100
    assert reporter.cancel_requested is False


def test_context_manager_finishes_and_log_after_finish_is_ignored(
    make_reporter: Any, fake_supabase: FakeSupabase
) -> None:
    with make_reporter() as reporter:
        reporter.log(1, loss=1.0)
    reporter.log(2, loss=1.0)
    assert sorted(fake_supabase.rows) == [1]
    assert reporter.finish() == reporter.stats()


class Blackhole:
    """A TCP server that accepts connections and never answers."""

    def __enter__(self) -> str:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.clients: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.getsockname()[1]}"

    def _accept(self) -> None:
        self.server.settimeout(0.05)
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


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.decimals(),
    st.fractions(),
    st.complex_numbers(),
    st.lists(st.floats(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=2),
)


def test_log_never_raises_whatever_it_is_given(make_reporter: Any, fake_supabase: FakeSupabase) -> None:
    reporter = make_reporter()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        step=st.one_of(st.integers(min_value=-5, max_value=2**40), st.floats(), st.text(max_size=3), st.none()),
        epoch=_values,
        values=st.dictionaries(st.text(max_size=30), _values, max_size=6),
    )
    def check(step: Any, epoch: Any, values: dict[str, Any]) -> None:
        reporter.log(step, epoch=epoch, **values)

    check()
    assert reporter.flush(timeout=10)
    stats = reporter.finish(timeout=5)
    assert (stats.pending, stats.rejected_points, stats.circuit) == (0, 0, "closed")
    assert all(0 <= step <= 2**31 - 1 for step in fake_supabase.rows)


def test_finish_waits_for_points_the_writer_is_still_encoding(
    make_reporter: Any, fake_supabase: FakeSupabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow encoding pass (a big backlog on a busy CPU) once let finish() return with points unspooled."""
    from lora_pipeline.pod import _workers

    real_merge = _workers.merge_rows

    def slow_merge(rows: Any) -> Any:
        time.sleep(0.5)
        return real_merge(rows)

    monkeypatch.setattr(_workers, "merge_rows", slow_merge)
    reporter = make_reporter()
    for step in range(5000):
        reporter.log(step, loss=1.0)
    time.sleep(0.1)  # the writer has taken the rows and is encoding them
    stats = reporter.finish(timeout=30)
    assert stats.pending == 0 and sorted(fake_supabase.rows) == list(range(5000))


def test_checkpoint_puts_everything_logged_on_disk_before_it_returns(
    make_reporter: Any, fake_supabase: FakeSupabase
) -> None:
    """A training checkpoint written after ``checkpoint()`` never outruns the metrics: a resumed run does not log
    those steps again, so they must be in the spool even if nothing was sent and the process dies next."""
    from lora_pipeline.pod.spool import Spool

    fake_supabase.ended = True  # nothing is acknowledged: only the spool can hold the points
    reporter = make_reporter(spool_interval=60.0, flush_interval=60.0)
    for step in range(1, 21):
        reporter.log(step, loss=1.0 / step)
    assert reporter.checkpoint(timeout=5.0)
    spool_path = Path(reporter.stats().spool_path or "")
    assert Spool.read(spool_path, warn=print).pending() == (1, 20), "steps 1-20 are on disk before the save"
