"""Object bytes on local disk, under ``<storage_root>/objects/`` (which ``LocalSupabase.reset()`` removes).

Path traversal is impossible by construction: a file's name is the object's *version* (a UUID this service
generated), never the object key. Layout::

    objects/data/<v[:2]>/<version>     committed bytes, immutable once written (copies may hard-link)
    objects/staging/<uuid>.part        an upload being received
    objects/resumable/<version>.*      TUS uploads (state JSON + partial bytes), see ``_tus_store``

Uploads stream to a staging file in 1 MiB writes done off the event loop; a committed file is renamed into
place, so a row never points at half-written bytes.

Every tenant's bytes share this tree, so it is private to the stack's OS user: files are created 0600 and
directories 0700 whatever the umask, and :meth:`DiskStore.make_private` fixes trees written by older versions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from ._validation import is_uuid

CHUNK_SIZE = 1024 * 1024
FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """``mkdir -p`` where every directory it creates (and ``path`` itself) is 0700."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=DIR_MODE)
        directory.chmod(DIR_MODE)
    if not missing:
        path.chmod(DIR_MODE)
    return path


def open_private(path: Path, *, append: bool = False) -> BinaryIO:
    """Open ``path`` for writing as a 0600 file (an existing file is narrowed to 0600 too)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    descriptor = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
    except OSError:
        os.close(descriptor)
        raise
    return os.fdopen(descriptor, "ab" if append else "wb")


def _copy_private(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    target.chmod(FILE_MODE)


class DiskStore:
    """Where object bytes live; every path comes from a UUID."""

    def __init__(self, root: Path) -> None:
        self.root = root
        private_dir(root)

    def make_private(self) -> None:
        """Narrow every file to 0600 and every directory to 0700 (run at startup, for older trees)."""
        for directory, subdirectories, files in os.walk(self.root):
            for name in subdirectories:
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(os.path.join(directory, name), DIR_MODE)
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    os.chmod(os.path.join(directory, name), FILE_MODE)

    @property
    def resumable_dir(self) -> Path:
        return self._dir("resumable")

    def object_path(self, version: str) -> Path:
        """The committed bytes of ``version``; a version that is not a UUID has no file."""
        if not is_uuid(version):
            raise FileNotFoundError(f"no object file for version {version!r}")
        return self.root / "data" / version[:2] / version

    def new_staging_path(self) -> Path:
        return self._dir("staging") / f"{uuid.uuid4()}.part"

    def commit(self, staged: Path, version: str) -> Path:
        """Move staged bytes into place as ``version``."""
        target = self.object_path(version)
        private_dir(target.parent)
        os.replace(staged, target)
        return target

    def link(self, source_version: str, target_version: str) -> None:
        """Give ``target_version`` the bytes of ``source_version`` (hard link; copy where links fail)."""
        source, target = self.object_path(source_version), self.object_path(target_version)
        private_dir(target.parent)
        try:
            os.link(source, target)
        except OSError:
            _copy_private(source, target)

    def link_file(self, source: Path, version: str) -> Path:
        """Make ``source`` (e.g. a finished TUS part file) the bytes of ``version``; ``source`` stays."""
        target = self.object_path(version)
        private_dir(target.parent)
        try:
            os.link(source, target)
        except FileExistsError:
            pass
        except OSError:
            _copy_private(source, target)
        return target

    def remove(self, version: str | None) -> None:
        """Forget a version's bytes (missing files and foreign versions are ignored)."""
        if version and is_uuid(version):
            with contextlib.suppress(FileNotFoundError):
                self.object_path(version).unlink()

    def open(self, version: str | None) -> tuple[BinaryIO, os.stat_result] | None:
        """An open handle and its stat, or ``None`` when the bytes are gone."""
        if not version or not is_uuid(version):
            return None
        try:
            handle = open(self.object_path(version), "rb")  # noqa: SIM115 - closed by the reader
        except FileNotFoundError:
            return None
        return handle, os.fstat(handle.fileno())

    def clear_staging(self) -> None:
        """Drop half-received uploads left by a crash (run at startup, when nothing is in flight)."""
        shutil.rmtree(self.root / "staging", ignore_errors=True)

    def _dir(self, name: str) -> Path:
        return private_dir(self.root / name)


@dataclass(frozen=True)
class StagedBytes:
    """What a finished :class:`StagingWriter` received."""

    path: Path
    size: int
    md5: str
    truncated: bool

    @property
    def etag(self) -> str:
        return f'"{self.md5}"'


class StagingWriter:
    """Streams a body to a file with a running MD5; past ``limit`` it keeps counting but stops storing."""

    def __init__(self, path: Path, limit: int | None, *, append: bool = False) -> None:
        self.path = path
        self.limit = limit
        self.received = path.stat().st_size if append and path.exists() else 0
        self._file: BinaryIO = open_private(path, append=append)
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._buffer = bytearray()
        self.truncated = False

    async def write(self, chunk: bytes) -> None:
        if self.limit is not None and self.received + len(chunk) > self.limit:
            keep = max(self.limit - self.received, 0)
            self.truncated = True
            chunk = chunk[:keep]
        self.received += len(chunk)
        self._md5.update(chunk)
        self._buffer += chunk
        if len(self._buffer) >= CHUNK_SIZE:
            await self.flush()

    async def flush(self) -> None:
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            await anyio.to_thread.run_sync(self._file.write, data)
            await anyio.to_thread.run_sync(self._file.flush)

    async def finish(self) -> StagedBytes:
        await self.flush()
        self._file.close()
        return StagedBytes(self.path, self.received, self._md5.hexdigest(), self.truncated)

    def discard(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


async def file_md5(path: Path) -> str:
    """MD5 of a file on disk (TUS uploads arrive in pieces, possibly across restarts)."""

    def digest() -> str:
        md5 = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK_SIZE), b""):
                md5.update(block)
        return md5.hexdigest()

    return await anyio.to_thread.run_sync(digest)


async def read_chunks(handle: BinaryIO, start: int, length: int) -> AsyncIterator[bytes]:
    """``length`` bytes from ``start``, 1 MiB at a time off the event loop; closes ``handle``."""

    def read_block(size: int) -> bytes:
        return handle.read(size)

    try:
        await anyio.to_thread.run_sync(handle.seek, start)
        remaining = length
        while remaining > 0:
            block = await anyio.to_thread.run_sync(read_block, min(CHUNK_SIZE, remaining))
            if not block:
                break
            remaining -= len(block)
            yield block
    finally:
        handle.close()


__all__ = [
    "CHUNK_SIZE",
    "DIR_MODE",
    "FILE_MODE",
    "DiskStore",
    "StagedBytes",
    "StagingWriter",
    "file_md5",
    "open_private",
    "private_dir",
    "read_chunks",
]
