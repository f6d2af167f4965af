"""Bodies over the limits: refused with 413 (Storage: its envelope, statusCode "413") and a message naming the
limit, without the gateway holding the body in memory first, and the gateway stays healthy.

Limits: ``/rest/v1`` bodies (table writes and RPC calls) ``GatewayConfig.max_body_bytes`` (64 MiB);
``/auth/v1`` bodies 1 MiB (GoTrue's); Storage JSON bodies 2 MiB; uploads the bucket's ``file_size_limit``
(``lora-datasets`` 500 MB, ``lora-models`` 5 GB) under the global limit, for plain, multipart, chunked and
resumable (TUS) uploads.

Two ways in: a declared ``Content-Length`` over the limit must be refused before any body byte is read
(tested with the real limits, sending only the headers); a chunked body has no length, so the gateway must
count while streaming. REST and Auth hold bodies in memory, so they must stop at the limit: tested on a
second gateway over the same database with a 4 KiB REST limit, never sending the last chunk, so a gateway that
buffered to the end would never answer. Storage spills uploads to disk and keeps nothing past the limit
(tested with a 1 KiB bucket), so no test has to push gigabytes.
"""

from __future__ import annotations

import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.local_supabase.gateway.server import GatewayThread
from lora_pipeline.local_supabase.postgres import free_port

from .conftest import DATASETS, MODELS, anon_headers, service_headers

SMALL_REST_LIMIT = 4096
BUCKET_LIMIT = 1024
REST_LIMIT_MESSAGE = "Request body exceeds {limit} bytes"


def send_partial(port: int, head: str, body: bytes, *, wait: float = 10.0) -> bytes:
    """Send headers and part of a body, never finish it, and return whatever the server answers.

    A server that refuses while streaming answers at once; one that buffers the whole body first never does
    (the test then fails on the empty answer instead of hanging: ``wait`` bounds it).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(head.encode() + body)
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and _complete(data):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return data


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return True


def status_of(data: bytes) -> int:
    assert data, "no answer: the server waited for a body it should have refused"
    return int(data.split(b" ", 2)[1])


def body_of(data: bytes) -> bytes:
    return data.partition(b"\r\n\r\n")[2]


def head(method: str, path: str, headers: dict[str, str], *, length: int | None = None) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


def chunks(total: int, size: int = 1024) -> bytes:
    """``total`` bytes of chunked encoding, without the terminating zero-length chunk.

    Tests send exactly one byte over a limit, so a server that stops there has read everything sent and
    closes cleanly (unread bytes would turn its close into a reset that can swallow the answer).
    """
    out = b""
    while total > 0:
        n = min(size, total)
        out += f"{n:x}\r\n".encode() + b"x" * n + b"\r\n"
        total -= n
    return out


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def assert_healthy(url: str, anon_key: str) -> None:
    assert httpx.get(url + "/", timeout=10).json() == {"status": "ok"}
    rest = httpx.get(url + "/rest/v1/datasets", headers={"apikey": anon_key}, timeout=10)
    assert rest.status_code == 401 and rest.json()["code"] == "42501"


@pytest.fixture(scope="module")
def small_gateway(stack: LocalSupabase) -> Iterator[str]:
    """A second gateway on the same database with a 4 KiB REST body limit (its own, empty object store)."""
    with tempfile.TemporaryDirectory(prefix="lp-small-gateway-") as storage_root:
        config = stack.config.model_copy(
            update={"port": free_port(), "max_body_bytes": SMALL_REST_LIMIT, "storage_root": Path(storage_root)}
        )
        gateway = GatewayThread(config)
        gateway.start()
        try:
            yield config.public_url
        finally:
            gateway.stop()


@pytest.fixture(scope="module")
def small_bucket(stack: LocalSupabase) -> Iterator[str]:
    """A private bucket with a 1 KiB ``file_size_limit`` (removed, objects and all, after the module)."""
    bucket = f"sec-small-{uuid.uuid4().hex[:8]}"
    with stack.connect() as conn:
        conn.execute(
            "insert into storage.buckets (id, name, public, file_size_limit) values (%s, %s, false, %s)",
            (bucket, bucket, BUCKET_LIMIT),
        )
    yield bucket
    with stack.connect() as conn, conn.transaction():
        conn.execute("set local storage.allow_delete_query = 'true'")
        conn.execute("delete from storage.objects where bucket_id = %s", (bucket,))
        conn.execute("delete from storage.buckets where id = %s", (bucket,))


def objects_in(db: psycopg.Connection[Any], bucket: str) -> list[str]:
    return [n for (n,) in db.execute("select name from storage.objects where bucket_id = %s", (bucket,)).fetchall()]


# -- /rest/v1 -----------------------------------------------------------------------------------------------

REST_WRITES = {
    "table insert": ("POST", "/rest/v1/datasets"),
    "table update": ("PATCH", "/rest/v1/datasets?id=eq.00000000-0000-0000-0000-000000000000"),
    "rpc call": ("POST", "/rest/v1/rpc/ingest_metrics"),
}


@pytest.mark.parametrize("write", list(REST_WRITES))
def test_a_declared_rest_body_over_the_limit_is_refused_before_reading(stack: LocalSupabase, write: str) -> None:
    limit = stack.config.max_body_bytes
    method, path = REST_WRITES[write]
    headers = anon_headers(stack) | {"Content-Type": "application/json"}
    answer = send_partial(port_of(stack.url), head(method, path, headers, length=limit + 1), b"[")
    assert status_of(answer) == 413
    assert b'"code": "PGRST102"' in body_of(answer)
    assert REST_LIMIT_MESSAGE.format(limit=limit).encode() in body_of(answer)
    assert_healthy(stack.url, stack.anon_key)


@pytest.mark.parametrize("write", list(REST_WRITES))
def test_a_chunked_rest_body_is_cut_off_at_the_limit(stack: LocalSupabase, small_gateway: str, write: str) -> None:
    method, path = REST_WRITES[write]
    headers = anon_headers(stack) | {"Content-Type": "application/json"}
    answer = send_partial(port_of(small_gateway), head(method, path, headers), chunks(SMALL_REST_LIMIT + 1))
    assert status_of(answer) == 413
    assert REST_LIMIT_MESSAGE.format(limit=SMALL_REST_LIMIT).encode() in body_of(answer)
    assert_healthy(small_gateway, stack.anon_key)


def test_a_real_oversized_rpc_body_is_refused_and_the_gateway_carries_on(stack: LocalSupabase) -> None:
    """64 MiB + 1 of real bytes through an ordinary client, the way a runaway batch would arrive."""
    limit = stack.config.max_body_bytes
    payload = b'{"job_id": "' + b"0" * (limit + 1 - 13) + b'"}'
    response = httpx.post(
        stack.url + "/rest/v1/rpc/ingest_metrics",
        headers=anon_headers(stack) | {"Content-Type": "application/json"},
        content=payload,
        timeout=60,
    )
    assert response.status_code == 413 and response.json()["code"] == "PGRST102"
    assert_healthy(stack.url, stack.anon_key)


# -- /auth/v1 -----------------------------------------------------------------------------------------------

AUTH_LIMIT = 1 << 20
AUTH_ENDPOINTS = {
    "password sign-in": ("/auth/v1/token?grant_type=password", "anon"),
    "sign-up": ("/auth/v1/signup", "anon"),
    "admin create user": ("/auth/v1/admin/users", "service"),
}


@pytest.mark.parametrize("endpoint", list(AUTH_ENDPOINTS))
def test_auth_bodies_over_a_mebibyte_are_refused(stack: LocalSupabase, endpoint: str) -> None:
    path, key = AUTH_ENDPOINTS[endpoint]
    headers = anon_headers(stack) if key == "anon" else service_headers(stack)
    body = b'{"email": "' + b"a" * (AUTH_LIMIT - 10) + b'"}'
    assert len(body) > AUTH_LIMIT
    response = httpx.post(stack.url + path, headers=headers | {"Content-Type": "application/json"}, content=body)
    assert response.status_code == 413
    assert response.json() == {
        "code": 413,
        "error_code": "request_entity_too_large",
        "msg": f"Request body too large (max {AUTH_LIMIT} bytes)",
    }
    chunked = send_partial(
        port_of(stack.url),
        head("POST", path, headers | {"Content-Type": "application/json"}),
        chunks(AUTH_LIMIT + 1, size=65536),
    )
    assert status_of(chunked) == 413
    assert_healthy(stack.url, stack.anon_key)


# -- /storage/v1 --------------------------------------------------------------------------------------------


def _storage_refusal(data: bytes) -> dict[str, Any]:
    import json

    assert status_of(data) == 400, data[:300]
    body: dict[str, Any] = json.loads(body_of(data))
    return body


TOO_LARGE = {
    "statusCode": "413",
    "code": "EntityTooLarge",
    "error": "Payload too large",
    "message": "The object exceeded the maximum allowed size",
}


@pytest.mark.parametrize(("bucket", "limit"), [(DATASETS, 524_288_000), (MODELS, 5_368_709_120)])
def test_a_declared_upload_over_a_real_bucket_limit_is_refused_before_reading(
    stack: LocalSupabase, db: psycopg.Connection[Any], bucket: str, limit: int
) -> None:
    name = f"{uuid.uuid4()}/huge.bin"
    headers = service_headers(stack) | {"Content-Type": "application/json"}
    answer = send_partial(
        port_of(stack.url), head("POST", f"/storage/v1/object/{bucket}/{name}", headers, length=limit + 1), b"{"
    )
    assert _storage_refusal(answer) == TOO_LARGE
    assert name not in objects_in(db, bucket)
    assert_healthy(stack.url, stack.anon_key)


@pytest.mark.parametrize("how", ["declared", "chunked", "multipart"])
def test_an_upload_over_the_bucket_limit_is_refused_and_leaves_nothing(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], small_bucket: str, how: str
) -> None:
    staging = stack.config.storage_root / "objects" / "staging"
    staged_before = set(staging.iterdir()) if staging.exists() else set()
    name = f"{how}/too-big.bin"
    path = f"/storage/v1/object/{small_bucket}/{name}"
    headers = service_headers(stack)
    if how == "declared":
        answer = send_partial(port_of(stack.url), head("POST", path, headers, length=2 * BUCKET_LIMIT), b"x" * 2048)
        assert _storage_refusal(answer) == TOO_LARGE
    elif how == "chunked":
        # Storage reads a length-less upload to its end (keeping nothing past the limit, so memory and disk stay
        # bounded) and then answers, so that clients which send the whole body before reading get the 413.
        body = chunks(4 * BUCKET_LIMIT, size=512) + b"0\r\n\r\n"
        answer = send_partial(port_of(stack.url), head("POST", path, headers), body)
        assert _storage_refusal(answer) == TOO_LARGE
    else:
        response = http.post(path, headers=headers, files={"file": ("too-big.bin", b"x" * (2 * BUCKET_LIMIT))})
        assert response.status_code == 400 and response.json() == TOO_LARGE
    assert name not in objects_in(db, small_bucket)
    assert (set(staging.iterdir()) if staging.exists() else set()) <= staged_before
    exact = http.post(
        f"/storage/v1/object/{small_bucket}/{how}/exact.bin", headers=headers, content=b"x" * BUCKET_LIMIT
    )
    assert exact.status_code == 200, exact.text
    assert_healthy(stack.url, stack.anon_key)


def _tus_headers(stack: LocalSupabase, bucket: str, name: str, length: int) -> dict[str, str]:
    import base64

    metadata = ",".join(
        f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in (("bucketName", bucket), ("objectName", name))
    )
    return service_headers(stack) | {
        "Tus-Resumable": "1.0.0",
        "Upload-Length": str(length),
        "Upload-Metadata": metadata,
    }


@pytest.mark.parametrize(("bucket", "limit"), [(DATASETS, 524_288_000), (None, BUCKET_LIMIT)])
def test_a_resumable_upload_declared_over_the_limit_is_refused_at_creation(
    stack: LocalSupabase, http: httpx.Client, small_bucket: str, bucket: str | None, limit: int
) -> None:
    target = bucket or small_bucket
    response = http.post(
        "/storage/v1/upload/resumable", headers=_tus_headers(stack, target, f"{uuid.uuid4()}/a.bin", limit + 1)
    )
    assert response.status_code == 413 and response.text == "Maximum size exceeded\n"
    assert "location" not in response.headers


@pytest.mark.parametrize("how", ["declared", "chunked"])
def test_resumable_chunks_beyond_the_upload_length_are_refused(
    stack: LocalSupabase, http: httpx.Client, db: psycopg.Connection[Any], small_bucket: str, how: str
) -> None:
    name = f"tus-{how}/{uuid.uuid4()}.bin"
    created = http.post("/storage/v1/upload/resumable", headers=_tus_headers(stack, small_bucket, name, BUCKET_LIMIT))
    assert created.status_code == 201, created.text
    location = httpx.URL(created.headers["location"]).raw_path.decode()
    patch = service_headers(stack) | {
        "Tus-Resumable": "1.0.0",
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    if how == "declared":
        answer = send_partial(port_of(stack.url), head("PATCH", location, patch, length=2 * BUCKET_LIMIT), b"x" * 2048)
        assert status_of(answer) == 413 and body_of(answer) == b"upload's size exceeded\n"
    else:
        answer = send_partial(port_of(stack.url), head("PATCH", location, patch), chunks(BUCKET_LIMIT + 1, size=512))
        assert status_of(answer) == 413 and body_of(answer) == b"Maximum size exceeded\n"
    assert name not in objects_in(db, small_bucket)
    assert_healthy(stack.url, stack.anon_key)


def test_storage_json_bodies_over_two_mebibytes_are_refused(stack: LocalSupabase, http: httpx.Client) -> None:
    paths = [f"{uuid.uuid4()}/{'p' * 200}" for _ in range(12_000)]
    response = http.post(
        f"/storage/v1/object/sign/{DATASETS}", headers=service_headers(stack), json={"expiresIn": 60, "paths": paths}
    )
    assert response.status_code == 400
    assert response.json() == {
        "statusCode": "413",
        "code": "EntityTooLarge",
        "error": "Payload too large",
        "message": "The request body exceeded the maximum allowed size",
    }
    assert_healthy(stack.url, stack.anon_key)
