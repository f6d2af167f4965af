"""What a valid record of each format looks like, checked field by field with a JSON path per finding.

The rules follow what the trainer (``formats.to_messages``) and the chat templates it feeds will accept
(research/tracking.md §3.3): roles known after alias mapping, at least one non-empty assistant turn, a system
message only first, alternating turns. Each checker also returns the example's estimated token count, since it
already walks every string (walking them twice would double the validator's per-record cost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lora_pipeline.datasets._findings import FindingCode, FindingCollector, Severity
from lora_pipeline.datasets._tokens import text_weight, weight_to_tokens
from lora_pipeline.datasets.formats import ALLOWED_KEYS, ROLE_ALIASES, DatasetFormat, normalize_role

MISSING: Any = object()
JSON_KINDS: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    dict: "object",
    list: "array",
    type(None): "null",
}
_TOOL_CALL_KEYS = ("tool_calls", "function_call")
_ALTERNATING = frozenset({"user", "assistant"})


def json_kind(value: Any) -> str:
    """The JSON type name of a parsed value (int and float are both ``number``, as in pyarrow's inference)."""
    return JSON_KINDS.get(type(value), type(value).__name__)


@dataclass(slots=True)
class RecordContext:
    """Where the current record is, so checks can report findings without passing line and offset around."""

    collector: FindingCollector
    line: int = 0
    offset: int = 0

    def emit(
        self,
        code: FindingCode,
        path: str,
        message: str,
        value: Any = None,
        *,
        hint: str | None = None,
        severity: Severity | None = None,
    ) -> None:
        """Report a finding about the current record at ``path``."""
        self.collector.add(
            code, message, line=self.line, offset=self.offset, path=path, value=value, hint=hint, severity=severity
        )


@dataclass(frozen=True, slots=True)
class TurnLayout:
    """Where a conversational format keeps its turns, and each turn's role and content."""

    field: str
    role: str
    content: str
    keys: frozenset[str]


CHAT_TURNS = TurnLayout(
    "messages",
    "role",
    "content",
    frozenset({"role", "content", "name", "tool_calls", "tool_call_id", "function_call", "weight"}),
)
SHAREGPT_TURNS = TurnLayout("conversations", "from", "value", frozenset({"from", "value", "weight"}))


def check_record(record: dict[str, Any], fmt: DatasetFormat, ctx: RecordContext) -> int:
    """Report what is wrong with ``record`` as an example of ``fmt``; return its estimated token count."""
    allowed = ALLOWED_KEYS[fmt]
    if not record.keys() <= allowed:
        _report_unrecognized_keys(record, allowed, "", ctx)
    return _CHECKS[fmt](record, ctx)


def _report_unrecognized_keys(
    mapping: dict[str, Any], allowed: frozenset[str], prefix: str, ctx: RecordContext
) -> None:
    known = ", ".join(sorted(allowed))
    for key in sorted(mapping.keys() - allowed):
        message = f"unrecognized key {{value}} (known: {known})"
        ctx.emit(FindingCode.UNRECOGNIZED_KEY, f"{prefix}{key[:80]}", message, key)


def _wrong_type(path: str, expected: str, value: Any, ctx: RecordContext) -> None:
    ctx.emit(FindingCode.WRONG_TYPE, path, f"expected {expected}, got {json_kind(value)}: {{value}}", value)


def _is_blank(text: str) -> bool:
    return not text or text.isspace()  # isspace stops at the first non-space: O(1) for real text


# --- conversational formats -------------------------------------------------------------------------------


def _check_chat(record: dict[str, Any], ctx: RecordContext) -> int:
    return _check_turns(record, CHAT_TURNS, ctx)


def _check_sharegpt(record: dict[str, Any], ctx: RecordContext) -> int:
    weight = _optional_text(record, "system", ctx)
    return _check_turns(record, SHAREGPT_TURNS, ctx) + weight_to_tokens(weight, 0)


def _check_turns(record: dict[str, Any], layout: TurnLayout, ctx: RecordContext) -> int:
    turns = record.get(layout.field, MISSING)
    if turns is MISSING:
        ctx.emit(FindingCode.MISSING_FIELD, layout.field, f"missing {layout.field!r}, a list of turns")
        return 0
    if type(turns) is not list:
        _wrong_type(layout.field, "a list of turns", turns, ctx)
        return 0
    if not turns:
        ctx.emit(FindingCode.EMPTY_FIELD, layout.field, f"{layout.field!r} is an empty list")
        return 0
    roles: list[str | None] = []
    weight = 0
    for index, turn in enumerate(turns):
        role, turn_weight = _check_turn(turn, index, layout, ctx)
        roles.append(role)
        weight += turn_weight
    _check_role_order(roles, layout.field, ctx)
    return weight_to_tokens(weight, len(turns))


def _check_turn(turn: Any, index: int, layout: TurnLayout, ctx: RecordContext) -> tuple[str | None, int]:
    """One turn's role and content; the common case (a known role, non-empty text) makes no further call."""
    if type(turn) is not dict:
        _wrong_type(f"{layout.field}[{index}]", "an object", turn, ctx)
        return None, 0
    raw_role = turn.get(layout.role, MISSING)
    role = ROLE_ALIASES.get(raw_role) if type(raw_role) is str else None
    if role is None:
        role = _unusual_role(raw_role, f"{layout.field}[{index}].{layout.role}", ctx)
    content = turn.get(layout.content, MISSING)
    if type(content) is str and content and not content.isspace():
        weight = len(content) if content.isascii() else text_weight(content)
    else:
        weight = _unusual_content(turn, content, role, f"{layout.field}[{index}].{layout.content}", ctx)
    if not turn.keys() <= layout.keys:
        _report_unrecognized_keys(turn, layout.keys, f"{layout.field}[{index}].", ctx)
    return role, weight


def _unusual_role(raw: Any, path: str, ctx: RecordContext) -> str | None:
    """A role that is not an exact alias: differently cased or spaced (fine), or missing, mistyped, unknown."""
    if raw is MISSING:
        ctx.emit(FindingCode.MISSING_FIELD, path, "the turn has no role")
        return None
    if type(raw) is not str:
        _wrong_type(path, "a string", raw, ctx)
        return None
    role = normalize_role(raw)
    if role is None:
        ctx.emit(FindingCode.UNRECOGNIZED_ROLE, path, "unrecognized role {value}", raw)
    return role


def _unusual_content(turn: dict[str, Any], content: Any, role: str | None, path: str, ctx: RecordContext) -> int:
    """Content that is not a non-empty string: parts lists, tool calls, blanks, wrong types."""
    calls_tools = any(turn.get(key) for key in _TOOL_CALL_KEYS)
    if content is MISSING or content is None:
        if not calls_tools:
            what = "missing" if content is MISSING else "null"
            _report_empty(role, path, f"content is {what}", ctx, missing=content is MISSING)
        return 0
    if type(content) is str:
        if not calls_tools:
            _report_empty(role, path, "content is empty or whitespace", ctx)
        return 0
    if type(content) is not list:
        _wrong_type(path, "a string or a list of parts", content, ctx)
        return 0
    text = _parts_text(content, path, ctx)
    if _is_blank(text) and not calls_tools:
        _report_empty(role, path, "content parts hold no text", ctx)
    return text_weight(text)


def _parts_text(parts: list[Any], path: str, ctx: RecordContext) -> str:
    texts = []
    for index, part in enumerate(parts):
        if type(part) is str:
            texts.append(part)
        elif type(part) is dict:
            text = part.get("text", part.get("content", ""))
            if type(text) is str:
                texts.append(text)
            else:
                _wrong_type(f"{path}[{index}].text", "a string", text, ctx)
        else:
            _wrong_type(f"{path}[{index}]", "a string or a {type, text} object", part, ctx)
    return "".join(texts)


def _report_empty(role: str | None, path: str, message: str, ctx: RecordContext, *, missing: bool = False) -> None:
    if role == "assistant":
        ctx.emit(FindingCode.EMPTY_ASSISTANT_CONTENT, path, f"assistant {message}")
    else:
        ctx.emit(FindingCode.MISSING_FIELD if missing else FindingCode.EMPTY_FIELD, path, message)


def _check_role_order(roles: list[str | None], field: str, ctx: RecordContext) -> None:
    if "assistant" not in roles:
        ctx.emit(FindingCode.NO_ASSISTANT_TURN, field, f"no assistant turn among {len(roles)} turns")
    elif roles[-1] not in ("assistant", None):
        last = len(roles) - 1
        ctx.emit(
            FindingCode.LAST_TURN_NOT_ASSISTANT, f"{field}[{last}]", f"the last turn is {roles[-1]!r}, not assistant"
        )
    if "system" in roles[1:]:
        index = roles.index("system", 1)
        ctx.emit(FindingCode.SYSTEM_NOT_FIRST, f"{field}[{index}]", f"system message at turn {index}, not first")
    for index in range(1, len(roles)):
        if roles[index] == roles[index - 1] and roles[index] in _ALTERNATING:
            message = f"turns {index - 1} and {index} are both {roles[index]!r}"
            ctx.emit(FindingCode.CONSECUTIVE_SAME_ROLE, f"{field}[{index}]", message)
            return


# --- single-turn formats ----------------------------------------------------------------------------------


def _check_alpaca(record: dict[str, Any], ctx: RecordContext) -> int:
    weight = _required_text(record, "instruction", ctx) + _required_text(record, "output", ctx)
    weight += _optional_text(record, "input", ctx) + _optional_text(record, "system", ctx)
    return weight_to_tokens(weight, 2)


def _check_prompt_completion(record: dict[str, Any], ctx: RecordContext) -> int:
    weight = _prompt_or_completion(record, "prompt", ctx, may_be_empty=True)
    weight += _prompt_or_completion(record, "completion", ctx, may_be_empty=False)
    return weight_to_tokens(weight, 2)


def _check_text(record: dict[str, Any], ctx: RecordContext) -> int:
    return weight_to_tokens(_required_text(record, "text", ctx), 1)


def _required_text(record: dict[str, Any], key: str, ctx: RecordContext) -> int:
    value = record.get(key, MISSING)
    if type(value) is str and not _is_blank(value):
        return text_weight(value)
    if value is MISSING:
        ctx.emit(FindingCode.MISSING_FIELD, key, f"missing {key!r}")
    elif type(value) is not str:
        _wrong_type(key, "a string", value, ctx)
    else:
        ctx.emit(FindingCode.EMPTY_FIELD, key, f"{key!r} is empty or whitespace")
    return 0


def _optional_text(record: dict[str, Any], key: str, ctx: RecordContext) -> int:
    value = record.get(key)
    if value is None:
        return 0
    if type(value) is not str:
        _wrong_type(key, "a string or null", value, ctx)
        return 0
    return text_weight(value)


def _prompt_or_completion(record: dict[str, Any], key: str, ctx: RecordContext, *, may_be_empty: bool) -> int:
    """A string, or TRL's conversational form: a list of ``{role, content}`` messages."""
    value = record.get(key, MISSING)
    if type(value) is list:
        text = "".join(_message_text(message, f"{key}[{index}]", ctx) for index, message in enumerate(value))
    elif type(value) is str:
        text = value
    elif value is MISSING:
        ctx.emit(FindingCode.MISSING_FIELD, key, f"missing {key!r}")
        return 0
    else:
        _wrong_type(key, "a string or a list of messages", value, ctx)
        return 0
    if not may_be_empty and _is_blank(text):
        ctx.emit(FindingCode.EMPTY_FIELD, key, f"{key!r} is empty: there is nothing to train on")
    return text_weight(text)


def _message_text(message: Any, path: str, ctx: RecordContext) -> str:
    if type(message) is not dict:
        _wrong_type(path, "a {role, content} message", message, ctx)
        return ""
    content = message.get("content")
    if type(content) is str:
        return content
    _wrong_type(f"{path}.content", "a string", content, ctx)
    return ""


_CHECKS: dict[DatasetFormat, Callable[[dict[str, Any], RecordContext], int]] = {
    DatasetFormat.CHAT: _check_chat,
    DatasetFormat.SHAREGPT: _check_sharegpt,
    DatasetFormat.ALPACA: _check_alpaca,
    DatasetFormat.PROMPT_COMPLETION: _check_prompt_completion,
    DatasetFormat.TEXT: _check_text,
}

__all__ = [
    "CHAT_TURNS",
    "JSON_KINDS",
    "MISSING",
    "SHAREGPT_TURNS",
    "RecordContext",
    "TurnLayout",
    "check_record",
    "json_kind",
]
