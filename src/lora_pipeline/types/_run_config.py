"""A run's configuration as JSON the database can store: converted where a faithful conversion exists,
dropped with a warning where not, never an exception into training, never a secret."""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import PurePath
from typing import Any

from .._logging import REDACTED, get_logger, redact

log = get_logger("runs.config")

_SECRET_KEY = re.compile(r"(^|_)(token|secret|password|passwd|api_?key|credentials?|auth)$", re.IGNORECASE)
"""Names that hold credentials (``hub_token``, ``api_key``, ``wandb_secret``); their values are never stored."""
_MAX_DEPTH = 8


class _Dropped:
    """Marker for a value that has no JSON form."""


_DROPPED = _Dropped()


def json_config(config: Any, *, what: str = "config") -> dict[str, Any]:
    """``config`` (a mapping, a dataclass, a pydantic model or anything with ``to_dict()``) as a JSON object.

    Keys become strings; paths, enums, dates, sets, tuples, numpy/torch scalars are converted; NaN and
    infinities become ``"NaN"``/``"Infinity"`` strings; values named like credentials are left out; anything
    else is dropped with one warning listing what was dropped.
    """
    dropped: list[str] = []
    top = _as_mapping(config)
    if top is None:
        log.warning("%s is a %s, not a mapping: nothing recorded", what, type(config).__name__)
        return {}
    result = _convert(top, what, dropped, 0)
    if dropped:
        log.warning("%s: left out values with no JSON form: %s", what, ", ".join(dropped[:20]))
    return result if isinstance(result, dict) else {}


def _as_mapping(value: Any) -> Mapping[str, Any] | None:
    if isinstance(value, Mapping):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    for method in ("model_dump", "to_dict"):
        convert = getattr(value, method, None)
        if callable(convert):
            try:
                converted = convert()
            except Exception:  # a broken to_dict must not break training
                return None
            return converted if isinstance(converted, Mapping) else None
    return None


def _convert(value: Any, path: str, dropped: list[str], depth: int) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return redact(value) if isinstance(value, str) else value
    if isinstance(value, float):
        return (
            value
            if math.isfinite(value)
            else ("NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity"))
        )
    if isinstance(value, enum.Enum):
        return _convert(value.value, path, dropped, depth)
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0:  # numpy / torch scalars
        try:
            scalar = item()
        except Exception:  # not a scalar after all: treated as an unknown object below
            scalar = _DROPPED
        if scalar is not _DROPPED:
            return _convert(scalar, path, dropped, depth)
    if depth >= _MAX_DEPTH:
        dropped.append(f"{path} (nested too deep)")
        return _DROPPED
    mapping = value if isinstance(value, Mapping) else None
    if mapping is None and not isinstance(value, type):
        mapping = _as_mapping(value) if dataclasses.is_dataclass(value) else None
    if mapping is not None:
        out: dict[str, Any] = {}
        for key, inner in mapping.items():
            name = str(key.value if isinstance(key, enum.Enum) else key)
            if _SECRET_KEY.search(name):
                if inner not in (None, ""):
                    out[name] = REDACTED
                continue
            converted = _convert(inner, f"{path}.{name}", dropped, depth + 1)
            if converted is not _DROPPED:
                out[name] = converted
        return out
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        converted_items = [_convert(v, f"{path}[{i}]", dropped, depth + 1) for i, v in enumerate(items)]
        return [v for v in converted_items if v is not _DROPPED]
    dropped.append(f"{path} ({type(value).__name__})")
    return _DROPPED


__all__ = ["json_config"]
