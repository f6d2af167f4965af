"""Finishing reporters when the process ends: at interpreter exit and on SIGTERM (what RunPod and Docker send
before SIGKILL, typically 10 s later).

One ``atexit`` hook and at most one SIGTERM handler per process, whatever the number of reporters. The SIGTERM
handler is installed only from the main thread (Python's rule) and chains to the handler it replaced, or, if
that was the default action, ends the process with SIGTERM as it would have been.
"""

from __future__ import annotations

import atexit
import os
import signal
import threading
from types import FrameType
from typing import Any, Protocol

ATEXIT_TIMEOUT = 30.0
"""Seconds a reporter may spend sending at interpreter exit; the rest stays in its spool."""
SIGTERM_TIMEOUT = 7.0
"""Seconds reporters may spend after SIGTERM, leaving time before the container's SIGKILL."""


class Finishable(Protocol):
    def finish(self, timeout: float = ...) -> Any: ...


_live: set[Finishable] = set()  # strong: a reporter nobody holds any more must still be finished
_lock = threading.Lock()
_atexit_installed = False
_sigterm_installed = False
_previous_sigterm: Any = None


def register(reporter: Finishable, *, handle_sigterm: bool = True) -> None:
    """Finish ``reporter`` at exit (and on SIGTERM when ``handle_sigterm``) unless it finished before."""
    global _atexit_installed
    with _lock:
        _live.add(reporter)
        if not _atexit_installed:
            atexit.register(finish_all, ATEXIT_TIMEOUT)
            _atexit_installed = True
    if handle_sigterm:
        _install_sigterm()


def unregister(reporter: Finishable) -> None:
    with _lock:
        _live.discard(reporter)


def finish_all(timeout: float) -> None:
    """Finish every live reporter, never raising (called from atexit and the signal handler)."""
    with _lock:
        reporters = list(_live)
    for reporter in reporters:
        try:
            reporter.finish(timeout=timeout)
        except Exception:  # noqa: S112 - exiting; the reporter already logged what went wrong
            continue


def _install_sigterm() -> None:
    global _sigterm_installed, _previous_sigterm
    if threading.current_thread() is not threading.main_thread():
        return
    with _lock:
        if _sigterm_installed:
            return
        try:
            _previous_sigterm = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not the main interpreter, or signals unavailable
            return
        _sigterm_installed = True


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    finish_all(SIGTERM_TIMEOUT)
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


__all__ = ["ATEXIT_TIMEOUT", "SIGTERM_TIMEOUT", "finish_all", "register", "unregister"]
