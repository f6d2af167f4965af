"""The pod side of lora-pipeline: what runs inside a training pod with the anon key and one job token.

Light on purpose: importing this package imports neither supabase, pydantic, torch nor transformers, so a cold
pod starts fast. Names load on first use.

- :class:`MetricsReporter`: report metrics without blocking or raising into training (spooled, batched).
- :class:`PodClient`: the job-token RPCs (ingest metrics, heartbeat, status, events, job, artifact).
- :func:`sync_spool`: upload what a reporter left in its spool (``lora-pipeline metrics sync``).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "MetricsReporter": ".reporter",
    "ReporterStats": ".reporter",
    "PodClient": ".client",
    "SendPolicy": "._delivery",
    "SyncResult": ".sync",
    "sync_spool": ".sync",
}

__all__ = ["MetricsReporter", "PodClient", "ReporterStats", "SendPolicy", "SyncResult", "sync_spool"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:
    from ._delivery import SendPolicy
    from .client import PodClient
    from .reporter import MetricsReporter, ReporterStats
    from .sync import SyncResult, sync_spool
