"""Import the runpod SDK without letting it reconfigure the application's logging.

``import runpod`` adds a stderr handler to the ROOT logger and sets it to INFO, which makes every library's
INFO records print in any process that merely uses the RunPod backend. We restore the root logger after the
import; the SDK's own loggers keep working through propagation like any other library's.
"""

from __future__ import annotations

import importlib
import logging
import threading
from types import ModuleType

_lock = threading.Lock()


def import_runpod(module: str = "runpod") -> ModuleType:
    """``importlib.import_module(module)`` with the root logger's handlers and level put back afterwards."""
    with _lock:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        try:
            return importlib.import_module(module)
        finally:
            root.handlers[:] = handlers
            root.setLevel(level)


__all__ = ["import_runpod"]
