"""``storage.from_(b).list_v2(...)``: ``POST /object/list-v2/{bucket}`` with cursor pagination, folders when
``with_delimiter``, sorting, RLS, and never an upload (issue 16 §1: a list call once wrote a 2-byte ``{}``
object into a bucket named ``list-v2``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from storage3.exceptions import StorageApiError
from tests.conformance.test_storage_support import StorageWorld, new_user, uid, world

__all__ = ["world"]

KEYS = ("top.txt", "docs/a.txt", "docs/b.txt", "docs/sub/c.txt", "pics/p.txt")


def _fill(sb: Any, bucket_id: str, keys: tuple[str, ...] = KEYS) -> None:
    for key in keys:
        sb.run(lambda c, key=key: c.storage.from_(bucket_id).upload(key, key.encode()), sb.service)


def _pages(sb: Any, call: Callable[[dict[str, Any]], Any], options: dict[str, Any]) -> list[Any]:
    """Every page, following ``nextCursor`` until ``hasNext`` is false."""
    pages = [sb.run(lambda c: call(options))]
    while pages[-1].hasNext:
        assert pages[-1].nextCursor
        pages.append(sb.run(lambda c: call({**options, "cursor": pages[-1].nextCursor})))
        assert len(pages) < 20
    assert pages[-1].nextCursor is None
    return pages


def test_list_v2_pages_every_key_under_a_prefix_with_a_cursor(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    _fill(sb, bucket_id)
    files = sb.service.storage.from_(bucket_id)
    pages = _pages(sb, files.list_v2, {"limit": 2})
    assert [len(page.objects) for page in pages] == [2, 2, 1]
    assert [page.hasNext for page in pages] == [True, True, False]
    names = [item.name for page in pages for item in page.objects]
    assert names == sorted(KEYS)
    assert all(page.folders == [] for page in pages)
    first = pages[0].objects[0]
    assert first.id and first.metadata and first.metadata["size"] == len(first.name)
    under_docs = sb.run(lambda c: files.list_v2({"prefix": "docs/"}))
    assert [item.name for item in under_docs.objects] == ["docs/a.txt", "docs/b.txt", "docs/sub/c.txt"]
    assert under_docs.hasNext is False


def test_list_v2_with_delimiter_gives_folders_and_direct_objects(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    _fill(sb, bucket_id)
    files = sb.service.storage.from_(bucket_id)
    root = sb.run(lambda c: files.list_v2({"with_delimiter": True}))
    assert [folder.name for folder in root.folders] == ["docs/", "pics/"]
    assert [item.name for item in root.objects] == ["top.txt"]
    assert all(folder.created_at is None for folder in root.folders)
    docs = sb.run(lambda c: files.list_v2({"with_delimiter": True, "prefix": "docs/"}))
    assert [folder.name for folder in docs.folders] == ["docs/sub/"]
    assert [item.name for item in docs.objects] == ["docs/a.txt", "docs/b.txt"]
    pages = _pages(sb, files.list_v2, {"with_delimiter": True, "limit": 1})
    entries = [entry.name for page in pages for entry in (*page.folders, *page.objects)]
    assert entries == ["docs/", "pics/", "top.txt"]


def test_list_v2_sorts_by_time_and_descending_and_keeps_the_sort_in_the_cursor(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    keys = tuple(f"k{index}.txt" for index in range(5))
    _fill(sb, bucket_id, keys)
    files = sb.service.storage.from_(bucket_id)
    descending = _pages(sb, files.list_v2, {"limit": 2, "sortBy": {"column": "name", "order": "desc"}})
    assert [item.name for page in descending for item in page.objects] == list(reversed(keys))
    newest_first = _pages(sb, files.list_v2, {"limit": 2, "sortBy": {"column": "created_at", "order": "desc"}})
    listed = [item for page in newest_first for item in page.objects]
    assert sorted(item.name for item in listed) == list(keys)
    stamps = [item.created_at for item in listed]
    assert stamps == sorted(stamps, reverse=True)


def test_list_v2_lists_only_what_the_caller_may_select(sb: Any, world: StorageWorld) -> None:
    bucket_id = world.bucket()
    world.owner_folder(bucket_id, "select", "insert")
    alice, bob = new_user(sb.target), new_user(sb.target)
    alice_client, bob_client = sb.user(alice), sb.user(bob)
    sb.run(lambda c: c.storage.from_(bucket_id).upload(f"{uid(alice)}/a.txt", b"a"), alice_client)
    sb.run(lambda c: c.storage.from_(bucket_id).upload(f"{uid(bob)}/b.txt", b"b"), bob_client)
    mine = sb.run(lambda c: c.storage.from_(bucket_id).list_v2(), alice_client)
    assert [item.name for item in mine.objects] == [f"{uid(alice)}/a.txt"]
    folders = sb.run(lambda c: c.storage.from_(bucket_id).list_v2({"with_delimiter": True}), bob_client)
    assert [folder.name for folder in folders.folders] == [f"{uid(bob)}/"]
    assert sb.run(lambda c: c.storage.from_(bucket_id).list_v2(), sb.anon).objects == []


def test_list_v2_on_a_bucket_named_list_v2_lists_and_never_writes(sb: Any, world: StorageWorld) -> None:
    bucket_id = "list-v2"
    sb.target.sql(
        "insert into storage.buckets (id, name) values (%s, %s) on conflict (id) do nothing", (bucket_id, bucket_id)
    )
    world.buckets.append(bucket_id)
    listed = sb.run(lambda c: c.storage.from_(bucket_id).list_v2(), sb.service)
    assert (listed.hasNext, listed.objects, listed.folders) == (False, [], [])
    if sb.target.is_local:  # stricter than Storage: /object/list-v2/<bucket>/<key> is never an upload either
        with pytest.raises(StorageApiError) as refused:
            sb.run(lambda c: c.storage.from_(bucket_id).upload("folder/x.txt", b"{}"), sb.service)
        assert str(refused.value.status) == "404"
    assert world.rows(bucket_id) == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"limit": 0}, "body/limit must be >= 1"),
        ({"sortBy": {"column": "size"}}, "body/sortBy/column must be equal to one of the allowed values"),
        ({"cursor": "bm90IGEgY3Vyc29y"}, "Invalid Parameter continuation token"),
    ],
)
def test_list_v2_refuses_bad_options(sb: Any, world: StorageWorld, options: dict[str, Any], message: str) -> None:
    bucket_id = world.bucket()
    with pytest.raises(StorageApiError) as refused:
        sb.run(lambda c: c.storage.from_(bucket_id).list_v2(options), sb.service)
    assert (str(refused.value.status), refused.value.message) == ("400", message)
