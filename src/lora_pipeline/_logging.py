"""The package logger and the filter that keeps secrets out of every record.

One logger, ``logging.getLogger("lora_pipeline")``. ``LORA_PIPELINE_LOG=debug|info|warning`` switches on a
stderr handler. Every record that passes through a ``lora_pipeline`` logger (or a handler that carries
:class:`RedactingFilter`) is scrubbed of:

- values registered with :func:`register_secret` (service key, anon key, job tokens, access tokens);
- anything that looks like a JWT, an ``Authorization``/``apikey`` header value, a ``token=`` query value
  (Storage signed URLs, download tokens) or a ``LORA_JOB_TOKEN=`` assignment.

Redaction happens in the filter, so a secret that reaches a message through ``%s`` arguments, an exception
text or ``extra`` is replaced as well.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable

LOGGER_NAME = "lora_pipeline"
REDACTED = "<redacted>"

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")
_HEADER_VALUE = re.compile(
    r"(?i)((?:authorization|apikey|x-lora-job-token|x-lora-download-grant)['\"]?\s*[:=]\s*['\"]?)"
    r"(?:bearer\s+)?[^\s'\",}]+"
)
_QUERY_TOKEN = re.compile(r"(?i)([?&](?:token|apikey|api_key)=)[^&\s'\"]+")
_ENV_SECRET = re.compile(
    r"(?i)((?:LORA_JOB_TOKEN|SUPABASE_SERVICE_ROLE_KEY|SUPABASE_SERVICE_KEY|RUNPOD_API_KEY|SUPABASE_ANON_KEY)"
    r"['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"
)
_OPAQUE_KEY = re.compile(r"sb_(?:secret|publishable)_[A-Za-z0-9_-]{8,}")

_secrets: set[str] = set()
_secrets_lock = threading.Lock()


def register_secret(value: str | None) -> None:
    """Remember a secret value so that it is replaced in every log record from now on."""
    if value and len(value) >= 8:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with every known secret and secret-shaped value replaced by ``<redacted>``."""
    with _secrets_lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in [*known, *extra_secrets]:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    text = _JWT.sub(REDACTED, text)
    text = _OPAQUE_KEY.sub(REDACTED, text)
    text = _HEADER_VALUE.sub(rf"\1{REDACTED}", text)
    text = _QUERY_TOKEN.sub(rf"\1{REDACTED}", text)
    return _ENV_SECRET.sub(rf"\1{REDACTED}", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (arguments merged in) and exception text with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            formatter = logging.Formatter()
            record.exc_text = redact(formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


logger = logging.getLogger(LOGGER_NAME)
_FILTER = RedactingFilter()
logger.addFilter(_FILTER)


def get_logger(name: str | None = None) -> logging.Logger:
    """A child of the package logger that carries the redaction filter itself.

    Filters on a parent logger do not run for records created on a child, so each child gets its own.
    """
    child = logger if not name else logging.getLogger(f"{LOGGER_NAME}.{name}")
    if _FILTER not in child.filters:
        child.addFilter(_FILTER)
    return child


def setup_from_env() -> None:
    """Attach a stderr handler at the level named by ``LORA_PIPELINE_LOG`` (debug, info, warning)."""
    level_name = os.environ.get("LORA_PIPELINE_LOG", "").strip().upper()
    if not level_name or any(getattr(h, "_lora_pipeline", False) for h in logger.handlers):
        return
    level = getattr(logging, level_name, None)
    if not isinstance(level, int):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_FILTER)
    handler._lora_pipeline = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)


__all__ = ["LOGGER_NAME", "REDACTED", "RedactingFilter", "get_logger", "logger", "redact", "register_secret"]
