"""The I/O requests a resource's logic yields (sans-IO). Executors perform them; logic never does I/O itself.

How sync and async twins share one source of logic (CONVENTIONS "Shape"):

- A resource operation is written ONCE, as a generator method that yields :class:`Call`, :class:`Http`,
  :class:`Sleep` or :class:`Now` and receives each result back (``row = yield Call(...)``). Building queries,
  choosing keys, validating input and shaping results all happen in that generator, with no I/O.
- :class:`~lora_pipeline._executor.SyncExecutor` and :class:`~lora_pipeline._executor.AsyncExecutor` drive the
  generator: they perform each op with the sync or async supabase client / httpx client, map failures to the
  error tree (which is thrown back into the generator, so logic may catch it), and retry idempotent ops.
- The public ``Async*`` resource classes are generated from the sync ones by ``scripts/generate_async.py``;
  CI runs it with ``--check`` so the twins cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from ._roles import Role

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """Run ``fn(client)`` against the supabase client of ``role`` (default: the root client's role).

    ``fn`` may return a PostgREST request builder (its ``execute()`` is called for you and the response's
    ``data``/``count`` come back as an :class:`ApiResult`), a plain value, or (async client) an awaitable.
    """

    fn: Callable[[Any], Any]
    what: str
    idempotent: bool = True
    role: Role | None = None


@dataclass(frozen=True)
class Http:
    """One HTTP request to the project (paths are relative to the project URL) or to an absolute URL."""

    method: str
    path: str
    what: str
    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] | None = None
    content: bytes | None = None
    json: Any = None
    idempotent: bool = True
    service: str = "http"
    role: Role | None = None
    authenticate: bool = True
    dest: Path | None = None
    dest_offset: int = 0
    on_chunk: Callable[[int], None] | None = None


@dataclass(frozen=True)
class Sleep:
    """Wait; executors use an injectable sleep so tests need not."""

    seconds: float


@dataclass(frozen=True)
class Now:
    """Read the executor's monotonic clock (injectable together with the sleep)."""


@dataclass(frozen=True)
class Offload:
    """Run blocking local work (hashing, validating, reading file chunks, a backend's SDK call).

    The sync executor calls ``fn(*args, **kwargs)`` directly; the async executor runs it in a worker thread
    so the event loop never blocks. Exceptions propagate into the plan unchanged.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiResult:
    """What a PostgREST call returned."""

    data: Any
    count: int | None = None


@dataclass(frozen=True)
class HttpResult:
    """What an :class:`Http` op returned (bodies streamed to ``dest`` are not kept in memory)."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    written: int = 0

    def json(self) -> Any:
        import json

        return json.loads(self.body) if self.body else None


Op = Call | Http | Sleep | Now | Offload
Plan = Generator[Op, Any, T]

__all__ = ["ApiResult", "Call", "Http", "HttpResult", "Now", "Offload", "Op", "Plan", "Sleep"]
