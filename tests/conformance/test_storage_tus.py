"""Resumable (TUS 1.0.0) uploads at ``/storage/v1/upload/resumable``: storage3 has no TUS client, so these
speak the protocol with httpx (and a raw socket to cut a PATCH short). The same permission test and limits
as a standard upload apply; state lives on disk, so uploads resume across disconnects and gateway restarts
(research §8 #7; tus-node-server behaviour as Supabase configures it)."""

from __future__ import annotations

import base64
import secrets
import socket
import time
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from tests.conformance.test_storage_job_tokens import _job
from tests.conformance.test_storage_support import StorageWorld, error_body, new_user, raw, uid, world

__all__ = ["world"]

TEXT = "text/plain"


def _metadata(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


class Tus:
    """A minimal TUS client on top of httpx."""

    def __init__(self, target: Any, token: str | None, **headers: str) -> None:
        self.http = raw(target, token, **{"Tus-Resumable": "1.0.0"}, **headers)

    def create(
        self,
        bucket_id: str,
        name: str,
        length: int,
        *,
        content_type: str = TEXT,
        body: bytes | None = None,
        path: str = "/upload/resumable",
        **extra: str,
    ) -> httpx.Response:
        metadata = _metadata(
            bucketName=bucket_id, objectName=name, contentType=content_type, cacheControl="3600", **extra
        )
        headers = {"Upload-Length": str(length), "Upload-Metadata": metadata}
        if body is not None:
            headers["Content-Type"] = "application/offset+octet-stream"
        return self.http.post(path, headers=headers, content=body)

    def patch(self, url: str, offset: int, data: bytes, **headers: str) -> httpx.Response:
        return self.http.patch(
            url,
            content=data,
            headers={"Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream", **headers},
        )

    def offset(self, url: str) -> int:
        response = self.http.head(url)
        assert response.status_code == 200, response.text
        return int(response.headers["upload-offset"])


@pytest.fixture
def owner_bucket(world: StorageWorld) -> str:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    return bucket_id


def test_options_advertises_the_protocol_without_auth(target: Any) -> None:
    response = httpx.options(f"{target.url}/storage/v1/upload/resumable")
    assert response.status_code == 204
    assert response.headers["tus-version"] == "1.0.0"
    assert {"creation", "termination"} <= set(response.headers["tus-extension"].split(","))
    assert int(response.headers["tus-max-size"]) > 0


def test_create_patch_head_patch_then_the_object_exists(target: Any, owner_bucket: str) -> None:
    session = new_user(target)
    tus = Tus(target, session["access_token"])
    key, data = f"{uid(session)}/resumable.txt", b"0123456789"
    created = tus.create(owner_bucket, key, len(data), metadata='{"source": "tus"}')
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    assert url.startswith(f"{target.url}/storage/v1/upload/resumable/")
    decoded = base64.urlsafe_b64decode(url.rsplit("/", 1)[1] + "==").decode()
    assert decoded.startswith(f"{owner_bucket}/{key}/")
    first = tus.patch(url, 0, data[:4])
    assert (first.status_code, first.headers["upload-offset"]) == (204, "4")
    head = tus.http.head(url)
    assert (head.headers["upload-offset"], head.headers["upload-length"], head.headers["cache-control"]) == (
        "4",
        "10",
        "no-store",
    )
    assert "bucketName" in head.headers["upload-metadata"]
    assert target.sql("select count(*) from storage.objects where bucket_id = %s", (owner_bucket,)) == [(0,)]
    last = tus.patch(url, 4, data[4:])
    assert (last.status_code, last.headers["upload-offset"], last.headers["tus-complete"]) == (204, "10", "1")
    downloaded = raw(target, session["access_token"]).get(f"/object/{owner_bucket}/{key}")
    assert (downloaded.content, downloaded.headers["cache-control"]) == (data, "max-age=3600")
    [(owner_id, mimetype, user_metadata)] = target.sql(
        "select owner_id, metadata->>'mimetype', user_metadata from storage.objects where bucket_id = %s",
        (owner_bucket,),
    )
    assert (owner_id, mimetype, user_metadata) == (uid(session), TEXT, {"source": "tus"})
    assert tus.offset(url) == len(data)
    # Terminating runs the (non-upsert) permission test first, as Supabase does: the key now exists.
    assert tus.http.delete(url).status_code == 409


def test_protocol_errors(target: Any, owner_bucket: str) -> None:
    session = new_user(target)
    tus = Tus(target, session["access_token"])
    url = tus.create(owner_bucket, f"{uid(session)}/p.txt", 10).headers["location"]
    conflict = tus.patch(url, 3, b"abc")
    assert (conflict.status_code, conflict.text) == (409, "Upload-Offset conflict\n")
    too_long = tus.patch(url, 0, b"x" * 11)
    assert (too_long.status_code, too_long.text) == (413, "upload's size exceeded\n")
    no_version = httpx.patch(
        url, content=b"a", headers={"Authorization": f"Bearer {session['access_token']}", "Upload-Offset": "0"}
    )
    assert (no_version.status_code, no_version.text) == (412, "Tus-Resumable Required\n")
    assert tus.http.head(url[:-4] + "AAAA").status_code in (400, 404)
    unauthenticated = httpx.post(f"{target.url}/storage/v1/upload/resumable", headers={"Tus-Resumable": "1.0.0"})
    assert error_body(unauthenticated)["statusCode"] == "400"  # Storage's JWT check runs before the tus server


def test_interrupted_patch_resumes_from_the_servers_offset(target: Any, owner_bucket: str) -> None:
    session = new_user(target)
    tus = Tus(target, session["access_token"])
    key, data = f"{uid(session)}/interrupted.bin", secrets.token_bytes(300_000)
    url = tus.create(owner_bucket, key, len(data), content_type="application/octet-stream").headers["location"]
    _send_and_hang_up(url, session["access_token"], data, sent=120_000)
    offset = _settled_offset(tus, url)
    assert 0 < offset <= 120_000
    finished = tus.patch(url, offset, data[offset:])
    assert finished.headers.get("tus-complete") == "1", finished.text
    assert raw(target, session["access_token"]).get(f"/object/{owner_bucket}/{key}").content == data


def test_upload_resumes_after_a_gateway_restart(local_only: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    tus = Tus(local_only, local_only.service_role_key)
    data = b"before-restart|after-restart"
    url = tus.create(bucket_id, "restart.txt", len(data)).headers["location"]
    assert tus.patch(url, 0, data[:15]).headers["upload-offset"] == "15"
    local_only.stack.restart_gateway()
    tus = Tus(local_only, local_only.service_role_key)
    assert tus.offset(url) == 15
    assert tus.patch(url, 15, data[15:]).headers["tus-complete"] == "1"
    assert raw(local_only, local_only.service_role_key).get(f"/object/{bucket_id}/restart.txt").content == data


def test_truncated_upload_leaves_no_object_and_can_be_aborted(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    tus = Tus(target, target.service_role_key)
    url = tus.create(bucket_id, "partial.txt", 100).headers["location"]
    assert tus.patch(url, 0, b"x" * 50).headers["upload-offset"] == "50"
    assert world.rows(bucket_id) == []
    missing = raw(target, target.service_role_key).get(f"/object/{bucket_id}/partial.txt")
    assert error_body(missing)["statusCode"] == "404"
    assert tus.http.delete(url).status_code == 204
    assert tus.http.head(url).status_code == 404
    assert world.rows(bucket_id) == []


def test_limits_and_mime_types_are_refused_at_creation(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket(file_size_limit=100, allowed_mime_types=[TEXT])
    tus = Tus(target, target.service_role_key)
    too_big = tus.create(bucket_id, "big.txt", 101)
    assert (too_big.status_code, too_big.text) == (413, "Maximum size exceeded\n")
    wrong_type = tus.create(bucket_id, "img.png", 10, content_type="image/png")
    assert (wrong_type.status_code, wrong_type.text) == (415, "mime type image/png is not supported")
    unlimited = world.bucket()
    above_global = tus.create(unlimited, "huge.bin", 6 * 1024**4)
    assert (above_global.status_code, above_global.text) == (413, "Maximum size exceeded\n")
    missing_bucket = tus.create("conf-storage-missing", "x.txt", 10)
    assert (missing_bucket.status_code, missing_bucket.text) == (404, "Bucket not found")
    assert world.rows(bucket_id) == []


def test_permission_test_runs_as_the_caller(target: Any, owner_bucket: str) -> None:
    alice, bob = new_user(target), new_user(target)
    denied = Tus(target, bob["access_token"]).create(owner_bucket, f"{uid(alice)}/x.txt", 10)
    assert (denied.status_code, denied.text) == (403, "new row violates row-level security policy")
    tus = Tus(target, alice["access_token"])
    url = tus.create(owner_bucket, f"{uid(alice)}/x.txt", 2).headers["location"]
    stolen = Tus(target, bob["access_token"]).patch(url, 0, b"hi")
    assert stolen.status_code == 403  # every PATCH runs the permission test again, as its caller
    assert tus.patch(url, 0, b"hi").headers["tus-complete"] == "1"
    duplicate = tus.create(owner_bucket, f"{uid(alice)}/x.txt", 2)
    assert (duplicate.status_code, duplicate.text) == (409, "The resource already exists")


@pytest.mark.parametrize(
    "name", ["../escape.txt", "a/../../escape.txt", "/abs.txt", "a/./b.txt", "a\x00b", "naïve.txt"]
)
def test_traversal_object_names_are_refused(target: Any, world: StorageWorld, name: str) -> None:
    bucket_id = world.bucket()
    response = Tus(target, target.service_role_key).create(bucket_id, name, 5)
    assert response.status_code == 400
    assert response.text.startswith("Invalid key")
    assert world.rows(bucket_id) == []


def test_pod_uploads_its_adapter_resumably_with_the_job_token(target: Any) -> None:
    session = new_user(target)
    job_id, token, _ = _job(target, uid(session))
    key, data = f"{uid(session)}/{job_id}/adapter.safetensors", secrets.token_bytes(1000)
    pod = Tus(target, target.anon_key, **{"x-lora-job-id": job_id, "x-lora-job-token": token})
    url = pod.create("lora-models", key, len(data), content_type="application/octet-stream").headers["location"]
    assert pod.patch(url, 0, data).headers["tus-complete"] == "1"
    wrong = Tus(target, target.anon_key, **{"x-lora-job-id": job_id, "x-lora-job-token": "guess"})
    assert (
        wrong.create(
            "lora-models", f"{uid(session)}/{job_id}/other.bin", 5, content_type="application/octet-stream"
        ).status_code
        == 403
    )


def test_creation_with_upload_and_signed_resumable_upload(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    service = Tus(target, target.service_role_key)
    one_shot = service.create(bucket_id, "oneshot.txt", 3, body=b"abc")
    assert (one_shot.status_code, one_shot.headers["upload-offset"], one_shot.headers["tus-complete"]) == (
        201,
        "3",
        "1",
    )
    http = raw(target, target.service_role_key)
    assert http.get(f"/object/{bucket_id}/oneshot.txt").content == b"abc"
    token = http.post(f"/object/upload/sign/{bucket_id}/signed.txt").json()["token"]
    signed = Tus(target, None, **{"x-signature": token})
    url = signed.create(bucket_id, "signed.txt", 4, path="/upload/resumable/sign").headers["location"]
    assert "/upload/resumable/sign/" in url
    assert signed.patch(url, 0, b"sign").headers["tus-complete"] == "1"
    assert http.get(f"/object/{bucket_id}/signed.txt").content == b"sign"
    other = signed.create(bucket_id, "not-signed.txt", 4, path="/upload/resumable/sign")
    assert (other.status_code, other.text) == (400, "Invalid signature")


def _send_and_hang_up(url: str, token: str, data: bytes, *, sent: int) -> None:
    """A PATCH that announces all of ``data`` but sends only ``sent`` bytes before the connection drops."""
    parts = urlparse(url)
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
        "Tus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port or 80)) as connection:
        connection.sendall(head.encode() + data[:sent])
        time.sleep(0.2)


def _settled_offset(tus: Tus, url: str) -> int:
    """The server's offset once the interrupted PATCH has been wound up."""
    previous, deadline = -1, time.monotonic() + 5
    while time.monotonic() < deadline:
        offset = tus.offset(url)
        if offset == previous and offset > 0:
            return offset
        previous = offset
        time.sleep(0.1)
    return previous
