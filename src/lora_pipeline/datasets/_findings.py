"""Finding codes, their severities, and the collector that counts every finding but stores only a few.

A finding is one problem at one place in a dataset file: the physical line, the byte offset, a JSON path inside
the record (``messages[3].role``), a stable snake_case code, a severity and a human message
(research/tracking.md §3.5). Codes are a closed catalogue so that the CLI, notebooks and CI can rely on them.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from lora_pipeline._compat import StrEnum


class Severity(StrEnum):
    """How much a finding matters: errors make a report invalid; warnings and info do not."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class FindingCode(StrEnum):
    """The stable identifier of a kind of finding."""

    INVALID_UTF8 = "invalid_utf8"
    BOM_PRESENT = "bom_present"
    NUL_BYTE = "nul_byte"
    INVALID_JSON = "invalid_json"
    NOT_AN_OBJECT = "not_an_object"
    MULTILINE_JSON_SUSPECTED = "multiline_json_suspected"
    BLANK_LINE = "blank_line"
    LINE_TOO_LONG = "line_too_long"
    NESTING_TOO_DEEP = "nesting_too_deep"
    EMPTY_FILE = "empty_file"
    BINARY_FILE = "binary_file"
    UNKNOWN_FORMAT = "unknown_format"
    MIXED_FORMATS = "mixed_formats"
    PREFERENCE_DATA = "preference_data"
    MISSING_FIELD = "missing_field"
    EMPTY_FIELD = "empty_field"
    WRONG_TYPE = "wrong_type"
    UNRECOGNIZED_KEY = "unrecognized_key"
    UNRECOGNIZED_ROLE = "unrecognized_role"
    NO_ASSISTANT_TURN = "no_assistant_turn"
    EMPTY_ASSISTANT_CONTENT = "empty_assistant_content"
    LAST_TURN_NOT_ASSISTANT = "last_turn_not_assistant"
    CONSECUTIVE_SAME_ROLE = "consecutive_same_role"
    SYSTEM_NOT_FIRST = "system_not_first"
    TYPE_INCONSISTENT = "type_inconsistent"
    TOO_LONG_TOKENS = "too_long_tokens"
    CHAT_TEMPLATE_FAILED = "chat_template_failed"
    DUPLICATE_EXACT = "duplicate_exact"
    DEDUP_LIMIT_REACHED = "dedup_limit_reached"
    TOO_FEW_EXAMPLES = "too_few_examples"


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO
_FORMATS_HINT = (
    "use one of: messages (chat), conversations (sharegpt), instruction + output (alpaca), prompt + completion, text"
)

CATALOGUE: dict[FindingCode, tuple[Severity, str | None]] = {
    FindingCode.INVALID_UTF8: (_E, "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)"),
    FindingCode.BOM_PRESENT: (_W, "the BOM is skipped here, but some loaders reject it; save as UTF-8 without BOM"),
    FindingCode.NUL_BYTE: (_E, "a NUL byte never belongs in JSON text; the file may be truncated or corrupted"),
    FindingCode.INVALID_JSON: (_E, "each line must be one complete JSON object"),
    FindingCode.NOT_AN_OBJECT: (_E, 'each example must be a JSON object such as {"messages": [...]}'),
    FindingCode.MULTILINE_JSON_SUSPECTED: (
        _E,
        "the file looks pretty-printed; write one object per line (JSONL): `f.write(json.dumps(obj) + '\\n')`",
    ),
    FindingCode.BLANK_LINE: (_I, "blank lines are skipped"),
    FindingCode.LINE_TOO_LONG: (_E, "split the example, or raise max_line_bytes if it is really meant to be this long"),
    FindingCode.NESTING_TOO_DEEP: (_E, "flatten the value: no training format nests this deep"),
    FindingCode.EMPTY_FILE: (_E, "the file has no examples"),
    FindingCode.BINARY_FILE: (_E, "give a UTF-8 JSONL (or JSON array) text file; decompress archives first"),
    FindingCode.UNKNOWN_FORMAT: (_E, _FORMATS_HINT),
    FindingCode.MIXED_FORMATS: (_E, "convert every example to the file's format"),
    FindingCode.PREFERENCE_DATA: (
        _E,
        "chosen/rejected pairs are preference (DPO) data, which supervised fine-tuning does not use; "
        "keep the chosen reply as the assistant turn",
    ),
    FindingCode.MISSING_FIELD: (_E, None),
    FindingCode.EMPTY_FIELD: (_E, None),
    FindingCode.WRONG_TYPE: (_E, None),
    FindingCode.UNRECOGNIZED_KEY: (_W, "the trainer ignores this key"),
    FindingCode.UNRECOGNIZED_ROLE: (
        _E,
        "use system, user, assistant or tool (aliases: human, gpt, model, bot, function, observation)",
    ),
    FindingCode.NO_ASSISTANT_TURN: (_E, "add an assistant turn: it is what the model learns to write"),
    FindingCode.EMPTY_ASSISTANT_CONTENT: (_E, "an empty reply teaches the model nothing; fill it or drop the turn"),
    FindingCode.LAST_TURN_NOT_ASSISTANT: (_W, "turns after the last assistant reply are not trained on"),
    FindingCode.CONSECUTIVE_SAME_ROLE: (
        _W,
        "many chat templates require alternating user/assistant turns and raise otherwise",
    ),
    FindingCode.SYSTEM_NOT_FIRST: (_W, "most chat templates accept a system message only as the first turn"),
    FindingCode.TYPE_INCONSISTENT: (
        _E,
        "give this field one JSON type on every line: `datasets` (pyarrow) refuses a column that changes type",
    ),
    FindingCode.TOO_LONG_TOKENS: (_W, "the trainer drops or truncates examples longer than max_seq_len"),
    FindingCode.CHAT_TEMPLATE_FAILED: (_W, "the tokenizer's chat template refuses this conversation"),
    FindingCode.DUPLICATE_EXACT: (_W, "duplicates weigh an example twice; remove them unless that is intended"),
    FindingCode.DEDUP_LIMIT_REACHED: (_I, "later examples are checked only against those already tracked"),
    FindingCode.TOO_FEW_EXAMPLES: (_E, None),
}
"""Each code's default severity and hint."""


class Finding(BaseModel):
    """One problem at one place in a dataset file."""

    model_config = ConfigDict(frozen=True)

    line: int | None = Field(None, description="1-based physical line; None for findings about the whole file.")
    offset: int | None = Field(None, description="Byte offset in the file where the line or problem starts.")
    path: str = Field("", description="JSON path inside the record, e.g. `messages[3].role`; '' for the record.")
    code: FindingCode | str = Field(description="Stable snake_case identifier (see FindingCode).")
    severity: Severity
    message: str = Field(description="What is wrong, quoting the offending value truncated to about 80 chars.")
    hint: str | None = Field(None, description="How to fix it, when there is a usual fix.")

    def location(self) -> str:
        """``line 12, messages[3].role`` or ``file`` for whole-file findings."""
        where = "file" if self.line is None else f"line {self.line}"
        return f"{where}, {self.path}" if self.path else where


def preview(value: Any, limit: int = 80) -> str:
    """A JSON-looking rendering of ``value`` cut to ``limit`` chars, in time bounded by ``limit``, not the value."""
    text = _shallow(value, limit, depth=2)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shallow(value: Any, limit: int, depth: int) -> str:
    # Only as many items as could show: a 10 MB value must not cost 10 MB to quote.
    if isinstance(value, str):
        return json.dumps(value[: limit + 1], ensure_ascii=False)
    if isinstance(value, list):
        items = ", ".join(_shallow(v, limit, depth - 1) for v in value[:4]) if depth else "…"
        return f"[{items}{', …' if len(value) > 4 else ''}]"
    if isinstance(value, dict):
        pairs = list(value.items())[:4] if depth else []
        body = ", ".join(f"{json.dumps(str(k)[:limit])}: {_shallow(v, limit, depth - 1)}" for k, v in pairs)
        return "{" + (body or "…") + (", …" if len(value) > len(pairs) else "") + "}"
    return json.dumps(value)


class FindingCollector:
    """Counts every finding, stores the first ``cap_per_code`` of each code.

    Memory is bounded by the number of codes times the cap, however broken the file is. Messages may contain
    ``{value}``, replaced by a preview of ``value`` only for stored findings (quoting is the costly part).
    """

    def __init__(self, cap_per_code: int = 20) -> None:
        self.cap_per_code = cap_per_code
        self.counts: dict[str, int] = {}
        self.severity_counts: dict[Severity, int] = dict.fromkeys(Severity, 0)
        self.errors = 0
        """Errors so far; callers compare before and after a record to learn whether it had any."""
        self._stored: list[Finding] = []

    def add(
        self,
        code: FindingCode,
        message: str,
        *,
        line: int | None = None,
        offset: int | None = None,
        path: str = "",
        value: Any = None,
        hint: str | None = None,
        severity: Severity | None = None,
    ) -> None:
        """Count a finding, and store it while its code is under the cap."""
        default_severity, default_hint = CATALOGUE[code]
        severity = severity or default_severity
        self.severity_counts[severity] += 1
        if severity is Severity.ERROR:
            self.errors += 1
        seen = self.counts.get(code, 0)
        self.counts[code] = seen + 1
        if seen < self.cap_per_code:
            if "{value}" in message:
                message = message.replace("{value}", preview(value))
            finding = Finding(
                line=line,
                offset=offset,
                path=path,
                code=code,
                severity=severity,
                message=message,
                hint=hint or default_hint,
            )
            self._stored.append(finding)

    def add_uncounted_copies(self, code: FindingCode, severity: Severity, extra: int) -> None:
        """Count ``extra`` more findings of ``code`` that were found in aggregate, without storing them."""
        if extra > 0:
            self.counts[code] = self.counts.get(code, 0) + extra
            self.severity_counts[severity] += extra
            if severity is Severity.ERROR:
                self.errors += extra

    def findings(self) -> list[Finding]:
        """The stored findings, whole-file ones first, then in file order."""
        return sorted(self._stored, key=lambda f: (f.line is not None, f.line or 0, f.offset or 0))


__all__ = ["CATALOGUE", "Finding", "FindingCode", "FindingCollector", "Severity", "preview"]
