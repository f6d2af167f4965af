"""Resumable (TUS) uploads at rest: the upload id, the ``Upload-Metadata`` codec, and on-disk state.

An upload id is what Supabase uses: base64url of ``<bucket>/<object name>/<version>`` (the tenant part
dropped), where ``version`` is a fresh UUID that becomes the object's version. State lives in
``objects/resumable/<version>.json`` and the received bytes in ``objects/resumable/<version>.part``; the
offset is the part file's size, so an upload survives a gateway restart or crash and the client resumes
from what the server really has.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import os
import time
import uuid
import weakref
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..json_limits import parse_json
from . import _errors as errors
from ._disk import DiskStore, open_private
from ._validation import is_uuid, must_be_valid_bucket_name, must_be_valid_key

EXPIRY_SECONDS = 24 * 3600
_BASE64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


@dataclass(frozen=True)
class UploadId:
    """``bucket/object/version``, base64url-encoded in the upload URL."""

    bucket: str
    object_name: str
    version: str

    @classmethod
    def new(cls, bucket: str, object_name: str) -> UploadId:
        return cls(must_be_valid_bucket_name(bucket), must_be_valid_key(object_name), str(uuid.uuid4()))

    @classmethod
    def decode(cls, text: str) -> UploadId:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise errors.invalid_upload_id() from None
        parts = raw.split("/")
        if len(parts) < 3:
            raise errors.invalid_upload_id()
        version = parts[-1]
        if not is_uuid(version):
            raise errors.invalid_upload_id("Version not provided")
        bucket, object_name = parts[0], "/".join(parts[1:-1])
        return cls(must_be_valid_bucket_name(bucket), must_be_valid_key(object_name), version)

    def encode(self) -> str:
        raw = f"{self.bucket}/{self.object_name}/{self.version}".encode()
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def parse_metadata(header: str) -> dict[str, str | None]:
    """``Upload-Metadata``: ``key base64,key2`` pairs; keys ASCII without spaces or commas, unique."""
    if not header.strip():
        raise ValueError("empty Upload-Metadata")
    metadata: dict[str, str | None] = {}
    for pair in header.split(","):
        tokens = pair.split(" ")
        key = tokens[0]
        if len(tokens) > 2 or not key or not key.isascii() or key in metadata:
            raise ValueError("invalid Upload-Metadata")
        metadata[key] = _decode_value(tokens[1]) if len(tokens) == 2 else None
    return metadata


def _decode_value(value: str) -> str:
    if len(value) % 4 or any(c not in _BASE64_ALPHABET for c in value.rstrip("=")):
        raise ValueError("metadata value is not base64")
    return base64.b64decode(value).decode("utf-8", "replace")


def stringify_metadata(metadata: dict[str, str | None]) -> str:
    return ",".join(
        key if value is None else f"{key} {base64.b64encode(value.encode()).decode('ascii')}"
        for key, value in metadata.items()
    )


@dataclass
class ResumableUpload:
    """One upload's state (the offset is not stored: it is the part file's size)."""

    bucket: str
    object_name: str
    version: str
    size: int
    metadata: dict[str, str | None] = field(default_factory=dict)
    upsert: bool = False
    created_at: float = field(default_factory=time.time)
    completed: bool = False

    @property
    def upload_id(self) -> UploadId:
        return UploadId(self.bucket, self.object_name, self.version)

    @property
    def expires_at(self) -> float:
        return self.created_at + EXPIRY_SECONDS

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) > self.expires_at

    @property
    def content_type(self) -> str | None:
        return self.metadata.get("contentType")

    @property
    def user_metadata(self) -> dict[str, Any] | None:
        raw = self.metadata.get("metadata")
        try:
            value = parse_json(raw) if raw else None
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


class TusStore:
    """Reads and writes resumable-upload state under the object store; one lock per upload."""

    def __init__(self, store: DiskStore) -> None:
        self.store = store
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, upload_id: UploadId) -> asyncio.Lock:
        lock = self._locks.get(upload_id.version)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[upload_id.version] = lock
        return lock

    def part_path(self, upload_id: UploadId) -> Path:
        return self.store.resumable_dir / f"{upload_id.version}.part"

    def create(self, upload: ResumableUpload) -> None:
        open_private(self.part_path(upload.upload_id), append=True).close()
        self.save(upload)

    def load(self, upload_id: UploadId) -> ResumableUpload | None:
        """The upload named by ``upload_id`` (bucket and name must match what was created)."""
        try:
            state = json.loads(self._state_path(upload_id).read_text())
            upload = ResumableUpload(**state)
        except (FileNotFoundError, ValueError, TypeError):
            return None
        return upload if upload.upload_id == upload_id else None

    def offset(self, upload: ResumableUpload) -> int:
        if upload.completed:
            return upload.size
        try:
            return self.part_path(upload.upload_id).stat().st_size
        except FileNotFoundError:
            return 0

    def save(self, upload: ResumableUpload) -> None:
        """Atomically (write, then rename) so a crash never leaves half a state file."""
        path = self._state_path(upload.upload_id)
        temporary = path.with_suffix(".tmp")
        with open_private(temporary) as handle:
            handle.write(json.dumps(asdict(upload)).encode())
        os.replace(temporary, path)

    def remove(self, upload: ResumableUpload) -> None:
        for path in (self.part_path(upload.upload_id), self._state_path(upload.upload_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def sweep_expired(self) -> int:
        """Delete expired uploads (run at startup)."""
        removed = 0
        for path in self.store.resumable_dir.glob("*.json"):
            with contextlib.suppress(ValueError, TypeError, OSError):
                upload = ResumableUpload(**json.loads(path.read_text()))
                if upload.expired():
                    self.remove(upload)
                    removed += 1
        return removed

    def _state_path(self, upload_id: UploadId) -> Path:
        return self.store.resumable_dir / f"{upload_id.version}.json"


__all__ = [
    "EXPIRY_SECONDS",
    "ResumableUpload",
    "TusStore",
    "UploadId",
    "parse_metadata",
    "stringify_metadata",
]
