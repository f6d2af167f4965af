"""Storage's error envelope: HTTP 400 with the real status as a string for client errors, 500 stays 500,
no stack traces, request validation messages (research §0.7, §5.2; checklist §9 Storage: first line)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from storage3.exceptions import StorageApiError
from tests.conformance.test_storage_support import StorageWorld, error_body, new_user, raw, world

__all__ = ["world"]


def test_client_errors_are_http_400_with_a_string_status(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    http = raw(target, target.service_role_key)
    missing = http.get(f"/object/{bucket_id}/nope.txt")
    assert missing.status_code == 400
    assert error_body(missing) == {
        "statusCode": "404",
        "code": "NoSuchKey",
        "error": "not_found",
        "message": "Object not found",
    }
    no_bucket = http.get("/bucket/conf-storage-absent")
    assert error_body(no_bucket) == {
        "statusCode": "404",
        "code": "NoSuchBucket",
        "error": "Bucket not found",
        "message": "Bucket not found",
    }


def test_database_failures_stay_500_without_internals(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.policy(bucket_id, "select", condition="1 / (select 0) = 1")
    raw(sb.target, sb.target.service_role_key).post(f"/object/{bucket_id}/x.txt", content=b"x")
    session = new_user(sb.target)
    response = raw(sb.target, session["access_token"]).get(f"/object/{bucket_id}/x.txt")
    assert response.status_code == 500
    assert error_body(response) == {
        "statusCode": "500",
        "code": "DatabaseError",
        "error": "DatabaseError",
        "message": "database error, code: 22012",
    }
    with pytest.raises(StorageApiError) as failure:
        sb.run(lambda c: c.storage.from_(bucket_id).list(), sb.user(session))
    assert failure.value.status == "500"


def test_request_validation_messages(target: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    http = raw(target, target.service_role_key)
    no_prefix = http.post(f"/object/list/{bucket_id}", json={"limit": 1})
    assert error_body(no_prefix)["message"] == "body must have required property 'prefix'"
    no_expiry = http.post(f"/object/sign/{bucket_id}/x.txt", json={})
    assert error_body(no_expiry)["message"] == "body must have required property 'expiresIn'"
    bad_json = http.post(
        f"/object/list/{bucket_id}", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (error_body(bad_json)["statusCode"], error_body(bad_json)["code"]) == ("400", "InvalidRequest")
    no_prefixes = http.request("DELETE", f"/object/{bucket_id}", json={"prefixes": []})
    assert error_body(no_prefixes)["statusCode"] == "400"


def test_unknown_routes_are_404_json(target: Any) -> None:
    response = httpx.get(f"{target.url}/storage/v1/no/such/route")
    assert response.status_code == 404
    assert response.json()["error"] == "Not Found"
