"""Where to try a pod, and what each refusal means: RunPod REST v2's read-then-create failover.

``POST /v2/pods`` places one GPU type and never searches for capacity. RunPod's documented pattern
(``api-reference-v2/openapi.json``, *Deploying under region and GPU constraints*) is: read the catalog
(``GET /v2/catalog/gpus?include=AVAILABILITY&product=POD``), order the acceptable (GPU, cloud, data centre)
candidates, then create once per candidate until one answers 201, acting on its status table:

====== ================================================= =========================================
status meaning                                           here
====== ================================================= =========================================
422    the body breaks the contract                      raise :class:`BadRequest` at once
400    rejected: a cross-field rule, or no capacity      next candidate (all 400 → see below)
402    insufficient balance                              raise :class:`InsufficientFunds` at once
403    this account cannot use the pool                  skip the candidate
429    rate limited                                      wait ``Retry-After``, same candidate
5xx    transient                                         back off, same candidate (after a lookup)
====== ================================================= =========================================

A 400 carries no machine-readable capacity code, so when every candidate answered 400 the last ``detail``
decides: capacity wording gives :class:`CapacityError` (the job fails as ``no_capacity``), anything else is
the request's fault and stays a :class:`BadRequest`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._exceptions import (
    APIError,
    BadRequest,
    CapacityError,
    InsufficientFunds,
    PermissionDenied,
    RateLimited,
)
from .._logging import get_logger
from .._retry import INITIAL_DELAY, MAX_DELAY, is_retryable

log = get_logger("backends.runpod")

REST_CLOUDS = ("SECURE", "COMMUNITY")
"""REST v2 has no ``ALL``: an offer for either cloud becomes one candidate per cloud."""
_LEVELS = {"HIGH": 3, "MEDIUM": 2, "LOW": 1, "NONE": 0}


@dataclass(frozen=True)
class Candidate:
    """One create to try: a GPU type in one cloud, preferring these data centres (empty: RunPod picks)."""

    gpu_key: str
    gpu_id: str
    cloud: str
    data_center_ids: tuple[str, ...] = ()
    price: float | None = None
    """Per-GPU USD/h the catalog lists for this cloud."""
    availability: int = 0
    """0 (NONE) to 3 (HIGH), the best level among the preferred data centres."""

    def describe(self) -> str:
        where = ",".join(self.data_center_ids) or "any data centre"
        return f"{self.gpu_key}/{self.cloud}/{where}"


@dataclass(frozen=True)
class Wanted:
    """One offer of the backend, resolved: ``cloud`` is ``ALL``, ``SECURE`` or ``COMMUNITY``."""

    gpu_key: str
    gpu_id: str
    cloud: str
    data_center_id: str | None = None


def order_candidates(wanted: Sequence[Wanted], catalogs: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[Candidate]:
    """Candidates in the order to try them.

    ``catalogs`` maps a cloud to the ``gpus`` of ``GET /v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=``.
    Offers keep their order (the job's GPU first, then the larger fallbacks); within one offer the cheaper
    cloud goes first, then the better stocked. A candidate the catalog says has no stock anywhere is kept,
    after all the others: the catalog orders candidates, it reserves nothing and can be wrong either way.
    """
    ordered: list[tuple[int, int, float, int, Candidate]] = []
    for rank, offer in enumerate(wanted):
        for cloud in REST_CLOUDS if offer.cloud == "ALL" else (offer.cloud,):
            entry = _entry(catalogs.get(cloud, ()), offer.gpu_id)
            if catalogs.get(cloud) and entry is None:
                continue  # the catalog knows this cloud and has no such GPU type in it
            candidate = _candidate(offer, cloud, entry)
            if candidate is None:
                continue
            stocked = 1 if candidate.availability > 0 or entry is None else 0
            ordered.append((-stocked, rank, candidate.price or float("inf"), -candidate.availability, candidate))
    ordered.sort(key=lambda item: item[:4])
    return [item[4] for item in ordered]


def _entry(gpus: Iterable[Mapping[str, Any]], gpu_id: str) -> Mapping[str, Any] | None:
    return next((g for g in gpus if g.get("id") == gpu_id), None)


def _candidate(offer: Wanted, cloud: str, entry: Mapping[str, Any] | None) -> Candidate | None:
    if entry is None:  # no catalog for this cloud: let the create decide
        pinned: tuple[str, ...] = (offer.data_center_id,) if offer.data_center_id else ()
        return Candidate(offer.gpu_key, offer.gpu_id, cloud, pinned)
    if entry.get(cloud.lower()) is False:
        return None  # the GPU type is not offered in this cloud at all
    price = (entry.get("price") or {}).get(cloud.lower())
    centres = [d for d in entry.get("dataCenters") or [] if isinstance(d, Mapping)]
    if offer.data_center_id:
        centres = [d for d in centres if d.get("id") == offer.data_center_id]
        dcs: tuple[str, ...] = (offer.data_center_id,)
    else:
        centres = sorted(centres, key=lambda d: -_LEVELS.get(str(d.get("availability")), 0))
        dcs = tuple(str(d["id"]) for d in centres if _LEVELS.get(str(d.get("availability")), 0) > 0)
    level = max((_LEVELS.get(str(d.get("availability")), 0) for d in centres), default=0)
    if not centres and not offer.data_center_id:
        level = _LEVELS.get(str(entry.get("availability")), 0)
    return Candidate(offer.gpu_key, offer.gpu_id, cloud, dcs, float(price) if price else None, level)


class CreateLoop:
    """Creates one pod across candidates by the status table; ``find`` looks a pod up by name before a re-send.

    Args:
        create: sends one ``POST /v2/pods`` for a candidate and returns the created pod.
        find: the live pod of this name, or ``None`` (a create that failed on the wire may have happened).
        max_attempts: tries of one candidate on 5xx, timeouts and dropped connections.
        sleep: how to wait (tests inject a recorder).
    """

    def __init__(
        self,
        create: Callable[[Candidate], dict[str, Any]],
        find: Callable[[], dict[str, Any] | None],
        *,
        max_attempts: int,
        sleep: Callable[[float], None],
        max_rate_limit_waits: int = 10,
    ) -> None:
        self._create = create
        self._find = find
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._max_rate_limit_waits = max_rate_limit_waits

    def run(self, candidates: Sequence[Candidate], *, name: str, rounds: int) -> tuple[dict[str, Any], Candidate]:
        """The created pod and the candidate that took it; raises per the table when none did."""
        refusals: list[APIError] = []
        for round_number in range(rounds):
            if round_number:
                self._sleep(min(MAX_DELAY, 2.0 ** (round_number - 1)) + random.uniform(0, 1.0))
            for candidate in candidates:
                outcome = self._try(candidate)
                if isinstance(outcome, dict):
                    return outcome, candidate
                refusals.append(outcome)
                log.info(
                    "RunPod refused %s for %s: %s; trying the next candidate",
                    candidate.describe(),
                    name,
                    outcome.raw_message,
                )
        raise _final_error(refusals, candidates, name, rounds)

    def _try(self, candidate: Candidate) -> dict[str, Any] | APIError:
        attempts = waits = 0
        while True:
            try:
                return self._create(candidate)
            except (InsufficientFunds, PermissionDenied) as error:
                if isinstance(error, InsufficientFunds) or error.status != 403:
                    raise
                return error  # 403: this pool is closed to the account; the next may not be
            except BadRequest as error:
                if error.status == 422:
                    raise
                return error
            except CapacityError as error:
                return error
            except RateLimited as error:
                waits += 1
                if waits > self._max_rate_limit_waits:
                    raise
                self._sleep(error.retry_after if error.retry_after is not None else 1.0)
            except APIError as error:
                attempts += 1
                if not is_retryable(error) or attempts >= self._max_attempts:
                    raise
                self._sleep(_backoff(attempts))
                found = self._find()
                if found is not None:  # the try that failed had created it after all
                    return found


def _backoff(attempt: int) -> float:
    """The retry policy's jittered exponential pause (same constants as :mod:`lora_pipeline._retry`)."""
    return min(MAX_DELAY, INITIAL_DELAY * 2.0**attempt) + random.uniform(0, INITIAL_DELAY)


def _final_error(refusals: Sequence[APIError], candidates: Sequence[Candidate], name: str, rounds: int) -> APIError:
    described = ", ".join(c.describe() for c in candidates) or "no candidates"
    if not refusals:
        return CapacityError(
            f"RunPod's catalog lists none of the offered GPU types in the offered clouds for pod {name}",
            resource=name,
            service="runpod",
            suggestion="offer GPU types RunPod lists (GET /v2/catalog/gpus) or allow the other cloud",
        )
    capacity = [r for r in refusals if isinstance(r, CapacityError)]
    if capacity:
        detail = capacity[-1].raw_message
        return CapacityError(
            f"no capacity for pod {name} on any candidate ({described}) after {rounds} round(s): {detail}",
            status=400,
            resource=name,
            service="runpod",
            suggestion="no GPU of these types is free; add offers (other GPUs, clouds, data centres) or retry later",
        )
    # Every candidate refused the body itself (or was closed to the account): the request is at fault.
    rules = [r for r in refusals if not isinstance(r, PermissionDenied)]
    return (rules or list(refusals))[-1]


__all__ = ["REST_CLOUDS", "Candidate", "CreateLoop", "Wanted", "order_candidates"]
