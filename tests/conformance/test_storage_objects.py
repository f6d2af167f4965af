"""Listing, removing, moving and copying objects, all decided by policies on ``storage.objects``
(research §5.3, §5.5, §5.7, §8 #19; checklist §9 Storage: list and remove lines)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from storage3.exceptions import StorageApiError
from tests.conformance.test_storage_support import StorageWorld, new_user, uid, world

__all__ = ["world"]

OBJECT_KEYS = {
    "name",
    "bucket_id",
    "owner",
    "owner_id",
    "version",
    "id",
    "updated_at",
    "created_at",
    "last_accessed_at",
    "metadata",
    "user_metadata",
}


def _names(items: list[dict[str, Any]]) -> list[str]:
    return [item["name"] for item in items]


def test_list_gives_direct_children_and_folders(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    service = sb.service
    files = lambda c: c.storage.from_(bucket_id)  # noqa: E731
    for key in ("top.txt", "docs/a.txt", "docs/b.txt", "docs/Beta.txt", "docs/sub/c.txt", "pics/p.txt"):
        sb.run(lambda c, key=key: files(c).upload(key, key.encode()), service)
    root = sb.run(lambda c: files(c).list(), service)
    assert _names(root) == ["docs", "pics", "top.txt"]
    assert [item["id"] is None for item in root] == [True, True, False]
    assert root[2]["metadata"]["size"] == len(b"top.txt")
    docs = sb.run(lambda c: files(c).list("docs"), service)
    assert _names(docs) == ["a.txt", "b.txt", "Beta.txt", "sub"]
    assert docs[3] == {
        "name": "sub",
        "id": None,
        "updated_at": None,
        "created_at": None,
        "last_accessed_at": None,
        "metadata": None,
    }
    assert _names(sb.run(lambda c: files(c).list("docs", {"search": "b"}), service)) == ["b.txt", "Beta.txt"]
    assert _names(sb.run(lambda c: files(c).list("docs/", {"limit": 2, "offset": 1}), service)) == ["b.txt", "Beta.txt"]
    descending = sb.run(lambda c: files(c).list("docs", {"sortBy": {"column": "name", "order": "desc"}}), service)
    assert _names(descending) == ["sub", "Beta.txt", "b.txt", "a.txt"]
    by_time = sb.run(lambda c: files(c).list("docs", {"sortBy": {"column": "created_at", "order": "desc"}}), service)
    assert _names(by_time)[0] == "sub"  # folders first for non-name sorts


def test_list_shows_only_what_the_caller_may_select(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    alice, bob = new_user(sb.target), new_user(sb.target)
    alice_client, bob_client = sb.user(alice), sb.user(bob)
    sb.run(lambda c: c.storage.from_(bucket_id).upload(f"{uid(alice)}/a.txt", b"a"), alice_client)
    sb.run(lambda c: c.storage.from_(bucket_id).upload(f"{uid(bob)}/b.txt", b"b"), bob_client)
    assert _names(sb.run(lambda c: c.storage.from_(bucket_id).list(), alice_client)) == [uid(alice)]
    assert _names(sb.run(lambda c: c.storage.from_(bucket_id).list(uid(alice)), alice_client)) == ["a.txt"]
    assert sb.run(lambda c: c.storage.from_(bucket_id).list(uid(alice)), bob_client) == []


def test_remove_returns_deleted_rows_skips_invisible_and_never_deletes_by_prefix(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    session = new_user(sb.target)
    client, service, folder = sb.user(session), sb.service, uid(session)
    files = lambda c: c.storage.from_(bucket_id)  # noqa: E731
    sb.run(lambda c: files(c).upload(f"{folder}/x.txt", b"x"), client)
    sb.run(lambda c: files(c).upload(f"{folder}/dir/y.txt", b"y"), client)
    sb.run(lambda c: files(c).upload("other/z.txt", b"z"), service)
    assert sb.run(lambda c: files(c).remove([f"{folder}/x.txt"]), client) == []  # no DELETE policy yet
    world.owner_folder(bucket_id, "delete")
    removed = sb.run(lambda c: files(c).remove([f"{folder}/x.txt", "other/z.txt", f"{folder}/dir", "nope"]), client)
    assert _names(removed) == [f"{folder}/x.txt"]
    assert set(removed[0]) == OBJECT_KEYS
    assert (removed[0]["owner"], removed[0]["bucket_id"]) == (folder, bucket_id)
    assert [row[0] for row in world.rows(bucket_id)] == [f"{folder}/dir/y.txt", "other/z.txt"]
    with pytest.raises(StorageApiError) as gone:
        sb.run(lambda c: files(c).download(f"{folder}/x.txt"), client)
    assert gone.value.status == "404"


def test_direct_sql_delete_is_refused_by_the_protect_delete_trigger(target: Any) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="Direct deletion"):
        target.sql("delete from storage.objects where false")


def test_move_needs_select_and_update_and_keeps_the_bytes(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    alice, bob = new_user(sb.target), new_user(sb.target)
    client, folder = sb.user(alice), uid(alice)
    files = lambda c: c.storage.from_(bucket_id)  # noqa: E731
    sb.run(lambda c: files(c).upload(f"{folder}/a.txt", b"moving"), client)
    with pytest.raises(StorageApiError) as no_update:
        sb.run(lambda c: files(c).move(f"{folder}/a.txt", f"{folder}/b.txt"), client)
    assert no_update.value.status == "404"
    world.owner_folder(bucket_id, "update")
    moved = sb.run(lambda c: files(c).move(f"{folder}/a.txt", f"{folder}/b.txt"), client)
    assert moved["message"] == "Successfully moved"
    assert sb.run(lambda c: files(c).download(f"{folder}/b.txt"), client) == b"moving"
    assert [row[0] for row in world.rows(bucket_id)] == [f"{folder}/b.txt"]
    with pytest.raises(StorageApiError) as elsewhere:
        sb.run(lambda c: files(c).move(f"{folder}/b.txt", f"{uid(bob)}/stolen.txt"), client)
    assert (elsewhere.value.status, elsewhere.value.code) == ("403", "Unauthorized")


def test_copy_needs_insert_on_the_destination(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    alice, bob = new_user(sb.target), new_user(sb.target)
    client, folder = sb.user(alice), uid(alice)
    files = lambda c: c.storage.from_(bucket_id)  # noqa: E731
    sb.run(lambda c: files(c).upload(f"{folder}/a.txt", b"copy me", {"metadata": {"m": 1}}), client)
    copied = sb.run(lambda c: files(c).copy(f"{folder}/a.txt", f"{folder}/c.txt"), client)
    assert copied["Key"] == f"{bucket_id}/{folder}/c.txt"
    assert (copied["name"], copied["owner_id"], copied["user_metadata"]) == (f"{folder}/c.txt", folder, {"m": 1})
    assert sb.run(lambda c: files(c).download(f"{folder}/c.txt"), client) == b"copy me"
    with pytest.raises(StorageApiError) as duplicate:
        sb.run(lambda c: files(c).copy(f"{folder}/a.txt", f"{folder}/c.txt"), client)
    assert duplicate.value.status == "409"
    with pytest.raises(StorageApiError) as elsewhere:
        sb.run(lambda c: files(c).copy(f"{folder}/a.txt", f"{uid(bob)}/c.txt"), client)
    assert elsewhere.value.status == "403"
    with pytest.raises(StorageApiError) as invisible:
        sb.run(lambda c: files(c).copy(f"{folder}/a.txt", f"{uid(bob)}/c.txt"), sb.user(bob))
    assert invisible.value.status == "404"
