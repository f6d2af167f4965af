"""Stream the JSON values out of a JSONL or JSON-array file in constant memory, hashing it on the way.

The file is read once, in binary: every byte passes through SHA-256 as the buffer fills (so the upload step can
reuse the digest), and each JSONL line is decoded on its own, so one bad byte fails one line rather than the
file (research/tracking.md §3.6). Problems go to a sink as findings; the reader never stops at the first one,
except where it cannot find where the next value starts (a broken JSON array, a binary file).
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
from collections.abc import Iterator
from typing import Any, Literal, Protocol

from lora_pipeline.datasets._findings import FindingCode

Container = Literal["jsonl", "json_array"]

BOM = b"\xef\xbb\xbf"
READ_BUFFER = 1 << 20
SNIFF_BYTES = 8192
SKIP: Any = object()
"""Returned by the line parser for a line that yields no value."""

_MAGIC = {
    b"\x1f\x8b": "gzip archive",
    b"PK\x03\x04": "zip archive",
    b"BZh": "bzip2 archive",
    b"\xfd7zXZ": "xz archive",
    b"\x28\xb5\x2f\xfd": "zstd archive",
    b"PAR1": "Parquet file",
    b"ARROW1": "Arrow file",
    b"SQLite format 3": "SQLite database",
    b"\x89PNG": "PNG image",
    b"%PDF": "PDF document",
    b"\x93NUMPY": "NumPy array",
}
_UTF16_OR_32 = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")
# Bytes that occur in text: all but the C0 controls, except \a \b \t \n \f \r and ESC.
_TEXT_BYTES = bytes({7, 8, 9, 10, 12, 13, 27} | set(range(32, 256)))


class ProblemSink(Protocol):
    """Where the reader reports what it finds (a FindingCollector's ``add``, or a raiser)."""

    def __call__(
        self, code: FindingCode, message: str, *, line: int | None = ..., offset: int | None = ..., value: Any = ...
    ) -> None: ...


class NonStandardConstant(ValueError):
    """NaN / Infinity: Python's json accepts them, but JSON, pyarrow and most loaders do not."""


def _reject_constant(name: str) -> Any:
    raise NonStandardConstant(f"{name} is not valid JSON")


DECODER = json.JSONDecoder(parse_constant=_reject_constant)
"""One strict decoder, built once: passing options to json.loads would rebuild a decoder per call."""


class _HashingRaw(io.RawIOBase):
    """A raw file that feeds every byte it reads to SHA-256, in the buffer's large chunks."""

    def __init__(self, raw: io.FileIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer) or 0
        if count:
            self.sha256.update(memoryview(buffer)[:count])
            self.size += count
        return count


def binary_reason(head: bytes) -> str | None:
    """Why ``head`` (the file's first bytes) cannot be a UTF-8 text dataset, or ``None`` when it may be."""
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return f"the file is a {what}"
    if head.startswith(_UTF16_OR_32) or _looks_utf16(head):
        return "the file is UTF-16 or UTF-32 text, not UTF-8"
    # final=False: a multi-byte character cut by the end of the sample is not a decoding error.
    replaced = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=False).count("\ufffd")
    odd = len(head.translate(None, _TEXT_BYTES)) + replaced
    if odd / len(head) > 0.25:
        return f"{odd} of the first {len(head)} bytes are not text"
    return None


def _looks_utf16(head: bytes) -> bool:
    # ASCII text in UTF-16 has a NUL in every other byte.
    quarter = len(head) // 4
    return len(head) >= 4 and (head[0::2].count(0) > quarter or head[1::2].count(0) > quarter)


def sniff_container(head: bytes) -> Container:
    """``json_array`` when the file is one top-level array, ``jsonl`` otherwise.

    A first line that is a complete array followed by more lines is JSONL whose lines are arrays (each will be
    reported ``not_an_object``), not one array.
    """
    text = head.removeprefix(BOM).lstrip()
    if not text.startswith(b"["):
        return "jsonl"
    first, newline, rest = text.partition(b"\n")
    if not newline or not rest.strip():
        return "json_array"
    try:
        return "jsonl" if isinstance(DECODER.decode(first.decode("utf-8")), list) else "json_array"
    except (ValueError, RecursionError):
        return "json_array"


class RecordReader:
    """Iterates ``(line, offset, value)`` over a file's JSON values, reporting problems to ``sink``.

    After a complete iteration, ``size_bytes`` and ``sha256`` describe the whole file (when reading stopped
    before the end, at a binary file or a broken array, the rest is read just to hash it), and ``num_lines`` /
    ``num_blank_lines`` count physical lines. A consumer that stops early gets neither, and pays no extra read.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_line_bytes: int, sink: ProblemSink) -> None:
        self.path = os.fspath(path)
        self.max_line_bytes = max_line_bytes
        self.sink = sink
        self.container: Container = "jsonl"
        self.num_lines = 0
        self.num_blank_lines = 0
        self.size_bytes = 0
        self.sha256 = ""
        self.binary = False
        self._multiline_start: int | None = None

    def __iter__(self) -> Iterator[tuple[int, int, Any]]:
        with open(self.path, "rb", buffering=0) as raw:
            hashing = _HashingRaw(raw)
            stream = io.BufferedReader(hashing, buffer_size=READ_BUFFER)
            yield from self._values(stream)
            while stream.read(READ_BUFFER):
                pass  # hash what was not parsed, so the digest is always the whole file's
            self.size_bytes, self.sha256 = hashing.size, hashing.sha256.hexdigest()

    def _values(self, stream: io.BufferedReader[Any]) -> Iterator[tuple[int, int, Any]]:
        head = stream.peek(SNIFF_BYTES)[:SNIFF_BYTES]
        reason = binary_reason(head) if head else None
        if reason:
            self.binary = True
            self.sink(FindingCode.BINARY_FILE, f"not a text dataset: {reason}; nothing was read", line=1, offset=0)
            return
        self.container = sniff_container(head)
        if self.container == "jsonl":
            yield from self._jsonl(stream)
            return
        from lora_pipeline.datasets._json_array import ArrayElements  # here: that module imports this one

        start = 0
        if head.startswith(BOM):
            start = len(stream.read(len(BOM)))
            self.sink(FindingCode.BOM_PRESENT, "the file starts with a UTF-8 byte order mark", line=1, offset=0)
        elements = ArrayElements(stream, sink=self.sink, start_offset=start, max_element_bytes=self.max_line_bytes)
        yield from elements.values()
        self.num_lines = elements.num_lines

    def _jsonl(self, stream: io.BufferedReader[Any]) -> Iterator[tuple[int, int, Any]]:
        limit = self.max_line_bytes
        readline = stream.readline
        line = offset = 0
        while raw := readline(limit + 1):
            line += 1
            start = offset
            offset += len(raw)
            if len(raw) > limit and not raw.endswith(b"\n"):
                offset += self._skip_rest_of_line(stream)
                self.sink(FindingCode.LINE_TOO_LONG, f"line is over {limit:,} bytes", line=line, offset=start)
            elif raw.isspace():
                self.num_blank_lines += 1
                self.sink(FindingCode.BLANK_LINE, "blank line", line=line, offset=start)
            elif (value := self._parse_line(raw, line, start)) is not SKIP:
                yield line, start, value
            self.num_lines = line

    @staticmethod
    def _skip_rest_of_line(stream: io.BufferedReader[Any]) -> int:
        skipped = 0
        while chunk := stream.readline(READ_BUFFER):
            skipped += len(chunk)
            if chunk.endswith(b"\n"):
                break
        return skipped

    def _parse_line(self, raw: bytes, line: int, start: int) -> Any:
        if raw.startswith(BOM):
            self.sink(FindingCode.BOM_PRESENT, "line starts with a UTF-8 byte order mark", line=line, offset=start)
            raw, start = raw[len(BOM) :], start + len(BOM)
        if b"\x00" in raw:
            at = raw.index(b"\x00")
            self.sink(FindingCode.NUL_BYTE, f"NUL byte at column {at + 1}", line=line, offset=start + at)
            return SKIP
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 4]
            message = f"bytes {bad!r} at column {exc.start + 1} are not UTF-8 ({exc.reason})"
            self.sink(FindingCode.INVALID_UTF8, message, line=line, offset=start + exc.start)
            return SKIP
        return self._parse_text(text, line, start)

    def _parse_text(self, text: str, line: int, start: int) -> Any:
        try:
            value = DECODER.decode(text)
        except RecursionError:
            self.sink(FindingCode.NESTING_TOO_DEEP, "JSON nested too deeply to parse", line=line, offset=start)
        except json.JSONDecodeError as exc:
            self._report_json_error(text, exc, line, start)
        except NonStandardConstant as exc:
            self.sink(FindingCode.INVALID_JSON, str(exc), line=line, offset=start)
        else:
            self._multiline_start = None
            return value
        return SKIP

    def _report_json_error(self, text: str, exc: json.JSONDecodeError, line: int, start: int) -> None:
        """``multiline_json_suspected`` for a value left open and the lines that follow it; else invalid_json.

        A pretty-printed object fails on every one of its lines; calling them all invalid JSON would bury
        the one diagnosis that matters, so they are reported as parts of the value opened on its first line.
        """
        offset = start + len(text[: exc.pos].encode("utf-8", "surrogatepass"))
        stripped = text.rstrip()
        opens = stripped.lstrip()[:1] in ("{", "[") and exc.pos >= len(stripped)
        if self._multiline_start is not None:
            message = f"continues the JSON value spread over lines from line {self._multiline_start}"
            self.sink(FindingCode.MULTILINE_JSON_SUSPECTED, message, line=line, offset=offset)
        elif opens:
            self._multiline_start = line
            message = "the JSON value does not end on this line: a pretty-printed object spread over lines?"
            self.sink(FindingCode.MULTILINE_JSON_SUSPECTED, message, line=line, offset=offset)
        else:
            message = f"{exc.msg} at column {exc.colno}: {{value}}"
            context = text[max(0, exc.pos - 20) :].rstrip()
            self.sink(FindingCode.INVALID_JSON, message, line=line, offset=offset, value=context)


__all__ = ["BOM", "DECODER", "SKIP", "Container", "NonStandardConstant", "ProblemSink", "RecordReader", "binary_reason"]
