"""Signed URLs: issued only where the signer has access, bound to ``bucket/path`` and a scope, served without
a JWT; signed upload URLs carry the signer's owner and upsert flag (research §5.6; checklist §9 Storage:
signed URL line)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError
from storage3.types import CreateSignedUploadUrlOptions
from tests.conformance.test_storage_support import StorageWorld, error_body, new_user, raw, uid, world

__all__ = ["world"]


def _token_of(url: str) -> str:
    return parse_qs(urlparse(url).query)["token"][0]


def _private_object(sb: Any, world: StorageWorld) -> tuple[str, dict[str, Any], Any, str]:
    """A private bucket with owner-folder policies and one object of a new user."""
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    session = new_user(sb.target)
    client = sb.user(session)
    key = f"{uid(session)}/weights.bin"
    sb.run(lambda c: c.storage.from_(bucket_id).upload(key, b"weights"), client)
    return bucket_id, session, client, key


def test_signed_url_downloads_without_auth_bound_to_its_path(sb: Any, world: StorageWorld) -> None:
    bucket_id, _, client, key = _private_object(sb, world)
    signed = sb.run(lambda c: c.storage.from_(bucket_id).create_signed_url(key, 60), client)
    url = signed["signedURL"]
    assert url.startswith(f"{sb.target.url}/storage/v1/object/sign/{bucket_id}/")
    payload = jwt.decode(_token_of(url), options={"verify_signature": False})
    assert (payload["url"], payload["scope"], payload["exp"] - payload["iat"]) == (f"{bucket_id}/{key}", "download", 60)
    response = httpx.get(url)
    assert (response.status_code, response.content) == (200, b"weights")
    assert "expires" in response.headers
    with_download = sb.run(lambda c: c.storage.from_(bucket_id).create_signed_url(key, 60, {"download": True}), client)
    assert httpx.get(with_download["signedURL"]).headers["content-disposition"] == "attachment;"
    tampered = httpx.get(url.replace("/weights.bin?", "/other.bin?"))
    assert (error_body(tampered)["statusCode"], error_body(tampered)["error"]) == ("400", "InvalidSignature")


def test_signing_needs_select_on_the_object(sb: Any, world: StorageWorld) -> None:
    bucket_id, _, _, key = _private_object(sb, world)
    stranger = sb.user(new_user(sb.target))
    with pytest.raises(StorageApiError) as denied:
        sb.run(lambda c: c.storage.from_(bucket_id).create_signed_url(key, 60), stranger)
    assert (denied.value.status, denied.value.code) == ("404", "not_found")


def test_bulk_signed_urls_report_invisible_paths(sb: Any, world: StorageWorld) -> None:
    bucket_id, _, client, key = _private_object(sb, world)
    service = sb.service
    sb.run(lambda c: c.storage.from_(bucket_id).upload("someone-else/x.bin", b"x"), service)
    results = sb.run(
        lambda c: c.storage.from_(bucket_id).create_signed_urls([key, "missing.bin", "someone-else/x.bin"], 60), client
    )
    assert [r["path"] for r in results] == [key, "missing.bin", "someone-else/x.bin"]
    assert results[0]["error"] is None and httpx.get(results[0]["signedURL"]).content == b"weights"
    for entry in results[1:]:
        assert entry["signedURL"] is None
        assert entry["error"] == "Either the object does not exist or you do not have access to it"


def test_expired_signed_url_is_invalid_jwt(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    http = raw(target, target.service_role_key)
    http.post(f"/object/{bucket_id}/e.txt", content=b"e", headers={"content-type": "text/plain"})
    if target.is_local:
        now = int(time.time())
        token = jwt.encode(
            {"url": f"{bucket_id}/e.txt", "scope": "download", "iat": now - 120, "exp": now - 60},
            target.stack.jwt_secret,
            "HS256",
        )
        path = f"/object/sign/{bucket_id}/e.txt?token={token}"
    else:
        path = http.post(f"/object/sign/{bucket_id}/e.txt", json={"expiresIn": 1}).json()["signedURL"]
        time.sleep(2)
    body = error_body(httpx.get(f"{target.url}/storage/v1{path}"))
    assert (body["statusCode"], body["error"], body["message"]) == (
        "400",
        "InvalidJWT",
        '"exp" claim timestamp check failed',
    )


def test_signed_upload_url_carries_owner_and_upsert_of_the_signer(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "insert")
    session = new_user(sb.target)
    signer, anonymous = sb.user(session), sb.anon
    key = f"{uid(session)}/upload.txt"
    files = lambda c: c.storage.from_(bucket_id)  # noqa: E731
    signed = sb.run(lambda c: files(c).create_signed_upload_url(key), signer)
    assert jwt.decode(signed["token"], options={"verify_signature": False})["upsert"] is False
    sb.run(lambda c: files(c).upload_to_signed_url(key, signed["token"], b"one"), anonymous)
    assert sb.target.sql(
        "select owner_id from storage.objects where bucket_id = %s and name = %s", (bucket_id, key)
    ) == [(uid(session),)]
    with pytest.raises(StorageApiError) as again:
        sb.run(lambda c: files(c).upload_to_signed_url(key, signed["token"], b"two"), anonymous)
    assert (again.value.status, again.value.code) == ("409", "Duplicate")
    with pytest.raises(StorageApiError) as upsert_denied:
        sb.run(lambda c: files(c).create_signed_upload_url(key, CreateSignedUploadUrlOptions(upsert="true")), signer)
    assert upsert_denied.value.status == "403"  # an upsert also needs SELECT and UPDATE
    world.owner_folder(bucket_id, "select", "update")
    upsert = sb.run(
        lambda c: files(c).create_signed_upload_url(key, CreateSignedUploadUrlOptions(upsert="true")), signer
    )
    sb.run(lambda c: files(c).upload_to_signed_url(key, upsert["token"], b"two"), anonymous)
    assert sb.run(lambda c: files(c).download(key), signer) == b"two"


def test_signed_upload_url_needs_the_signers_insert_permission(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "insert")
    alice, bob = new_user(sb.target), new_user(sb.target)
    with pytest.raises(StorageApiError) as denied:
        sb.run(lambda c: c.storage.from_(bucket_id).create_signed_upload_url(f"{uid(alice)}/x.txt"), sb.user(bob))
    assert (denied.value.status, denied.value.code) == ("403", "Unauthorized")


def test_download_and_upload_tokens_are_not_interchangeable(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    http = raw(target, target.service_role_key)
    http.post(f"/object/{bucket_id}/t.txt", content=b"t", headers={"content-type": "text/plain"})
    download = _token_of(http.post(f"/object/sign/{bucket_id}/t.txt", json={"expiresIn": "60"}).json()["signedURL"])
    upload = http.post(f"/object/upload/sign/{bucket_id}/u.txt").json()["token"]
    as_upload = httpx.put(
        f"{target.url}/storage/v1/object/upload/sign/{bucket_id}/t.txt",
        params={"token": download},
        content=b"overwrite",
    )
    assert (error_body(as_upload)["error"], error_body(as_upload)["message"]) == (
        "InvalidSignature",
        "Token is not scoped for upload",
    )
    as_download = httpx.get(f"{target.url}/storage/v1/object/sign/{bucket_id}/u.txt", params={"token": upload})
    assert error_body(as_download)["message"] == "Token is not scoped for download"


def test_signed_upload_still_applies_the_bucket_limits(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket(file_size_limit=4, allowed_mime_types=["text/plain"])
    http = raw(target, target.service_role_key)
    token = http.post(f"/object/upload/sign/{bucket_id}/l.txt").json()["token"]
    url = f"{target.url}/storage/v1/object/upload/sign/{bucket_id}/l.txt"
    too_big = httpx.put(url, params={"token": token}, content=b"12345", headers={"content-type": "text/plain"})
    assert error_body(too_big)["statusCode"] == "413"
    wrong_type = httpx.put(url, params={"token": token}, content=b"1", headers={"content-type": "image/png"})
    assert error_body(wrong_type)["statusCode"] == "415"
    assert target.sql("select count(*) from storage.objects where bucket_id = %s", (bucket_id,)) == [(0,)]
