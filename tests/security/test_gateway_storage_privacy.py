"""Stored objects stay private to the stack's OS user, and a resumable upload cannot skip a bucket's MIME rule
(issue 12 item 8, storage parts).

Object bytes of every tenant share one tree under the stack's ``storage/`` folder: any file there readable
by another local user leaks every tenant's data, so every file must be 0600 and every directory 0700, for
every way bytes arrive (plain, multipart, resumable, copy). A TUS upload without ``contentType`` metadata is
stored as ``application/octet-stream``, so that type is what the bucket's ``allowed_mime_types`` must allow.
"""

from __future__ import annotations

import base64
import os
import stat
import uuid
from pathlib import Path

import httpx
import pytest

from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.local_supabase.gateway.storage._disk import DiskStore

from .conftest import DATASETS, Person, new_person, user_headers

TUS = {"Tus-Resumable": "1.0.0"}


def _tus_metadata(**values: str) -> str:
    return ",".join(f"{name} {base64.b64encode(value.encode()).decode()}" for name, value in values.items())


def _modes(root: Path) -> dict[str, int]:
    """``path -> permission bits`` of ``root`` and everything below it."""
    found = {str(root): stat.S_IMODE(root.stat().st_mode)}
    for directory, subdirectories, files in os.walk(root):
        for name in [*subdirectories, *files]:
            path = os.path.join(directory, name)
            found[path] = stat.S_IMODE(os.lstat(path).st_mode)
    return found


def _resumable(http: httpx.Client, headers: dict[str, str], key: str, data: bytes, **metadata: str) -> httpx.Response:
    values = {"bucketName": DATASETS, "objectName": key, **metadata}
    return http.post(
        "/storage/v1/upload/resumable",
        headers=headers
        | TUS
        | {
            "Upload-Length": str(len(data)),
            "Upload-Metadata": _tus_metadata(**values),
            "Content-Type": "application/offset+octet-stream",
        },
        content=data,
    )


@pytest.fixture(scope="module")
def person(stack: LocalSupabase) -> Person:
    return new_person(stack)


def test_object_bytes_are_private_to_the_stack_user_whichever_way_they_arrive(
    http: httpx.Client, stack: LocalSupabase, person: Person
) -> None:
    headers, folder = user_headers(stack, person), f"{person.id}/{uuid.uuid4().hex}"
    plain = http.post(
        f"/storage/v1/object/{DATASETS}/{folder}/plain.jsonl",
        content=b'{"text": "a"}\n',
        headers=headers | {"content-type": "application/jsonl"},
    )
    assert plain.status_code == 200, plain.text
    multipart = http.post(
        f"/storage/v1/object/{DATASETS}/{folder}/form.jsonl",
        files={"file": ("form.jsonl", b'{"text": "b"}\n', "application/jsonl")},
        headers=headers,
    )
    assert multipart.status_code == 200, multipart.text
    resumable = _resumable(http, headers, f"{folder}/tus.jsonl", b'{"text": "c"}\n', contentType="application/jsonl")
    assert resumable.status_code == 201, resumable.text
    copied = http.post(
        "/storage/v1/object/copy",
        json={"bucketId": DATASETS, "sourceKey": f"{folder}/plain.jsonl", "destinationKey": f"{folder}/copy.jsonl"},
        headers=headers,
    )
    assert copied.status_code == 200, copied.text
    pending = http.post(  # a resumable upload still in progress: its part and state files live there too
        "/storage/v1/upload/resumable",
        headers=headers
        | TUS
        | {
            "Upload-Length": "100",
            "Upload-Metadata": _tus_metadata(
                bucketName=DATASETS, objectName=f"{folder}/half.jsonl", contentType="application/jsonl"
            ),
        },
    )
    assert pending.status_code == 201, pending.text

    storage_root = stack.config.storage_root
    modes = _modes(storage_root)
    files = {path: mode for path, mode in modes.items() if Path(path).is_file()}
    directories = {path: mode for path, mode in modes.items() if Path(path).is_dir()}
    assert len(files) >= 6  # four objects (the copy may share an inode) plus a part and a state file
    assert {mode for mode in files.values()} == {0o600}, files
    assert {mode for mode in directories.values()} == {0o700}, directories


def test_startup_narrows_a_tree_written_with_open_modes(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    (root / "data" / "ab").mkdir(parents=True, mode=0o755)
    old = root / "data" / "ab" / str(uuid.uuid4())
    old.write_bytes(b"tenant data")
    old.chmod(0o644)
    for directory in (root, root / "data", root / "data" / "ab"):
        directory.chmod(0o755)
    DiskStore(root).make_private()
    assert set(_modes(root).values()) == {0o700, 0o600}
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def test_a_resumable_upload_without_content_type_meets_the_buckets_mime_rule(
    http: httpx.Client, stack: LocalSupabase, person: Person
) -> None:
    headers, key = user_headers(stack, person), f"{person.id}/{uuid.uuid4().hex}/untyped.bin"
    untyped = _resumable(http, headers, key, b"\x00\x01 not a dataset")
    assert (untyped.status_code, untyped.text) == (415, "mime type application/octet-stream is not supported")
    listed = http.post(f"/storage/v1/object/list/{DATASETS}", json={"prefix": key.rsplit("/", 1)[0]}, headers=headers)
    assert listed.status_code == 200 and listed.json() == []
    typed = _resumable(http, headers, key.replace(".bin", ".jsonl"), b'{"text": "d"}\n', contentType="text/plain")
    assert typed.status_code == 201, typed.text
