"""A small pull-based, streaming ``multipart/form-data`` reader (RFC 7578), so that uploads never sit in memory.

Storage reads the form's fields, stops at the first file part to check MIME type and permissions, and only
then streams the file's bytes to disk. A pull reader gives exactly that order: :meth:`next_part` returns a
part's headers, :meth:`iter_body` yields its bytes. Only the window needed to find the next boundary is
buffered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

_MAX_HEADER_BYTES = 16 * 1024
_CRLF = b"\r\n"


class MultipartError(ValueError):
    """The body is not well-formed multipart (or ended early)."""


@dataclass(frozen=True)
class Part:
    """One part's headers."""

    name: str
    filename: str | None
    content_type: str | None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def is_file(self) -> bool:
        return self.filename is not None

    @property
    def mime_type(self) -> str:
        """``type/subtype`` without parameters, lower-cased (as busboy reports it); text/plain by default."""
        value = (self.content_type or "text/plain").split(";", 1)[0].strip().lower()
        return value or "text/plain"


def boundary_of(content_type: str) -> bytes:
    """The ``boundary`` parameter of a multipart Content-Type."""
    params = parse_header_params(content_type)
    boundary = params.get("boundary")
    if not boundary or len(boundary) > 200:
        raise MultipartError("multipart boundary missing")
    return boundary.encode("latin-1")


def parse_header_params(value: str) -> dict[str, str]:
    """``form-data; name="a"; filename="b c"`` -> ``{"name": "a", "filename": "b c"}`` (names lower-cased)."""
    params: dict[str, str] = {}
    for item in _split_params(value)[1:]:
        key, sep, raw = item.partition("=")
        if not sep:
            continue
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        params[key.strip().lower()] = raw
    return params


def _split_params(value: str) -> list[str]:
    items: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            items.append("".join(current))
            current = []
        else:
            current.append(char)
    items.append("".join(current))
    return items


class MultipartReader:
    """Reads parts from a stream of body chunks."""

    def __init__(self, chunks: AsyncIterator[bytes], boundary: bytes) -> None:
        self._chunks = chunks
        self._delimiter = b"\r\n--" + boundary
        self._buffer = bytearray(_CRLF)  # lets the first boundary look like every other one
        self._eof = False
        self._in_body = False
        self._done = False

    async def next_part(self) -> Part | None:
        """Headers of the next part, or ``None`` after the closing boundary."""
        if self._in_body:
            async for _ in self.iter_body():
                pass
        if self._done:
            return None
        if not await self._skip_to_boundary():
            return None
        raw = await self._read_until(b"\r\n\r\n", _MAX_HEADER_BYTES)
        self._in_body = True
        return _parse_part_headers(raw)

    async def iter_body(self) -> AsyncIterator[bytes]:
        """The current part's bytes, as they arrive."""
        keep = len(self._delimiter) - 1
        while self._in_body:
            index = self._buffer.find(self._delimiter)
            if index >= 0:
                data = bytes(self._buffer[:index])
                del self._buffer[:index]
                self._in_body = False
                if data:
                    yield data
                return
            if len(self._buffer) > keep:
                data = bytes(self._buffer[:-keep])
                del self._buffer[:-keep]
                yield data
            if not await self._fill():
                raise MultipartError("multipart body ended inside a part")

    async def read_body(self, limit: int) -> bytes | None:
        """The current part's bytes, or ``None`` when there are more than ``limit`` (the rest is skipped)."""
        data = bytearray()
        too_large = False
        async for chunk in self.iter_body():
            if not too_large:
                data += chunk
                too_large = len(data) > limit
        return None if too_large else bytes(data)

    async def _skip_to_boundary(self) -> bool:
        """Consume up to and including the next delimiter line; False after the closing one."""
        while True:
            index = self._buffer.find(self._delimiter)
            if index >= 0 and len(self._buffer) >= index + len(self._delimiter) + 2:
                end = index + len(self._delimiter)
                tail = bytes(self._buffer[end : end + 2])
                del self._buffer[: end + 2]
                if tail == b"--":
                    self._done = True
                    return False
                if tail != _CRLF:
                    await self._read_until(_CRLF, 256)  # transport padding after the boundary
                return True
            if index < 0 and len(self._buffer) > len(self._delimiter):
                del self._buffer[: -len(self._delimiter)]  # preamble
            if not await self._fill():
                raise MultipartError("multipart body has no closing boundary")

    async def _read_until(self, marker: bytes, limit: int) -> bytes:
        while True:
            index = self._buffer.find(marker)
            if index >= 0:
                data = bytes(self._buffer[:index])
                del self._buffer[: index + len(marker)]
                return data
            if len(self._buffer) > limit:
                raise MultipartError("multipart part headers too large")
            if not await self._fill():
                raise MultipartError("multipart body ended inside part headers")

    async def _fill(self) -> bool:
        while not self._eof:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._eof = True
                break
            if chunk:
                self._buffer += chunk
                return True
        return False


def _parse_part_headers(raw: bytes) -> Part:
    headers: dict[str, str] = {}
    for line in raw.decode("utf-8", "replace").split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    disposition = headers.get("content-disposition", "")
    params = parse_header_params(disposition)
    if "name" not in params:
        raise MultipartError("multipart part without a name")
    return Part(params["name"], params.get("filename"), headers.get("content-type"), headers)


__all__ = ["MultipartError", "MultipartReader", "Part", "boundary_of", "parse_header_params"]
