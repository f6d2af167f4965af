"""Scripted faults: per-operation FIFO queues of outcomes, and the replies they produce (research §4.4).

An outcome is written as a string, ``"capacity_error"`` or with a number, ``"delay(1.5)"`` /
``"http_429_text(7)"`` (the ``Retry-After`` seconds), or as a :class:`Fault`. Each request for an operation
(the first root field, e.g. ``podFindAndDeployOnDemand``) takes the next outcome from that operation's queue;
an empty queue means normal behaviour.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from .state import CAPACITY_MESSAGE

KINDS = frozenset(
    {
        "ok",
        "capacity_error",
        "capacity_null",
        "insufficient_balance",
        "forbidden",
        "internal_error",
        "http_429_json",
        "http_429_text",
        "http_500_html",
        "cloudflare_1010",
        "http_401",
        "malformed_json",
        "delay",
        "drop_connection",
        "drop_connection_after",
    }
)
"""``drop_connection`` closes the socket before the request runs; ``drop_connection_after`` runs it (a
create really happens) and then closes the socket, so the caller never learns the outcome. ``forbidden`` is
REST v2's 403 for a pool the account may not use (GraphQL operations answer it as normal behaviour)."""

_SPEC = re.compile(r"^(?P<kind>[a-z0-9_]+)(?:\((?P<seconds>[0-9.]+)\))?$")


@dataclass(frozen=True)
class Fault:
    """One scripted outcome. ``seconds`` is the delay, or the ``Retry-After`` of ``http_429_text``."""

    kind: str
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; choose from {', '.join(sorted(KINDS))}")


def parse_fault(spec: str | Fault) -> Fault:
    """``"delay(2)"`` → ``Fault("delay", 2.0)``."""
    if isinstance(spec, Fault):
        return spec
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"cannot read fault {spec!r}; write e.g. 'capacity_error' or 'delay(1.5)'")
    default = 2.0 if match["kind"] == "http_429_text" else 0.0
    return Fault(match["kind"], float(match["seconds"]) if match["seconds"] else default)


@dataclass
class Reply:
    """An HTTP reply the gateway writes back."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, status: int, payload: object, headers: dict[str, str] | None = None) -> Reply:
        body = json.dumps(payload).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/plain", **headers: str) -> Reply:
        return cls(status, text.encode(), {"Content-Type": content_type, **headers})


def graphql_error(message: str, code: str, operation: str | None = None) -> dict[str, object]:
    """A GraphQL ``errors`` body; with an operation, ``data`` carries its null result as RunPod's does."""
    error = {"message": message, "extensions": {"code": code}, **({"path": [operation]} if operation else {})}
    return {"data": {operation: None} if operation else None, "errors": [error]}


def fault_reply(fault: Fault, operation: str) -> Reply | None:
    """The canned reply of a fault, or ``None`` when the request should run (ok, delay, drops)."""
    builders = {
        "capacity_error": lambda: Reply.json(200, graphql_error(CAPACITY_MESSAGE, "SUPPLY_CONSTRAINT", operation)),
        "capacity_null": lambda: Reply.json(200, {"data": {operation: None}}),
        "insufficient_balance": lambda: Reply.json(
            200,
            graphql_error(
                "INSUFFICIENT_BALANCE: Renting this pod would put you over your current spending limit ($80.00/hr)",
                "INSUFFICIENT_BALANCE",
                operation,
            ),
        ),
        "internal_error": lambda: Reply.json(
            200,
            graphql_error(
                "Something went wrong. Please try again later or contact support.", "INTERNAL_SERVER_ERROR", operation
            ),
        ),
        "http_429_json": lambda: Reply.json(
            429,
            graphql_error("Too many requests, slow down", "RATE_LIMITED"),
            {"RateLimit": "limit=60, remaining=0, reset=2"},
        ),
        "http_429_text": lambda: Reply.text(429, "Too Many Requests", **{"Retry-After": f"{fault.seconds:g}"}),
        "http_500_html": lambda: Reply.text(500, _HTML_500, "text/html"),
        "cloudflare_1010": lambda: Reply.text(403, "error code: 1010"),
        "http_401": lambda: Reply.json(401, graphql_error("Unauthorized", "UNAUTHENTICATED")),
        "malformed_json": lambda: Reply(200, b'{"data": {"' + operation.encode(), {"Content-Type": "application/json"}),
    }
    builder = builders.get(fault.kind)
    return builder() if builder else None


_HTML_500 = (
    "<html><head><title>500 Internal Server Error</title></head><body><h1>Internal Server Error</h1></body></html>"
)


class FaultScript:
    """Thread-safe per-operation queues of scripted outcomes."""

    def __init__(self) -> None:
        self._queues: defaultdict[str, deque[Fault]] = defaultdict(deque)
        self._lock = threading.Lock()

    def add(self, operation: str, outcomes: Iterable[str | Fault]) -> None:
        parsed = [parse_fault(outcome) for outcome in outcomes]
        with self._lock:
            self._queues[operation].extend(parsed)

    def take(self, operation: str | None) -> Fault | None:
        with self._lock:
            queue = self._queues.get(operation or "")
            return queue.popleft() if queue else None

    def pending(self, operation: str) -> int:
        with self._lock:
            return len(self._queues.get(operation, ()))

    def clear(self) -> None:
        with self._lock:
            self._queues.clear()


__all__ = ["KINDS", "Fault", "FaultScript", "Reply", "fault_reply", "graphql_error", "parse_fault"]
