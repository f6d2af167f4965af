"""The REST create loop's status table and the catalog's candidate order, as pure logic (no server)."""

from __future__ import annotations

from typing import Any

import pytest

from lora_pipeline._error_mapping import map_error
from lora_pipeline._exceptions import APIError, BadRequest, CapacityError, InsufficientFunds, ServiceUnavailable
from lora_pipeline.backends._runpod_catalog import Candidate, CreateLoop, Wanted, order_candidates

A40 = Wanted("A40", "NVIDIA A40", "ALL")
L40S = Wanted("L40S", "NVIDIA L40S", "SECURE")


def refusal(status: int, detail: str) -> APIError:
    body = {"title": "x", "status": status, "detail": detail}
    return map_error(service="runpod", status=status, body=body, headers={"Retry-After": "5"})


class Script:
    """Answers creates in order: an exception to raise, or a pod."""

    def __init__(self, *outcomes: APIError | dict[str, Any]) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[Candidate] = []
        self.lookups = 0

    def create(self, candidate: Candidate) -> dict[str, Any]:
        self.calls.append(candidate)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, APIError):
            raise outcome
        return outcome

    def find(self) -> dict[str, Any] | None:
        self.lookups += 1
        return None


def run(script: Script, candidates: list[Candidate], sleeps: list[float], rounds: int = 1) -> Any:
    loop = CreateLoop(script.create, script.find, max_attempts=3, sleep=sleeps.append)
    return loop.run(candidates, name="lp-j-1", rounds=rounds)


CANDIDATES = [Candidate("A40", "NVIDIA A40", "SECURE"), Candidate("L40S", "NVIDIA L40S", "SECURE")]


def test_every_candidate_refusing_the_body_with_400_is_a_bad_request_not_capacity() -> None:
    script = Script(refusal(400, "ports must be port/protocol"), refusal(400, "ports must be port/protocol"))
    with pytest.raises(BadRequest, match="ports must be") as error:
        run(script, CANDIDATES, [])
    assert not isinstance(error.value, CapacityError) and len(script.calls) == 2


def test_a_capacity_400_anywhere_makes_the_final_error_capacity() -> None:
    capacity = refusal(400, "There are no longer any instances available with the requested specifications.")
    script = Script(capacity, refusal(400, "no such data centre"))
    with pytest.raises(CapacityError, match="A40/SECURE/any data centre, L40S/SECURE"):
        run(script, CANDIDATES, [])


def test_422_and_402_stop_the_loop_at_once() -> None:
    for error, cls in (
        (refusal(422, "Request validation failed."), BadRequest),
        (refusal(402, "low"), InsufficientFunds),
    ):
        script = Script(error, {"id": "never"})
        with pytest.raises(cls):
            run(script, CANDIDATES, [])
        assert len(script.calls) == 1


def test_5xx_retries_the_same_candidate_after_looking_for_the_pod() -> None:
    script = Script(refusal(503, "upstream"), {"id": "p1"})
    sleeps: list[float] = []
    pod, candidate = run(script, CANDIDATES, sleeps)
    assert pod == {"id": "p1"} and candidate is CANDIDATES[0] and script.lookups == 1 and len(sleeps) == 1


def test_5xx_that_persists_surfaces_after_max_attempts() -> None:
    script = Script(*[refusal(500, "down")] * 3)
    with pytest.raises(ServiceUnavailable):
        run(script, CANDIDATES, [])
    assert [c.gpu_key for c in script.calls] == ["A40"] * 3


def test_429_sleeps_retry_after_and_keeps_the_candidate() -> None:
    script = Script(refusal(429, "slow down"), {"id": "p1"})
    sleeps: list[float] = []
    assert run(script, CANDIDATES, sleeps)[1] is CANDIDATES[0] and sleeps == [5.0]


def test_rounds_pause_between_passes() -> None:
    capacity = refusal(400, "no longer any instances available")
    script = Script(capacity, capacity, capacity, {"id": "p1"})
    sleeps: list[float] = []
    run(script, CANDIDATES, sleeps, rounds=2)
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0


def gpu(gpu_id: str, secure: float, community: float, dcs: dict[str, str], overall: str = "HIGH") -> dict[str, Any]:
    return {
        "id": gpu_id,
        "secure": True,
        "community": True,
        "price": {"secure": secure, "community": community},
        "availability": overall,
        "dataCenters": [{"id": dc, "name": dc, "availability": level} for dc, level in dcs.items()],
    }


def test_order_keeps_offer_rank_then_price_and_best_stocked_data_centres_first() -> None:
    catalogs = {
        "SECURE": [
            gpu("NVIDIA A40", 0.44, 0.35, {"US-TX-3": "LOW", "EU-RO-1": "HIGH"}),
            gpu("NVIDIA L40S", 0.9, 0.7, {"US-TX-3": "MEDIUM"}),
        ],
        "COMMUNITY": [gpu("NVIDIA A40", 0.44, 0.35, {"US-CA-2": "MEDIUM"})],
    }
    ordered = order_candidates([A40, L40S], catalogs)
    assert [(c.gpu_key, c.cloud, c.data_center_ids) for c in ordered] == [
        ("A40", "COMMUNITY", ("US-CA-2",)),
        ("A40", "SECURE", ("EU-RO-1", "US-TX-3")),
        ("L40S", "SECURE", ("US-TX-3",)),
    ]


def test_a_candidate_with_no_stock_anywhere_goes_last_but_is_kept() -> None:
    catalogs = {
        "SECURE": [gpu("NVIDIA A40", 0.44, 0.35, {}, overall="NONE"), gpu("NVIDIA L40S", 0.9, 0.7, {"US-TX-3": "LOW"})]
    }
    ordered = order_candidates([Wanted("A40", "NVIDIA A40", "SECURE"), L40S], catalogs)
    assert [c.gpu_key for c in ordered] == ["L40S", "A40"]


def test_without_a_catalog_offers_are_tried_as_given() -> None:
    ordered = order_candidates([Wanted("A40", "NVIDIA A40", "SECURE", "EU-RO-1"), L40S], {})
    assert [(c.gpu_key, c.data_center_ids) for c in ordered] == [("A40", ("EU-RO-1",)), ("L40S", ())]


def test_a_rest_410_is_apiretired_never_retried_never_unreadable() -> None:
    from lora_pipeline._exceptions import APIRetired
    from lora_pipeline._retry import is_retryable

    error = refusal(410, "API v2 has been retired; use v3")
    assert isinstance(error, APIRetired) and not is_retryable(error)
    assert "API v2 has been retired" in str(error) and "unreadable" not in str(error)
    assert error.suggestion and "never retried" in error.suggestion
