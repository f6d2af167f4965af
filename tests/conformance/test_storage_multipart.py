"""The gateway's streaming multipart reader, fed the bodies httpx builds in every possible chunking (it has no
server behind it, so it belongs with unit tests; it lives here beside the upload tests it supports)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import httpx
import pytest

from lora_pipeline.local_supabase.gateway.storage._multipart import MultipartError, MultipartReader, boundary_of

PAYLOAD = b"line one\r\n--not-the-boundary\r\n\r\n--" + bytes(range(256)) * 40


def _form(data: bytes) -> tuple[bytes, str]:
    request = httpx.Request(
        "POST",
        "http://x/",
        data={"cacheControl": "3600", "metadata": '{"a": 1}'},
        files={"file": ("f.bin", data, "application/octet-stream; charset=x")},
    )
    return request.read(), request.headers["content-type"]


async def _chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def _read(body: bytes, content_type: str, size: int) -> tuple[dict[str, bytes], bytes, str]:
    reader = MultipartReader(_chunks(body, size), boundary_of(content_type))
    fields: dict[str, bytes] = {}
    while (part := await reader.next_part()) is not None:
        if part.is_file:
            data = b"".join([chunk async for chunk in reader.iter_body()])
            return fields, data, part.mime_type
        fields[part.name] = await reader.read_body(1024) or b""
    raise AssertionError("no file part")


@pytest.mark.parametrize("size", [1, 2, 7, 64, 4096, 1 << 20])
def test_fields_then_file_survive_any_chunking(size: int) -> None:
    body, content_type = _form(PAYLOAD)
    fields, data, mime_type = anyio.run(_read, body, content_type, size)
    assert fields == {"cacheControl": b"3600", "metadata": b'{"a": 1}'}
    assert data == PAYLOAD
    assert mime_type == "application/octet-stream"


def test_a_body_cut_short_is_an_error() -> None:
    body, content_type = _form(PAYLOAD)
    with pytest.raises(MultipartError):
        anyio.run(_read, body[: len(body) // 2], content_type, 512)
