"""The dataset formats lora-pipeline accepts, and how each becomes a conversation for training.

One definition shared by the validator (what a valid line looks like) and the trainer (what it trains on),
following the formats axolotl and TRL accept (research/tracking.md §3.3):

========================  ==========================================================
format                    one JSONL line
========================  ==========================================================
``chat``                  ``{"messages": [{"role": "user", "content": "..."}, ...]}``
``sharegpt``              ``{"conversations": [{"from": "human", "value": "..."}, ...]}``
``alpaca``                ``{"instruction": "...", "input": "...", "output": "..."}``
``prompt_completion``     ``{"prompt": "...", "completion": "..."}``
``text``                  ``{"text": "..."}``
========================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._compat import StrEnum


class DatasetFormat(StrEnum):
    """A supported dataset layout (the ``datasets.format`` column)."""

    CHAT = "chat"
    SHAREGPT = "sharegpt"
    ALPACA = "alpaca"
    PROMPT_COMPLETION = "prompt_completion"
    TEXT = "text"


ROLES = frozenset({"system", "user", "assistant", "tool"})
"""Roles a chat message may have after alias mapping."""

ROLE_ALIASES: dict[str, str] = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "chatgpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
    "observation": "tool",
}
"""ShareGPT-style role names and what they mean."""

KEY_FIELDS: dict[DatasetFormat, tuple[str, ...]] = {
    DatasetFormat.CHAT: ("messages",),
    DatasetFormat.SHAREGPT: ("conversations",),
    DatasetFormat.ALPACA: ("instruction", "output"),
    DatasetFormat.PROMPT_COMPLETION: ("prompt", "completion"),
    DatasetFormat.TEXT: ("text",),
}
"""The keys whose presence identifies each format."""

ALLOWED_KEYS: dict[DatasetFormat, frozenset[str]] = {
    DatasetFormat.CHAT: frozenset({"messages", "id", "metadata"}),
    DatasetFormat.SHAREGPT: frozenset({"conversations", "id", "metadata", "system"}),
    DatasetFormat.ALPACA: frozenset({"instruction", "input", "output", "system", "id", "metadata"}),
    DatasetFormat.PROMPT_COMPLETION: frozenset({"prompt", "completion", "id", "metadata"}),
    DatasetFormat.TEXT: frozenset({"text", "id", "metadata"}),
}
"""Keys the trainer understands; others are reported as unrecognized and ignored."""

PREFERENCE_KEYS = frozenset({"chosen", "rejected"})
"""Preference (DPO) data is out of scope for SFT; detected to give a clear error."""


def detect_format(record: Mapping[str, Any]) -> DatasetFormat | None:
    """The format whose key fields ``record`` has, or ``None``."""
    for fmt, keys in KEY_FIELDS.items():
        if all(k in record for k in keys):
            return fmt
    return None


def normalize_role(role: str) -> str | None:
    """The canonical role for a role or alias (case-insensitive); ``None`` when unknown."""
    return ROLE_ALIASES.get(role.strip().lower()) if isinstance(role, str) else None


def to_messages(record: Mapping[str, Any], fmt: DatasetFormat | str) -> list[dict[str, str]]:
    """The conversation a valid record stands for, as ``[{"role", "content"}, ...]``.

    ``text`` records become one assistant message: the whole text is trained on.
    """
    fmt = DatasetFormat(fmt)
    if fmt is DatasetFormat.CHAT:
        return [
            {"role": normalize_role(m["role"]) or m["role"], "content": _text(m.get("content"))}
            for m in record["messages"]
        ]
    if fmt is DatasetFormat.SHAREGPT:
        system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        turns = [
            {"role": normalize_role(t["from"]) or t["from"], "content": _text(t.get("value"))}
            for t in record["conversations"]
        ]
        return system + turns
    if fmt is DatasetFormat.ALPACA:
        prompt = record["instruction"] + (f"\n\n{record['input']}" if record.get("input") else "")
        system = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        return [*system, {"role": "user", "content": prompt}, {"role": "assistant", "content": record["output"]}]
    if fmt is DatasetFormat.PROMPT_COMPLETION:
        return [
            {"role": "user", "content": _text(record["prompt"])},
            {"role": "assistant", "content": _text(record["completion"])},
        ]
    return [{"role": "assistant", "content": record["text"]}]


def _text(content: Any) -> str:
    """Message content as text: strings as they are, typed-part lists joined, messages lists flattened."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping):
                parts.append(str(part.get("text") or part.get("content") or ""))
            else:
                parts.append(str(part))
        return "".join(parts)
    return "" if content is None else str(content)


__all__ = [
    "ALLOWED_KEYS",
    "KEY_FIELDS",
    "PREFERENCE_KEYS",
    "ROLES",
    "ROLE_ALIASES",
    "DatasetFormat",
    "detect_format",
    "normalize_role",
    "to_messages",
]
