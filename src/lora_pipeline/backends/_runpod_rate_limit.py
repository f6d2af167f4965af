"""RunPod REST v2 rate limits: the headers it sends, and one request budget per API key shared by threads.

RunPod publishes per-user quotas for a minute, an hour and a day (``api-reference-v2/openapi.json``,
``RateLimitHeader`` / ``RateLimitPolicyHeader``) as IETF ratelimit-headers structured fields on every
authenticated reply, not only on 429s::

    RateLimit-Policy: "minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400
    RateLimit: "minute";r=0;t=12, "hour";r=2800;t=1812, "day";r=49500;t=45012

A :class:`RateBudget` remembers what the last reply said (remaining ``r`` and seconds to reset ``t`` per
window), counts its own requests down in between, and makes a caller wait for the reset instead of spending
a request on a 429. It is shared by every backend and thread using the same key against the same host,
because RunPod counts per user, not per client object.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .._logging import get_logger

log = get_logger("backends.runpod")

MAX_WAIT = 120.0
"""Longest single pause for a window to reset; a longer promise is re-read after this."""


@dataclass
class Window:
    """One quota window as last reported: requests ``remaining`` until ``resets_at`` (monotonic seconds)."""

    remaining: int
    resets_at: float
    quota: int | None = None
    length: float | None = None


def _members(value: str) -> dict[str, dict[str, str]]:
    """``"minute";r=0;t=12, "hour";r=5`` → ``{"minute": {"r": "0", "t": "12"}, "hour": {"r": "5"}}``."""
    members: dict[str, dict[str, str]] = {}
    for member in value.split(","):
        name, *params = (part.strip() for part in member.split(";"))
        name = name.strip('"')
        if not name:
            continue
        members[name] = dict(p.partition("=")[::2] for p in params if "=" in p)
    return members


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def parse_rate_limit(value: str) -> dict[str, tuple[int, float]]:
    """The ``RateLimit`` header as ``{window: (remaining, seconds_to_reset)}``; unreadable members are skipped."""
    parsed = {}
    for name, params in _members(value).items():
        remaining, reset = _number(params.get("r")), _number(params.get("t"))
        if remaining is not None and reset is not None:
            parsed[name] = (int(remaining), max(0.0, reset))
    return parsed


def parse_rate_limit_policy(value: str) -> dict[str, tuple[int, float]]:
    """The ``RateLimit-Policy`` header as ``{window: (quota, window_seconds)}``."""
    parsed = {}
    for name, params in _members(value).items():
        quota, length = _number(params.get("q")), _number(params.get("w"))
        if quota is not None and length is not None:
            parsed[name] = (int(quota), length)
    return parsed


class RateBudget:
    """Requests left per window for one API key: :meth:`acquire` before each request, :meth:`settle` after it.

    A reply counts only the requests the server had seen when it answered, so requests still in flight are
    taken off what it reports; the count kept is never higher than the server's, nor than our own.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._windows: dict[str, Window] = {}
        self._blocked_until = 0.0
        self._in_flight = 0
        self.waited = 0.0
        """Seconds callers spent waiting for a window to reset (for tests and logs)."""

    def acquire(self) -> None:
        """Take one request from every window, first waiting for any window that has none left to reset."""
        while True:
            with self._lock:
                wait = self._wait_needed(self._clock())
                if wait <= 0:
                    for window in self._windows.values():
                        window.remaining -= 1
                    self._in_flight += 1
                    return
            log.debug("RunPod rate budget spent; waiting %.1fs for the window to reset", wait)
            self.waited += wait
            self._sleep(min(wait, MAX_WAIT))

    def _wait_needed(self, now: float) -> float:
        wait = self._blocked_until - now
        for window in self._windows.values():
            if window.resets_at <= now:
                if window.quota is None or window.length is None:
                    window.remaining = max(window.remaining, 1)  # unknown quota: one probe re-reads the headers
                    window.resets_at = now + 1.0
                else:
                    window.remaining, window.resets_at = window.quota, now + window.length
            if window.remaining <= 0:
                wait = max(wait, window.resets_at - now)
        return wait

    def settle(self, headers: Mapping[str, str] | None) -> None:
        """One acquired request ended: with a reply's headers, take its word on quotas and what is left."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            if headers is not None:
                self._observe(headers, others=self._in_flight)

    def _observe(self, headers: Mapping[str, str], *, others: int) -> None:
        lowered = {k.lower(): v for k, v in headers.items()}
        state = parse_rate_limit(lowered.get("ratelimit", ""))
        policy = parse_rate_limit_policy(lowered.get("ratelimit-policy", ""))
        if state or policy:
            now = self._clock()
            for name, (quota, length) in policy.items():
                window = self._windows.setdefault(name, Window(remaining=quota, resets_at=now + length))
                window.quota, window.length = quota, length
            for name, (remaining, reset) in state.items():
                seen = remaining - others  # requests still in flight may not be counted in this reply yet
                known = self._windows.get(name)
                if known is None:
                    self._windows[name] = Window(remaining=seen, resets_at=now + reset)
                    continue
                current = known.remaining if known.resets_at > now else seen
                known.remaining, known.resets_at = min(current, seen), now + reset

    def pause(self, seconds: float) -> None:
        """A 429's ``Retry-After``: every caller on this key waits that long."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + min(seconds, MAX_WAIT))

    def remaining(self, window: str) -> int | None:
        """Requests left in ``window`` (``minute``, ``hour``, ``day``) as last counted; ``None`` before any reply."""
        with self._lock:
            found = self._windows.get(window)
            return found.remaining if found else None


_BUDGETS: dict[str, RateBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def shared_budget(api_key: str, base_url: str) -> RateBudget:
    """The one budget of ``api_key`` on ``base_url`` in this process (keyed by a digest, never the key)."""
    digest = hashlib.sha256(f"{base_url}\n{api_key}".encode()).hexdigest()
    with _BUDGETS_LOCK:
        return _BUDGETS.setdefault(digest, RateBudget())


__all__ = ["RateBudget", "Window", "parse_rate_limit", "parse_rate_limit_policy", "shared_budget"]
