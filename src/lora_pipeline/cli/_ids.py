"""Short ids: the 8-character prefix progress output shows (``job 99fb19b2``) works wherever an id does.

A prefix is resolved with a range query (``id >= prefix000... and id <= prefixfff...``), which Postgres
answers from the primary key for uuid columns, and which row-level security scopes to what the caller sees.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError, NotFound
from .._ops import Plan
from ..resources._common import rows, table

if TYPE_CHECKING:
    from .._client import LoraPipeline

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PREFIX = re.compile(r"[0-9a-f-]{1,36}")
_TEMPLATE = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
MIN_PREFIX = 4

TABLES = {
    "job": "training_jobs",
    "dataset": "datasets",
    "artifact": "model_artifacts",
    "baseline": "model_baselines",
}


def prefix_bounds(prefix: str) -> tuple[str, str]:
    """The lowest and highest UUIDs that start with ``prefix`` (hyphens optional in the prefix)."""
    digits = prefix.replace("-", "")
    low, high, taken = [], [], 0
    for slot in _TEMPLATE:
        if slot == "-":
            low.append("-")
            high.append("-")
        elif taken < len(digits):
            low.append(digits[taken])
            high.append(digits[taken])
            taken += 1
        else:
            low.append("0")
            high.append("f")
    return "".join(low), "".join(high)


def _matching(name: str, low: str, high: str) -> Plan[list[str]]:
    result = yield table(name, lambda t: t.select("id").gte("id", low).lte("id", high).order("id").limit(2))
    return [str(row["id"]) for row in rows(result)]


def resolve_id(lp: LoraPipeline, kind: str, text: str) -> str:
    """The full id of the ``kind`` (job, dataset, artifact, baseline) that ``text`` is or starts.

    Raises:
        ConfigError: ``text`` is not hex, is too short, or matches more than one row.
        NotFound: nothing visible to this role starts with it.
    """
    value = text.strip().lower()
    if _UUID.fullmatch(value):
        return value
    digits = value.replace("-", "")
    if not _PREFIX.fullmatch(value) or len(digits) > 32:
        raise ConfigError(f"{kind} id {text!r} is not a UUID or the start of one (hex digits 0-9, a-f)")
    if len(digits) < MIN_PREFIX:
        raise ConfigError(f"{kind} id prefix {text!r} is too short: give at least {MIN_PREFIX} characters")
    low, high = prefix_bounds(value)
    found = _run(lp, _matching(TABLES[kind], low, high))
    if not found:
        raise NotFound(f"no {kind} id starts with {text!r} (or it is not visible to this role)", status=404)
    if len(found) > 1:
        raise ConfigError(
            f"{kind} id prefix {text!r} is ambiguous: it matches {found[0]}, {found[1]}, ...; give more characters"
        )
    return str(found[0])


def _run(lp: LoraPipeline, plan: Plan[Any]) -> Any:
    return lp._executor.run(plan)


__all__ = ["MIN_PREFIX", "TABLES", "prefix_bounds", "resolve_id"]
