"""Split a top-level JSON array into its elements while reading it in chunks.

``json.load`` on a 500 MB array would hold the text and every parsed object at once. Instead the text is
decoded a chunk at a time and each element is parsed with ``JSONDecoder.raw_decode`` at the current position;
an element cut by the end of the buffer fails to parse, so more is read and the parse retried (the buffer grows
geometrically, so an element costs O(its size) reads). Only the current element and one chunk are in memory.

Unlike JSONL, a syntax error inside an array leaves no reliable place to resume (the next element starts after
a comma that may sit inside a broken string), so reading stops there with a finding that says so.
"""

from __future__ import annotations

import codecs
import io
import json
import re
from collections.abc import Iterator
from typing import Any, NoReturn

from lora_pipeline.datasets._findings import FindingCode
from lora_pipeline.datasets._reader import DECODER, SKIP, NonStandardConstant, ProblemSink

READ_CHUNK = 1 << 20
_WHITESPACE = re.compile(r"[ \t\n\r]*")
_LENIENT = json.JSONDecoder()  # finds where a NaN-bearing element ends, so it can be skipped


class _Stop(Exception):
    """Reading cannot go on; the reason has been reported."""


class ArrayElements:
    """The elements of one JSON array read from ``stream``, with the line and byte offset where each starts."""

    def __init__(
        self, stream: io.BufferedReader[Any], *, sink: ProblemSink, start_offset: int, max_element_bytes: int
    ) -> None:
        self._stream = stream
        self._sink = sink
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._max = max_element_bytes
        self._buf = ""
        self._pos = 0
        self._bytes_read = start_offset
        self._eof = False
        self._ends_with_newline = False
        self._undecodable: tuple[str, int, int] | None = None
        self.line = 1
        self.offset = start_offset

    @property
    def num_lines(self) -> int:
        """Physical lines consumed so far (a final newline does not start another line)."""
        return self.line - 1 if self._ends_with_newline else self.line

    def values(self) -> Iterator[tuple[int, int, Any]]:
        """Yield ``(line, offset, value)`` per element, reporting problems to the sink."""
        try:
            self._expect_open()
            if self._peek() == "]":
                self._advance(self._pos + 1)
            else:
                yield from self._elements()
            self._expect_end()
        except _Stop:
            return

    def _elements(self) -> Iterator[tuple[int, int, Any]]:
        while True:
            self._skip_whitespace()
            element = self._element()
            if element is not SKIP:
                yield element
            self._skip_whitespace()
            separator = self._peek()
            if separator not in (",", "]"):
                self._fail(FindingCode.INVALID_JSON, "expected ',' or ']' after an array element")
            self._advance(self._pos + 1)
            if separator == "]":
                return

    def _element(self) -> Any:
        while True:
            position = self._pos
            try:
                value, end = self._decode()
            except json.JSONDecodeError as exc:
                if not self._read_more():
                    # Reading more may have moved the buffer's start: shift the error's position with it.
                    self._fail_parse(exc.msg, exc.pos - (position - self._pos))
                continue
            if end == len(self._buf) and self._read_more():
                continue  # a number at the end of the buffer may go on in the next chunk
            return self._take(value, end)

    def _decode(self) -> tuple[Any, int]:
        """The element at the current position and where it ends; JSONDecodeError when it is cut short."""
        try:
            return DECODER.raw_decode(self._buf, self._pos)
        except RecursionError:
            self._fail(FindingCode.NESTING_TOO_DEEP, "an array element is nested too deeply to parse")
        except NonStandardConstant as exc:  # find where the element ends, then skip it
            end = _LENIENT.raw_decode(self._buf, self._pos)[1]
            self._report(FindingCode.INVALID_JSON, str(exc))
            return SKIP, end

    def _take(self, value: Any, end: int) -> Any:
        line, offset, size = self.line, self.offset, end - self._pos
        self._advance(end)
        if size > self._max:
            message = f"array element is over {self._max:,} bytes"
            self._sink(FindingCode.LINE_TOO_LONG, message, line=line, offset=offset)
            return SKIP
        return SKIP if value is SKIP else (line, offset, value)

    def _read_more(self) -> bool:
        pending = len(self._buf) - self._pos
        if self._eof or pending > self._max:
            return False
        return self._fill(max(READ_CHUNK, pending))

    def _fill(self, size: int | None = None) -> bool:
        if self._eof:
            return False
        self._buf, self._pos = self._buf[self._pos :], 0
        pending = self._decoder.getstate()[0]  # an incomplete character left from the previous read
        data = self._stream.read(size or READ_CHUNK)
        try:
            text = self._decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            text = self._stop_at_bad_byte(pending + data, self._bytes_read - len(pending), exc)
        self._bytes_read += len(data)
        self._eof = self._eof or not data
        self._buf += text
        return bool(text) or not self._eof

    def _stop_at_bad_byte(self, data: bytes, base: int, exc: UnicodeDecodeError) -> str:
        """Keep the text before a non-UTF-8 byte and end the input there: elements before it still count."""
        good = data[: exc.start].decode("utf-8")
        line = self.line + self._buf.count("\n", self._pos) + good.count("\n")
        bad = data[exc.start : exc.start + 4]
        message = f"bytes {bad!r} are not UTF-8 ({exc.reason}); the rest of the array was not read"
        self._undecodable = (message, line, base + exc.start)
        self._eof = True
        return good

    def _stop_if_undecodable(self) -> None:
        """Input that ended at a bad byte fails for that reason, not for the truncated JSON it left."""
        if self._undecodable is not None:
            message, line, offset = self._undecodable
            self._sink(FindingCode.INVALID_UTF8, message, line=line, offset=offset)
            raise _Stop

    def _advance(self, end: int) -> None:
        consumed = self._buf[self._pos : end]
        if consumed:
            self.line += consumed.count("\n")
            self.offset += len(consumed) if consumed.isascii() else len(consumed.encode("utf-8", "surrogatepass"))
            self._ends_with_newline = consumed.endswith("\n")
        self._pos = end

    def _skip_whitespace(self) -> None:
        while True:
            match = _WHITESPACE.match(self._buf, self._pos)
            self._advance(match.end() if match else self._pos)
            if self._pos < len(self._buf) or not self._fill():
                return

    def _peek(self) -> str:
        if self._pos >= len(self._buf) and not self._fill():
            return ""
        return self._buf[self._pos]

    def _expect_open(self) -> None:
        self._skip_whitespace()
        if self._peek() != "[":
            self._fail(FindingCode.INVALID_JSON, "expected '[' to open the array")
        self._advance(self._pos + 1)
        self._skip_whitespace()

    def _expect_end(self) -> None:
        self._skip_whitespace()
        self._stop_if_undecodable()
        if self._peek():
            self._report(FindingCode.INVALID_JSON, "unexpected data after the array's closing ']': {value}")

    def _fail_parse(self, reason: str, error_at: int) -> NoReturn:
        self._stop_if_undecodable()
        if len(self._buf) - self._pos > self._max:
            self._fail(FindingCode.LINE_TOO_LONG, f"array element is over {self._max:,} bytes; the rest was not read")
        line = self.line + self._buf.count("\n", self._pos, error_at)
        offset = self.offset + len(self._buf[self._pos : error_at].encode("utf-8", "surrogatepass"))
        message = f"{reason} in the array element starting on line {self.line}; the rest was not read"
        self._sink(FindingCode.INVALID_JSON, message, line=line, offset=offset)
        raise _Stop

    def _report(self, code: FindingCode, message: str) -> None:
        value = self._buf[self._pos : self._pos + 100]
        self._sink(code, message, line=self.line, offset=self.offset, value=value)

    def _fail(self, code: FindingCode, message: str) -> NoReturn:
        self._stop_if_undecodable()
        self._report(code, message + ("" if "{value}" in message else ": {value}"))
        raise _Stop


__all__ = ["ArrayElements"]
