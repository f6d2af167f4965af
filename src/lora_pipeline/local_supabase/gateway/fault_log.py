"""Logging a server fault without letting one request write a quarter of a megabyte to gateway.log.

A fault is a bug on our side (client mistakes are answered with 4xx and not logged as faults), but a
client that finds one can repeat it: each record keeps the innermost frames only and is capped in size,
so log volume grows with requests, never with how deep the input made the stack.
"""

from __future__ import annotations

import logging
import traceback

MAX_FRAMES = 12
MAX_CHARS = 8000


def describe_fault(error: BaseException) -> str:
    """The exception and its innermost :data:`MAX_FRAMES` frames, at most :data:`MAX_CHARS` characters."""
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__, limit=-MAX_FRAMES))
    if len(text) > MAX_CHARS:
        text = text[: MAX_CHARS // 2] + "\n  [... trimmed ...]\n" + text[-MAX_CHARS // 2 :]
    return text.rstrip()


def log_fault(logger: logging.Logger, error: BaseException, message: str, *args: object) -> None:
    """``logger.error(message % args)`` followed by :func:`describe_fault` (never ``exc_info``: unbounded)."""
    logger.error(message + "\n%s", *args, describe_fault(error))


__all__ = ["MAX_CHARS", "MAX_FRAMES", "describe_fault", "log_fault"]
