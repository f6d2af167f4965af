"""Test support: the pytest plugin (stack fixtures), the fake RunPod server and a fault-injecting TCP proxy.

- :class:`TcpProxy` (:mod:`.tcp_proxy`): delay, drop, reset or black-hole the connections between a client and
  a server on loopback, switchable while the client runs.

Names load on first use: the pytest plugin imports this package in every test run, so it stays import-free.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS = {"ProxyMode": ".tcp_proxy", "ProxyStats": ".tcp_proxy", "TcpProxy": ".tcp_proxy"}

__all__ = ["ProxyMode", "ProxyStats", "TcpProxy"]


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
    from .tcp_proxy import ProxyMode, ProxyStats, TcpProxy
