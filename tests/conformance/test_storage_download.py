"""Downloads, info and exists: headers, ranges, RLS on private buckets, public buckets without a JWT
(research §5.1, §5.3, §5.5; checklist §9 Storage: download, public bucket, exists lines)."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError
from tests.conformance.test_storage_support import StorageWorld, error_body, new_user, raw, uid, world

__all__ = ["world"]

DATA = b"0123456789abcdef"


def _stored(target: Any, world: StorageWorld, *, public: bool = False, key: str = "docs/file.txt") -> str:
    bucket_id = world.bucket(public=public)
    response = raw(target, target.service_role_key).post(
        f"/object/{bucket_id}/{key}", content=DATA, headers={"content-type": "text/plain"}
    )
    assert response.status_code == 200, response.text
    return bucket_id


def test_download_headers_ranges_and_attachment(target: Any, world: StorageWorld) -> None:
    bucket_id = _stored(target, world)
    http = raw(target, target.service_role_key)
    full = http.get(f"/object/{bucket_id}/docs/file.txt")
    assert (full.status_code, full.content) == (200, DATA)
    etag = f'"{hashlib.md5(DATA, usedforsecurity=False).hexdigest()}"'
    assert full.headers["content-type"] == "text/plain"
    assert full.headers["etag"] == etag
    assert full.headers["content-length"] == str(len(DATA))
    assert full.headers["accept-ranges"] == "bytes"
    assert "last-modified" in full.headers
    assert full.headers["cache-control"] == "no-cache"  # a raw body without Cache-Control
    part = http.get(f"/object/{bucket_id}/docs/file.txt", headers={"range": "bytes=2-5"})
    assert (part.status_code, part.content, part.headers["content-range"]) == (206, b"2345", "bytes 2-5/16")
    tail = http.get(f"/object/{bucket_id}/docs/file.txt", headers={"range": "bytes=-3"})
    assert (tail.status_code, tail.content) == (206, b"def")
    outside = http.get(f"/object/{bucket_id}/docs/file.txt", headers={"range": "bytes=100-200"})
    assert (outside.status_code, outside.json()["statusCode"]) == (416, "416")
    attachment = http.get(f"/object/{bucket_id}/docs/file.txt", params={"download": ""})
    assert attachment.headers["content-disposition"] == "attachment;"
    named = http.get(f"/object/{bucket_id}/docs/file.txt", params={"download": "my file.txt"})
    assert named.headers["content-disposition"].startswith("attachment; filename=my%20file.txt")
    assert http.get(f"/object/{bucket_id}/docs/file.txt", headers={"if-none-match": etag}).status_code == 304
    head = http.head(f"/object/{bucket_id}/docs/file.txt")
    assert (head.status_code, head.content, head.headers["etag"]) == (200, b"", etag)


def test_cache_control_from_the_upload_option(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = world.bucket()
    sb.run(lambda c: c.storage.from_(bucket_id).upload("c.txt", b"c", {"cache-control": "120"}), service)
    response = raw(sb.target, sb.target.service_role_key).get(f"/object/{bucket_id}/c.txt")
    assert response.headers["cache-control"] == "max-age=120"


def test_private_object_is_not_found_for_anon_and_other_users(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    alice, bob = new_user(sb.target), new_user(sb.target)
    key = f"{uid(alice)}/secret.txt"
    sb.run(lambda c: c.storage.from_(bucket_id).upload(key, b"secret"), sb.user(alice))
    assert sb.run(lambda c: c.storage.from_(bucket_id).download(key), sb.user(alice)) == b"secret"
    for client in (sb.anon, sb.user(bob)):
        with pytest.raises(StorageApiError) as hidden:
            sb.run(lambda c: c.storage.from_(bucket_id).download(key), client)
        assert (hidden.value.status, hidden.value.code, hidden.value.message) == (
            "404",
            "not_found",
            "Object not found",
        )
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        response = httpx.get(f"{sb.target.url}/storage/v1/object/{bucket_id}/{key}", headers=headers)
        assert (error_body(response)["statusCode"], error_body(response)["message"]) == ("404", "Bucket not found")


def test_public_bucket_needs_no_jwt_and_serves_its_public_url(sb: Any, world: StorageWorld) -> None:
    bucket_id = _stored(sb.target, world, public=True)
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        response = httpx.get(f"{sb.target.url}/storage/v1/object/{bucket_id}/docs/file.txt", headers=headers)
        assert (response.status_code, response.content) == (200, DATA)
    url = sb.await_(sb.anon.storage.from_(bucket_id).get_public_url("docs/file.txt"))
    assert url.startswith(f"{sb.target.url}/storage/v1/object/public/{bucket_id}/")
    assert httpx.get(url).content == DATA
    assert httpx.get(url, params={"download": ""}).headers["content-disposition"] == "attachment;"
    info = httpx.get(f"{sb.target.url}/storage/v1/object/info/public/{bucket_id}/docs/file.txt")
    assert info.json()["size"] == len(DATA)


def test_public_url_of_a_private_bucket_is_bucket_not_found(sb: Any, world: StorageWorld) -> None:
    bucket_id = _stored(sb.target, world)
    url = sb.await_(sb.anon.storage.from_(bucket_id).get_public_url("docs/file.txt"))
    response = httpx.get(url)
    assert response.status_code == 400
    assert (error_body(response)["statusCode"], error_body(response)["error"]) == ("404", "Bucket not found")


def test_info_and_exists(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = _stored(sb.target, world)
    info = sb.run(lambda c: c.storage.from_(bucket_id).info("docs/file.txt"), service)
    assert {
        "id",
        "name",
        "version",
        "bucket_id",
        "size",
        "content_type",
        "cache_control",
        "etag",
        "metadata",
        "last_modified",
        "created_at",
    } <= set(info)
    assert (info["name"], info["size"], info["content_type"]) == ("docs/file.txt", len(DATA), "text/plain")
    assert sb.run(lambda c: c.storage.from_(bucket_id).exists("docs/file.txt"), service) is True
    assert sb.run(lambda c: c.storage.from_(bucket_id).exists("docs/none.txt"), service) is False
    with pytest.raises(StorageApiError) as no_bucket:
        sb.run(lambda c: c.storage.from_("conf-storage-missing").exists("x.txt"), service)
    assert (no_bucket.value.status, no_bucket.value.code) == ("404", "Bucket not found")


def test_authenticated_routes_need_a_valid_jwt(target: Any, world: StorageWorld) -> None:
    bucket_id = _stored(target, world)
    path = f"/object/authenticated/{bucket_id}/docs/file.txt"
    missing = httpx.get(f"{target.url}/storage/v1{path}")
    assert (error_body(missing)["statusCode"], error_body(missing)["error"]) == ("400", "InvalidRequest")
    expired = jwt.encode({"role": "service_role", "exp": int(time.time()) - 60}, _secret(target), "HS256")
    denied = raw(target, expired).get(path)
    assert error_body(denied) | {} == {
        "statusCode": "403",
        "code": "AccessDenied",
        "error": "Unauthorized",
        "message": '"exp" claim timestamp check failed',
    }
    assert raw(target, target.service_role_key).get(path).content == DATA


def _secret(target: Any) -> str:
    if not target.is_local:
        pytest.skip("needs the project's JWT secret")
    return str(target.stack.jwt_secret)
