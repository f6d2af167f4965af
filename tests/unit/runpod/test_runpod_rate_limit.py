"""RunPod's RateLimit headers, the client's shared budget, and the fake's token buckets."""

from __future__ import annotations

import threading

import httpx
import pytest

from lora_pipeline.backends._runpod_rate_limit import (
    RateBudget,
    parse_rate_limit,
    parse_rate_limit_policy,
    shared_budget,
)
from lora_pipeline.backends.runpod import RunPodBackend
from lora_pipeline.testing.fake_runpod import FakeRunPod
from lora_pipeline.testing.fake_runpod.rest_limits import RateLimiter

EXAMPLE_STATE = '"minute";r=0;t=12, "hour";r=2800;t=1812, "day";r=49500;t=45012'
EXAMPLE_POLICY = '"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400'


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_documented_header_examples_parse() -> None:
    assert parse_rate_limit(EXAMPLE_STATE) == {"minute": (0, 12.0), "hour": (2800, 1812.0), "day": (49500, 45012.0)}
    assert parse_rate_limit_policy(EXAMPLE_POLICY)["minute"] == (60, 60.0)
    assert parse_rate_limit('garbage, "minute";r=x;t=1, ;') == {}


def test_an_empty_window_makes_the_caller_wait_for_its_reset() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock, sleep=clock.sleep)
    budget.settle({"RateLimit-Policy": EXAMPLE_POLICY, "RateLimit": EXAMPLE_STATE})
    budget.acquire()
    assert clock.slept == [12.0] and budget.remaining("minute") == 59


def test_local_counting_stops_at_zero_between_replies() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock, sleep=clock.sleep)
    budget.settle({"RateLimit-Policy": '"minute";q=3;w=60', "RateLimit": '"minute";r=3;t=60'})
    for _ in range(3):
        budget.acquire()
    assert clock.slept == []
    budget.acquire()
    assert clock.slept == [60.0]


def test_requests_still_in_flight_are_taken_off_what_a_reply_reports() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock, sleep=clock.sleep)
    budget.acquire()
    budget.acquire()  # two in flight before any reply: nothing known yet, so both go
    budget.settle({"RateLimit": '"minute";r=2;t=60'})  # the first reply had not seen the second request
    assert budget.remaining("minute") == 1
    budget.acquire()
    budget.settle({"RateLimit": '"minute";r=1;t=59'})  # a late, higher count never raises ours
    assert budget.remaining("minute") == 0
    budget.settle({"RateLimit": '"minute";r=0;t=58'})
    budget.acquire()
    assert clock.slept == [58.0]


def test_retry_after_pauses_every_caller() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock, sleep=clock.sleep)
    budget.pause(7)
    budget.acquire()
    assert clock.slept == [7.0]


def test_one_budget_per_key_and_host_never_keyed_by_the_key_itself() -> None:
    assert shared_budget("k1", "http://a") is shared_budget("k1", "http://a")
    assert shared_budget("k1", "http://a") is not shared_budget("k1", "http://b")
    assert shared_budget("k1", "http://a") is not shared_budget("k2", "http://a")


def test_the_fake_sends_the_documented_headers_and_429s_an_empty_bucket() -> None:
    clock = Clock()
    limiter = RateLimiter({"minute": (2, 60.0)}, clock=clock)
    first = limiter.check("u")
    assert first.allowed and first.headers == {
        "RateLimit-Policy": '"minute";q=2;w=60',
        "RateLimit": '"minute";r=1;t=30',
    }
    assert limiter.check("u").allowed
    refused = limiter.check("u")
    assert not refused.allowed and refused.headers["Retry-After"] == "30" and limiter.refused == 1
    clock.now += 30
    assert limiter.check("u").allowed


def test_a_429_from_the_fake_is_a_problem_document_with_retry_after(fake: FakeRunPod) -> None:
    fake.set_rate_limit({"minute": (1, 60.0)})
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    assert httpx.get(f"{fake.url}/v2/pods", headers=headers).status_code == 200
    refused = httpx.get(f"{fake.url}/v2/pods", headers=headers)
    assert refused.status_code == 429 and refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429 and int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit"].startswith('"minute";r=0')


@pytest.mark.timeout(60)
def test_threads_sharing_a_key_pace_themselves_instead_of_meeting_429s(fake: FakeRunPod) -> None:
    """Four threads, 24 reads, a quota of 6 a second: the shared budget waits out the windows (real time)."""
    fake.set_rate_limit({"second": (6, 1.0)})
    backend = RunPodBackend(fake.api_key, max_attempts=1)  # a 429 would surface: no retries to hide it
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            for _ in range(6):
                backend.list_pods()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and fake.rate_limited == 0
    assert len(fake.calls_to("listPods")) == 24
