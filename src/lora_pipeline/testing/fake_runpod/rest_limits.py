"""The fake's per-user rate limiter: one token bucket per window, answered with RunPod's documented headers.

RunPod REST v2 sends ``RateLimit-Policy`` (quota ``q`` per window of ``w`` seconds) and ``RateLimit``
(remaining ``r``, seconds ``t`` until the window is whole again) on every authenticated reply, and a 429 with
``Retry-After`` when a window is empty (``api-reference-v2/openapi.json``: ``TooManyRequestsError``). Each
window here is a token bucket refilled continuously at ``q / w`` tokens a second. It runs on real time by
default: a client's own pacing is what is under test, so it has to pass real time too.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

DEFAULT_POLICY: dict[str, tuple[int, float]] = {"minute": (6000, 60.0), "hour": (300_000, 3600.0)}
"""Generous by default so tests that are not about limits never meet one; RunPod's published example is
``"minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400`` (see :data:`RUNPOD_EXAMPLE_POLICY`)."""
RUNPOD_EXAMPLE_POLICY: dict[str, tuple[int, float]] = {
    "minute": (60, 60.0),
    "hour": (3000, 3600.0),
    "day": (50000, 86400.0),
}


@dataclass
class _Bucket:
    quota: int
    length: float
    tokens: float
    at: float

    @property
    def rate(self) -> float:
        return self.quota / self.length

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.quota), self.tokens + (now - self.at) * self.rate)
        self.at = now


@dataclass(frozen=True)
class Decision:
    """Whether a request may run, and the headers every reply carries."""

    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    """Token buckets per user (pod-scoped keys count against their account, as RunPod counts per user)."""

    def __init__(
        self, policy: Mapping[str, tuple[int, float]] | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._policy = dict(policy or DEFAULT_POLICY)
        self._clock = clock
        self._buckets: dict[str, dict[str, _Bucket]] = {}
        self._lock = threading.Lock()
        self.refused = 0
        """429s answered so far."""

    def set_policy(self, policy: Mapping[str, tuple[int, float]]) -> None:
        """New quotas; every user starts again with full buckets."""
        with self._lock:
            self._policy = dict(policy)
            self._buckets.clear()

    def check(self, user: str) -> Decision:
        """Spend one token from every window of ``user``, or refuse with the wait of the emptiest window."""
        with self._lock:
            now = self._clock()
            buckets = self._buckets.setdefault(
                user, {name: _Bucket(q, w, float(q), now) for name, (q, w) in self._policy.items()}
            )
            for bucket in buckets.values():
                bucket.refill(now)
            empty = [b for b in buckets.values() if b.tokens < 1.0]
            if not empty:
                for bucket in buckets.values():
                    bucket.tokens -= 1.0
            headers = self._headers(buckets)
            if empty:
                self.refused += 1
                wait = max((1.0 - b.tokens) / b.rate for b in empty)
                headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return Decision(allowed=not empty, headers=headers)

    @staticmethod
    def _headers(buckets: Mapping[str, _Bucket]) -> dict[str, str]:
        policy = ", ".join(f'"{name}";q={b.quota};w={b.length:g}' for name, b in buckets.items())
        state = ", ".join(
            f'"{name}";r={int(b.tokens)};t={math.ceil((b.quota - b.tokens) / b.rate)}' for name, b in buckets.items()
        )
        return {"RateLimit-Policy": policy, "RateLimit": state}


__all__ = ["DEFAULT_POLICY", "RUNPOD_EXAMPLE_POLICY", "Decision", "RateLimiter"]
