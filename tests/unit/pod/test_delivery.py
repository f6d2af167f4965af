"""PodClient error mapping and the delivery policy: what is retried, split, rejected, or permanent."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from lora_pipeline._exceptions import APIConnectionError, PermissionDenied, RateLimited, ServiceUnavailable
from lora_pipeline.pod import PodClient, SendPolicy
from lora_pipeline.pod._delivery import CircuitBreaker, CircuitState, Delivery, is_permanent
from lora_pipeline.pod.client import json_safe

from .conftest import ANON_KEY, TOKEN, FakeSupabase, Fault


@pytest.fixture
def client(fake_supabase: FakeSupabase) -> Any:
    with PodClient(fake_supabase.url, ANON_KEY, fake_supabase.job_id, TOKEN, timeout=2, max_retries=0) as pod:
        yield pod


def encoded(steps: range) -> bytes:
    return json.dumps([{"step": s, "train_loss": 1.0} for s in steps]).encode()


def test_rpcs_send_job_id_and_token_with_the_anon_key(client: PodClient, fake_supabase: FakeSupabase) -> None:
    assert client.ingest_metrics([{"step": 1, "train_loss": float("nan")}]) == 1
    assert client.heartbeat(progress={"step": 1})["cancel_requested"] is False
    assert client.set_status("running") == "running"
    name, body = fake_supabase.requests[0]
    assert name == "ingest_metrics"
    assert body == {"job_id": fake_supabase.job_id, "job_token": TOKEN, "points": [{"step": 1, "train_loss": "NaN"}]}


def test_a_refused_token_is_a_permission_error_that_says_what_to_do(
    client: PodClient, fake_supabase: FakeSupabase
) -> None:
    fake_supabase.ended = True
    with pytest.raises(PermissionDenied) as caught:
        client.heartbeat()
    assert caught.value.code == "42501"
    assert "issue a new one" in str(caught.value)
    assert is_permanent(caught.value)


def test_transient_failures_are_retried_honouring_retry_after(fake_supabase: FakeSupabase) -> None:
    fake_supabase.faults.extend([Fault(503), Fault(429, headers={"Retry-After": "0.2"})])
    with PodClient(fake_supabase.url, ANON_KEY, fake_supabase.job_id, TOKEN, max_retries=2) as pod:
        began = time.monotonic()
        assert pod.ingest_metrics([{"step": 1}]) == 1
    assert time.monotonic() - began >= 0.2
    assert len(fake_supabase.ingest_requests()) == 3


def test_connection_refused_is_a_transient_connection_error() -> None:
    with (
        PodClient("http://127.0.0.1:9", ANON_KEY, "00000000-0000-0000-0000-000000000000", TOKEN, max_retries=0) as pod,
        pytest.raises(APIConnectionError),
    ):
        pod.get_job()


def test_secrets_never_reach_log_records(
    client: PodClient, fake_supabase: FakeSupabase, caplog: pytest.LogCaptureFixture
) -> None:
    fake_supabase.ended = True
    logger = logging.getLogger("lora_pipeline.test")
    with caplog.at_level(logging.DEBUG, logger="lora_pipeline"), pytest.raises(PermissionDenied) as caught:
        client.heartbeat()
    from lora_pipeline._logging import get_logger

    get_logger("test").error("failed with %s using %s / %s", caught.value, TOKEN, ANON_KEY)
    assert logger.name
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in text and ANON_KEY not in text and "<redacted>" in text


def test_a_batch_the_server_finds_too_large_is_split_until_it_fits(
    client: PodClient, fake_supabase: FakeSupabase
) -> None:
    fake_supabase.max_body = 2_000
    delivered = Delivery(client, SendPolicy()).send(encoded(range(100)))
    assert (delivered.rows_written, delivered.rejected) == (100, 0)
    assert sorted(fake_supabase.rows) == list(range(100))
    assert len(fake_supabase.ingest_requests()) > 1


def test_a_point_refused_on_its_own_is_rejected_and_the_rest_is_delivered(
    client: PodClient, fake_supabase: FakeSupabase
) -> None:
    refused: list[bytes] = []
    fake_supabase.faults.extend([Fault(400, {"code": "22003", "message": "out of range"})] * 1)
    body = encoded(range(1))
    delivered = Delivery(client, SendPolicy(), on_reject=lambda point, error: refused.append(point)).send(body)
    assert delivered.rejected == 1 and refused


def test_transient_failures_raise_after_the_retries_and_deadline(
    client: PodClient, fake_supabase: FakeSupabase
) -> None:
    fake_supabase.faults.extend([Fault(503)] * 10)
    retried: list[Any] = []
    delivery = Delivery(client, SendPolicy(max_retries=2), sleep=lambda s: None, on_retry=retried.append)
    with pytest.raises(ServiceUnavailable):
        delivery.send(encoded(range(3)))
    assert len(retried) == 2 and len(fake_supabase.ingest_requests()) == 3
    with pytest.raises(ServiceUnavailable):
        delivery.send(encoded(range(3)), deadline=time.monotonic())
    assert len(fake_supabase.ingest_requests()) == 4, "no retry past the deadline"


def test_the_circuit_opens_after_the_threshold_and_probes_after_the_cool_down() -> None:
    now = [0.0]
    breaker = CircuitBreaker(threshold=2, cool_down=10, clock=lambda: now[0])
    breaker.failed()
    assert breaker.state is CircuitState.CLOSED and breaker.allows()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN and not breaker.allows()
    assert breaker.allows(probe_now=True), "the final flush may probe at once"
    now[0] = 10.0
    assert breaker.state is CircuitState.HALF_OPEN and breaker.allows()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN, "a failed probe opens it again"
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED
    breaker.stop()
    assert breaker.state is CircuitState.STOPPED and not breaker.allows(probe_now=True)


def test_rate_limits_are_not_permanent() -> None:
    assert not is_permanent(RateLimited("slow down", status=429))
    assert json_safe({"a": [float("inf"), -float("inf")], "b": (1,)}) == {"a": ["Infinity", "-Infinity"], "b": [1]}
