"""Bucket endpoints as storage3 uses them: JSON shapes its pydantic models accept, errors, and bucket RLS
(research §1.4, §5.3, §5.5; checklist §9 Storage: bucket lines)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from storage3.exceptions import StorageApiError
from tests.conformance.test_storage_support import StorageWorld, error_body, new_user, raw, uid, world

__all__ = ["world"]

BUCKET_KEYS = {"id", "name", "owner", "public", "file_size_limit", "allowed_mime_types", "created_at", "updated_at"}


def test_list_and_get_bucket_parse_in_storage3_with_owner_empty_string(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = world.bucket(file_size_limit=1000, allowed_mime_types=["image/*"])
    listed = sb.run(lambda c: c.storage.list_buckets(), service)
    mine = next(b for b in listed if b.id == bucket_id)
    assert (mine.owner, mine.public, mine.file_size_limit, mine.allowed_mime_types) == ("", False, 1000, ["image/*"])
    fetched = sb.run(lambda c: c.storage.get_bucket(bucket_id), service)
    assert fetched.name == bucket_id and fetched.created_at is not None
    body = raw(sb.target, sb.target.service_role_key).get(f"/bucket/{bucket_id}").json()
    assert set(body) == BUCKET_KEYS
    assert body["owner"] == ""


def test_create_update_empty_delete_round_trip(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = f"conf-storage-{uuid.uuid4().hex[:10]}"
    world.buckets.append(bucket_id)
    options = {"public": True, "file_size_limit": 2048, "allowed_mime_types": ["text/plain"]}
    assert sb.run(lambda c: c.storage.create_bucket(bucket_id, options=options), service) == {"name": bucket_id}
    assert sb.run(lambda c: c.storage.get_bucket(bucket_id), service).public is True
    updated = sb.run(lambda c: c.storage.update_bucket(bucket_id, {"public": False, "file_size_limit": 10}), service)
    assert updated == {"message": "Successfully updated"}
    bucket = sb.run(lambda c: c.storage.get_bucket(bucket_id), service)
    assert (bucket.public, bucket.file_size_limit, bucket.allowed_mime_types) == (False, 10, ["text/plain"])
    sb.run(lambda c: c.storage.from_(bucket_id).upload("a.txt", b"0123"), service)
    assert "message" in sb.run(lambda c: c.storage.empty_bucket(bucket_id), service)
    assert world.rows(bucket_id) == []
    assert sb.run(lambda c: c.storage.delete_bucket(bucket_id), service) == {"message": "Successfully deleted"}
    with pytest.raises(StorageApiError) as missing:
        sb.run(lambda c: c.storage.get_bucket(bucket_id), service)
    assert (missing.value.status, missing.value.code, missing.value.message) == (
        "404",
        "Bucket not found",
        "Bucket not found",
    )


def test_duplicate_invalid_and_non_empty_buckets(sb: Any, world: StorageWorld) -> None:
    service = sb.service
    bucket_id = world.bucket()
    with pytest.raises(StorageApiError) as duplicate:
        sb.run(lambda c: c.storage.create_bucket(bucket_id), service)
    assert (duplicate.value.status, duplicate.value.code) == ("409", "Duplicate")
    with pytest.raises(StorageApiError) as invalid:
        sb.run(lambda c: c.storage.create_bucket("conf-storage-ünïcode"), service)
    assert (invalid.value.status, invalid.value.code, invalid.value.message) == (
        "400",
        "Invalid Input",
        "Bucket name invalid",
    )
    sb.run(lambda c: c.storage.from_(bucket_id).upload("keep.txt", b"x"), service)
    with pytest.raises(StorageApiError) as not_empty:
        sb.run(lambda c: c.storage.delete_bucket(bucket_id), service)
    assert (not_empty.value.status, not_empty.value.code) == ("409", "ResourceNotEmpty")


def test_bucket_statements_run_as_the_user_so_bucket_policies_decide(sb: Any, world: StorageWorld) -> None:
    session = new_user(sb.target)
    client = sb.user(session)
    bucket_id = f"conf-storage-{uuid.uuid4().hex[:10]}"
    world.buckets.append(bucket_id)
    with pytest.raises(StorageApiError) as denied:
        sb.run(lambda c: c.storage.create_bucket(bucket_id), client)
    assert (denied.value.status, denied.value.code, denied.value.message) == (
        "403",
        "Unauthorized",
        "new row violates row-level security policy",
    )
    world.policy(bucket_id, "insert", table="buckets")
    sb.run(lambda c: c.storage.create_bucket(bucket_id), client)
    assert sb.target.sql("select owner::text, owner_id from storage.buckets where id = %s", (bucket_id,)) == [
        (uid(session), uid(session))
    ]
    assert bucket_id not in [b.id for b in sb.run(lambda c: c.storage.list_buckets(), client)]
    with pytest.raises(StorageApiError) as invisible:
        sb.run(lambda c: c.storage.get_bucket(bucket_id), client)
    assert invisible.value.status == "404"
    world.policy(bucket_id, "select", table="buckets")
    assert sb.run(lambda c: c.storage.get_bucket(bucket_id), client).owner == uid(session)


def test_file_size_limit_accepts_units_and_refuses_more_than_the_global_limit(target: Any, world: StorageWorld) -> None:
    bucket_id = f"conf-storage-{uuid.uuid4().hex[:10]}"
    world.buckets.append(bucket_id)
    http = raw(target, target.service_role_key)
    created = http.post("/bucket", json={"name": bucket_id, "file_size_limit": "1.5MB"})
    assert created.status_code == 200, created.text
    assert http.get(f"/bucket/{bucket_id}").json()["file_size_limit"] == 1_500_000
    too_big = http.put(f"/bucket/{bucket_id}", json={"file_size_limit": 10**15})
    assert too_big.status_code == 400
    assert error_body(too_big)["statusCode"] == "413"
    bad_mime = http.put(f"/bucket/{bucket_id}", json={"allowed_mime_types": ["not a mime"]})
    assert error_body(bad_mime)["statusCode"] == "415"
