"""Small helpers shared by resource plans (no I/O)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .._exceptions import ConfigError, NotFound
from .._ops import ApiResult, Call
from .._transfer import encode_path, read_chunk, sha256_file

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def require_id(value: Any, name: str) -> str:
    """``value`` as a canonical UUID string, or a :class:`ConfigError` that names the argument."""
    text = getattr(value, "id", value)
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"expected a non-empty {name}, got {value!r}", argument=name)
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise ConfigError(f"{name} must be a UUID, got {text!r}", argument=name) from None


def table(name: str, build: Callable[[Any], Any], *, what: str | None = None, idempotent: bool = True) -> Call:
    """A PostgREST call on table ``name``: ``build`` receives ``client.table(name)``."""
    return Call(fn=lambda client: build(client.table(name)), what=what or name, idempotent=idempotent)


def rpc(name: str, params: Mapping[str, Any], *, idempotent: bool = True) -> Call:
    return Call(fn=lambda client: client.rpc(name, dict(params)), what=f"rpc {name}", idempotent=idempotent)


def rows(result: ApiResult) -> list[dict[str, Any]]:
    data = result.data
    return list(data) if isinstance(data, list) else ([data] if isinstance(data, dict) else [])


def one(result: ApiResult, what: str, resource_id: str) -> dict[str, Any]:
    """The single row of a result, or :class:`NotFound` (absent, or invisible to this role under RLS)."""
    found = rows(result)
    if not found:
        raise NotFound(
            f"{what} {resource_id} not found (or not visible to this role)",
            status=404,
            resource=f"{what} {resource_id}",
        )
    return found[0]


def safe_file_name(path: Path) -> str:
    """A Storage-safe object name segment from a local file name (ASCII, no separators, no dot-only names)."""
    name = path.name
    if "\x00" in name or name in ("", ".", ".."):
        raise ConfigError(f"{path!s} is not a usable file name", argument="path")
    cleaned = _SAFE_NAME.sub("_", name).strip("._") or "data"
    return cleaned[:200]


__all__ = ["encode_path", "one", "read_chunk", "require_id", "rows", "rpc", "safe_file_name", "sha256_file", "table"]
