"""Uploads: the permission test runs the real INSERT/upsert as the caller, limits and MIME rules as the bucket
says, keys that could escape are refused before anything is written (research §5.3-5.4, §5.7; checklist §9
Storage: upload lines)."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from storage3.exceptions import StorageApiError
from tests.conformance.test_storage_support import StorageWorld, error_body, new_user, raw, uid, world

__all__ = ["world"]

METADATA_KEYS = {"eTag", "size", "mimetype", "cacheControl", "lastModified", "contentLength", "httpStatusCode"}


def _fails(sb: Any, call: Any, client: Any) -> StorageApiError:
    with pytest.raises(StorageApiError) as failure:
        sb.run(call, client)
    return failure.value


def test_upload_without_any_policy_is_403_row_level_security(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    session = new_user(sb.target)
    error = _fails(sb, lambda c: c.storage.from_(bucket_id).upload(f"{uid(session)}/a.txt", b"x"), sb.user(session))
    assert (error.status, error.code, error.message) == (
        "403",
        "Unauthorized",
        "new row violates row-level security policy",
    )
    assert world.rows(bucket_id) == []


def test_lora_datasets_refuses_user_b_in_user_a_folder(sb: Any) -> None:
    alice, bob = new_user(sb.target), new_user(sb.target)
    datasets = "lora-datasets"
    key = f"{uid(alice)}/train.jsonl"
    sb.run(
        lambda c: c.storage.from_(datasets).upload(key, b'{"text": "hi"}\n', {"content-type": "application/jsonl"}),
        sb.user(alice),
    )
    error = _fails(
        sb,
        lambda c: c.storage.from_(datasets).upload(
            f"{uid(alice)}/evil.jsonl", b"{}", {"content-type": "application/jsonl"}
        ),
        sb.user(bob),
    )
    assert (error.status, error.code) == ("403", "Unauthorized")
    hidden = _fails(sb, lambda c: c.storage.from_(datasets).download(key), sb.user(bob))
    assert (hidden.status, hidden.code) == ("404", "not_found")
    sb.run(
        lambda c: c.storage.from_(datasets).upload(
            f"{uid(bob)}/own.jsonl", b"{}", {"content-type": "application/jsonl"}
        ),
        sb.user(bob),
    )
    rows = sb.target.sql(
        "select name, owner::text, owner_id from storage.objects where bucket_id = %s and owner_id in (%s, %s)",
        (datasets, uid(alice), uid(bob)),
    )
    assert sorted(rows) == sorted([(key, uid(alice), uid(alice)), (f"{uid(bob)}/own.jsonl", uid(bob), uid(bob))])


def test_duplicate_is_409_and_upsert_needs_select_and_update(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "insert")
    session = new_user(sb.target)
    client, key = sb.user(session), f"{uid(session)}/model.bin"
    files = lambda c: c.storage.from_(bucket_id)  # noqa: E731
    sb.run(lambda c: files(c).upload(key, b"first"), client)
    duplicate = _fails(sb, lambda c: files(c).upload(key, b"second"), client)
    assert (duplicate.status, duplicate.code, duplicate.message) == ("409", "Duplicate", "The resource already exists")
    upsert_denied = _fails(sb, lambda c: files(c).upload(key, b"second", {"upsert": "true"}), client)
    assert upsert_denied.status == "403"
    world.owner_folder(bucket_id, "select", "update")
    sb.run(lambda c: files(c).upload(key, b"second", {"upsert": "true"}), client)
    assert sb.run(lambda c: files(c).download(key), client) == b"second"
    sb.run(lambda c: files(c).update(key, b"third"), client)
    assert sb.run(lambda c: files(c).download(key), client) == b"third"
    assert len(world.rows(bucket_id)) == 1


def test_row_owner_and_metadata_after_upload(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "insert")
    session = new_user(sb.target)
    data = b"hello storage"
    sb.run(
        lambda c: c.storage.from_(bucket_id).upload(
            f"{uid(session)}/notes.txt", data, {"metadata": {"purpose": "test"}}
        ),
        sb.user(session),
    )
    [(name, owner, owner_id, metadata, user_metadata, version)] = world.rows(bucket_id)
    assert (name, str(owner), owner_id) == (f"{uid(session)}/notes.txt", uid(session), uid(session))
    assert set(metadata) == METADATA_KEYS
    assert (metadata["size"], metadata["contentLength"], metadata["mimetype"], metadata["cacheControl"]) == (
        len(data),
        len(data),
        "text/plain",
        "max-age=3600",
    )
    assert metadata["eTag"] == f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
    assert user_metadata == {"purpose": "test"}
    assert version


def test_size_limit_is_413_and_nothing_is_stored(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = world.bucket(file_size_limit=10)
    sb.run(lambda c: c.storage.from_(bucket_id).upload("fits.txt", b"0123456789"), service)
    error = _fails(sb, lambda c: c.storage.from_(bucket_id).upload("big.txt", b"01234567890"), service)
    assert (error.status, error.code, error.message) == (
        "413",
        "Payload too large",
        "The object exceeded the maximum allowed size",
    )
    assert [row[0] for row in world.rows(bucket_id)] == ["fits.txt"]


def test_known_content_length_over_the_limit_is_refused_up_front(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket(file_size_limit=10)
    response = raw(target, target.service_role_key).post(
        f"/object/{bucket_id}/raw.bin", content=b"x" * 11, headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 400
    assert error_body(response)["statusCode"] == "413"
    assert world.rows(bucket_id) == []


def test_global_limit_applies_when_the_bucket_has_none(target: Any, world: StorageWorld) -> None:
    """A declared body above the global limit (5 GiB locally) is refused before a byte is read."""
    bucket_id = world.bucket()
    parts = urlparse(target.url)
    head = (
        f"POST /storage/v1/object/{bucket_id}/huge.bin HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {target.service_role_key}\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Length: {6 * 1024**4}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=10) as connection:
        connection.sendall(head.encode())
        reply = _read_reply(connection)
    status_line, _, body = reply.partition("\r\n\r\n")
    assert status_line.startswith("HTTP/1.1 400")
    assert json.loads(body)["statusCode"] == "413"
    assert world.rows(bucket_id) == []


def test_streamed_body_over_the_limit_is_413_after_the_transfer(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket(file_size_limit=100_000)

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"y" * 10_000

    response = raw(target, target.service_role_key).post(f"/object/{bucket_id}/stream.bin", content=chunks())
    assert error_body(response)["statusCode"] == "413"
    assert world.rows(bucket_id) == []


def test_allowed_mime_types_415_and_wildcards(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = world.bucket(allowed_mime_types=["image/*", "application/json"])
    files = lambda c: c.storage.from_(bucket_id)  # noqa: E731
    error = _fails(sb, lambda c: files(c).upload("a.txt", b"x", {"content-type": "text/plain"}), service)
    assert (error.status, error.code, error.message) == (
        "415",
        "invalid_mime_type",
        "mime type text/plain is not supported",
    )
    sb.run(lambda c: files(c).upload("a.png", b"png", {"content-type": "image/png"}), service)
    sb.run(lambda c: files(c).upload("a.json", b"{}", {"content-type": "application/json"}), service)
    assert [row[0] for row in world.rows(bucket_id)] == ["a.json", "a.png"]


def test_raw_body_upload_takes_type_cache_control_and_metadata_from_headers(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    user_metadata = base64.b64encode(json.dumps({"k": "v"}).encode()).decode()
    response = raw(target, target.service_role_key).post(
        f"/object/{bucket_id}/dir/data.json",
        content=b'{"a": 1}',
        headers={"content-type": "application/json", "cache-control": "max-age=60", "x-metadata": user_metadata},
    )
    assert response.status_code == 200, response.text
    assert response.json()["Key"] == f"{bucket_id}/dir/data.json"
    [(_, _, _, metadata, stored_user_metadata, _)] = world.rows(bucket_id)
    assert (metadata["mimetype"], metadata["cacheControl"], stored_user_metadata) == (
        "application/json",
        "max-age=60",
        {"k": "v"},
    )


@pytest.mark.parametrize(
    "path",
    [
        "%2E%2E/escape.txt",
        "a/%2E%2E/%2E%2E/escape.txt",
        "/abs.txt",
        "a//b.txt",
        "a/%2E/b.txt",
        "a%00b.txt",
        "caf%C3%A9.txt",
        "%2E%2E",
    ],
)
def test_path_traversal_and_invalid_keys_are_refused_before_anything_is_written(
    target: Any, world: StorageWorld, path: str
) -> None:
    bucket_id = world.bucket()
    before = _files_under(target)
    response = raw(target, target.service_role_key).post(
        f"/object/{bucket_id}/{path}", content=b"pwned", headers={"content-type": "text/plain"}
    )
    body = error_body(response)
    assert (response.status_code, body["statusCode"], body["error"]) == (400, "400", "InvalidKey")
    assert world.rows(bucket_id) == []
    assert _files_under(target) == before


def test_storage3_refuses_dot_segments_client_side(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = world.bucket()
    with pytest.raises(ValueError, match="dot segments"):
        sb.run(lambda c: c.storage.from_(bucket_id).upload("../x.txt", b"x"), service)


def test_large_upload_round_trips_through_a_file(sb: Any, world: StorageWorld, tmp_path: Path) -> None:
    service = sb.service
    bucket_id = world.bucket()
    data = uuid.uuid4().bytes * (6 * 1024 * 1024 // 16)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    sb.run(
        lambda c: c.storage.from_(bucket_id).upload("big.bin", path, {"content-type": "application/octet-stream"}),
        service,
    )
    info = sb.run(lambda c: c.storage.from_(bucket_id).info("big.bin"), service)
    assert (info["size"], info["etag"]) == (len(data), f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"')
    assert sb.run(lambda c: c.storage.from_(bucket_id).download("big.bin"), service) == data


def _read_reply(connection: socket.socket) -> str:
    """One HTTP response (headers and its Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def _files_under(target: Any) -> set[str]:
    """Every file of the embedded stack's storage root (empty against a real project)."""
    if not target.is_local:
        return set()
    root = target.stack.config.storage_root
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}
