"""The on-disk write-ahead log of one job's metrics: nothing is sent before it is here, and nothing here is
forgotten until the server has acknowledged it.

Files, in the spool directory, per job::

    <job_id>.jsonl   append-only; line 1 is a header, every other line is one record (a batch of points)
    <job_id>.ack     {"spool_id": ..., "offset": N}: every byte before N has been acknowledged

Header: ``{"v":1,"kind":"lora-pipeline-metrics","job_id":"...","spool_id":"<random hex>"}``.
Record: ``{"v":1,"count":N,"logged":M,"crc32":C,"steps":[lo,hi],"points":[...]}`` where ``points`` is the JSON
array sent as is, ``count`` its length, ``logged`` how many ``log()`` calls it holds (duplicate steps are merged),
``crc32`` the checksum of the array text and ``steps`` its lowest and highest step. Each record is written with
one ``write`` and then ``fsync``-ed.

Recovery: a last line without its newline (a crash mid-write) is cut off with a warning by the next writer and
skipped by readers; a line whose checksum does not match is skipped with a warning. An ack file whose
``spool_id`` does not match the log (the log was replaced) counts as no ack at all: replaying is harmless,
because the ingest upserts. Writers hold a shared ``flock`` on the log; the log is deleted only by a holder of
an exclusive lock once everything is acknowledged, so a running reporter never loses its file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locks, so spools are never deleted
    fcntl = None  # type: ignore[assignment]

VERSION = 1
KIND = "lora-pipeline-metrics"
SUFFIX = ".jsonl"
ACK_SUFFIX = ".ack"
_POINTS_KEY = b',"points":'


@dataclass(frozen=True)
class SpoolRecord:
    """One record of the log: bytes ``[start, end)`` of the file."""

    start: int
    end: int
    count: int
    logged: int
    points: bytes
    """The JSON array of points, exactly as it is sent."""
    steps: tuple[int, int] = (0, 2**31 - 1)
    """The lowest and highest step in the record (two requests may be in flight only when these are disjoint)."""


@dataclass(frozen=True)
class SpoolBatch:
    """Consecutive records coalesced into one request; ``end`` is the offset to acknowledge after it."""

    points: bytes
    records: tuple[SpoolRecord, ...]
    end: int

    @property
    def count(self) -> int:
        return sum(record.count for record in self.records)

    @property
    def steps(self) -> tuple[int, int]:
        return min(r.steps[0] for r in self.records), max(r.steps[1] for r in self.records)

    def overlaps(self, other: SpoolBatch) -> bool:
        (low, high), (other_low, other_high) = self.steps, other.steps
        return low <= other_high and other_low <= high


class SpoolError(OSError):
    """The spool file is not a metrics spool (wrong header) or cannot be used."""


class Spool:
    """The write-ahead log of one job. Use :meth:`open` (writer) or :meth:`read` (readers such as ``sync``).

    Not thread-safe for concurrent appends; the reporter appends from one thread and reads from another,
    never past :attr:`end`.
    """

    def __init__(
        self, path: Path, fd: int, header: tuple[str, str, int], end: int, warn: Callable[[str], None]
    ) -> None:
        self.path = path
        self.ack_path = path.with_suffix(ACK_SUFFIX)
        self.job_id, self.spool_id, self.first_record = header
        """``first_record``: offset of the first record, just past the header line."""
        self.end = end
        """Offset just past the last complete record; readers never go beyond it."""
        self._fd = fd
        self._leftover: int | None = None
        """File size after a failed append, whose bytes past :attr:`end` must go before the next one."""
        self._warn_callback = warn
        self._warned_at: set[int] = set()
        self._acked = self._read_ack()

    @classmethod
    def open(cls, directory: Path, job_id: str, *, warn: Callable[[str], None]) -> Spool:
        """Open (creating if needed) the log of ``job_id`` for appending; a torn last line is cut off."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{job_id}{SUFFIX}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            _lock(fd, exclusive=False)
            if _cut_torn_tail(fd, path, os.fstat(fd).st_size, warn) == 0:
                header = _write_header(fd, job_id)
                _fsync_dir(directory)
            else:
                header = _read_header(path, job_id)
            return cls(path, fd, header, os.fstat(fd).st_size, warn)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def read(cls, path: Path, *, warn: Callable[[str], None]) -> Spool:
        """Open an existing log for replay without appending (``lora-pipeline metrics sync``)."""
        fd = os.open(path, os.O_RDONLY)
        try:
            return cls(path, fd, _header(path), _complete_size(path), warn)
        except BaseException:
            os.close(fd)
            raise

    # -- writing --------------------------------------------------------------------------------------------

    def append(self, points: list[str], logged: int, steps: tuple[int, int] | None = None) -> SpoolRecord:
        """Write one record holding ``points`` (encoded JSON objects) and make it durable.

        A write that fails (a full disk fails part-way through a record) is cut off again: a record written
        after a partial one would be unreadable, and everything after it out of step with :attr:`end`.
        """
        array = ("[" + ",".join(points) + "]").encode()
        head: dict[str, object] = {"v": VERSION, "count": len(points), "logged": logged, "crc32": zlib.crc32(array)}
        if steps is not None:
            head["steps"] = list(steps)
        line = json.dumps(head, separators=(",", ":")).encode()[:-1] + _POINTS_KEY + array + b"}\n"
        start = self.end
        self._cut_leftover()
        written = 0
        try:
            while written < len(line):  # the rest of a short write again: on a full disk, that raises why
                count = os.write(self._fd, line[written:])
                if count == 0:
                    raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
                written += count
            os.fsync(self._fd)
        except OSError:
            if written:
                self._leftover = start + written
                with contextlib.suppress(OSError):  # else cut before the next append
                    self._cut_leftover()
            raise
        self.end = start + len(line)
        record = SpoolRecord(start, self.end, len(points), logged, array)
        return replace(record, steps=steps) if steps is not None else record

    def _cut_leftover(self) -> None:
        """Truncate the bytes a failed append left past :attr:`end` (only when the file still ends with them,
        so that another writer's records are never cut)."""
        if self._leftover is None:
            return
        if os.fstat(self._fd).st_size == self._leftover:
            os.ftruncate(self._fd, self.end)
        self._leftover = None

    # -- reading --------------------------------------------------------------------------------------------

    def records(self, start: int, end: int | None = None) -> Iterator[SpoolRecord]:
        """Records between byte offsets ``start`` and ``end`` (default :attr:`end`), skipping bad lines."""
        stop = self.end if end is None else end
        with open(self.path, "rb") as handle:
            handle.seek(start)
            position = start
            while position < stop:
                line = handle.readline(stop - position)
                if not line:
                    return
                record = self._parse(line, position)
                position += len(line)
                if record is not None:
                    yield record

    def _warn(self, start: int, message: str) -> None:
        if start not in self._warned_at:
            self._warned_at.add(start)
            self._warn_callback(message)

    def _parse(self, line: bytes, start: int) -> SpoolRecord | None:
        if not line.endswith(b"\n"):
            self._warn(start, f"{self.path}: ignoring a torn record at byte {start} (written when a process died)")
            return None
        split = line.find(_POINTS_KEY)
        if split < 0:
            if not line.startswith(b'{"v":1,"kind"'):
                self._warn(start, f"{self.path}: skipping an unreadable line at byte {start}")
            return None
        try:
            head = json.loads(line[:split] + b"}")
            points = line[split + len(_POINTS_KEY) : -2]
            if zlib.crc32(points) != head["crc32"] or not line.endswith(b"]}\n"):
                raise ValueError("checksum mismatch")
            record = SpoolRecord(start, start + len(line), int(head["count"]), int(head.get("logged", 0)), points)
            if "steps" in head:
                record = replace(record, steps=(int(head["steps"][0]), int(head["steps"][1])))
            return record
        except (ValueError, KeyError, TypeError):
            self._warn(start, f"{self.path}: skipping a corrupt record at byte {start} (checksum or format)")
            return None

    def next_batch(self, cursor: int, *, max_points: int, max_bytes: int) -> SpoolBatch:
        """The records after ``cursor`` that fit one request (at least one record, however large).

        With no readable record left, the batch is empty and its ``end`` moves past the unreadable lines.
        """
        records: list[SpoolRecord] = []
        count = size = 0
        for record in self.records(cursor):
            if records and (count + record.count > max_points or size + len(record.points) > max_bytes):
                break
            records.append(record)
            count, size = count + record.count, size + len(record.points)
        if not records:
            return SpoolBatch(b"[]", (), self.end)
        points = b"[" + b",".join(record.points[1:-1] for record in records) + b"]"
        return SpoolBatch(points, tuple(records), records[-1].end)

    def pending(self) -> tuple[int, int]:
        """``(records, points)`` written but not yet acknowledged."""
        records = points = 0
        for record in self.records(self.acked):
            records += 1
            points += record.count
        return records, points

    # -- acknowledging ------------------------------------------------------------------------------------

    @property
    def acked(self) -> int:
        """Offset before which every record has been acknowledged by the server."""
        return self._acked

    def ack(self, offset: int) -> None:
        """Record that everything before ``offset`` is stored server-side (atomic replace, no fsync needed:
        a lost ack only means a harmless re-send)."""
        if offset <= self._acked:
            return
        temporary = self.ack_path.with_name(f".{self.ack_path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        try:
            temporary.write_text(json.dumps({"spool_id": self.spool_id, "offset": offset}), encoding="utf-8")
            os.replace(temporary, self.ack_path)
        except OSError:  # a full disk: leave no half-written file behind for every failed ack
            temporary.unlink(missing_ok=True)
            raise
        self._acked = offset

    def _read_ack(self) -> int:
        try:
            saved = json.loads(self.ack_path.read_text(encoding="utf-8"))
            offset = int(saved["offset"]) if saved.get("spool_id") == self.spool_id else 0
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            offset = 0
        return offset if self.first_record <= offset <= self.end else self.first_record

    # -- closing --------------------------------------------------------------------------------------------

    def close(self, *, remove_if_done: bool = False) -> bool:
        """Close the log; with ``remove_if_done``, delete it when fully acknowledged and nobody else has it
        open. Returns whether it was deleted."""
        removed = False
        try:
            if remove_if_done and self._acked >= self.end and _lock(self._fd, exclusive=True, wait=False):
                for path in (self.path, self.ack_path):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                removed = True
        finally:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        return removed


def spool_files(directory: Path) -> list[Path]:
    """The metrics logs in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(directory.glob(f"*{SUFFIX}"), key=lambda p: p.stat().st_mtime)


def _lock(fd: int, *, exclusive: bool, wait: bool = True) -> bool:
    if fcntl is None:
        return False
    flags = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    try:
        fcntl.flock(fd, flags if wait else flags | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def _write_header(fd: int, job_id: str) -> tuple[str, str, int]:
    spool_id = secrets.token_hex(8)
    header = {"v": VERSION, "kind": KIND, "job_id": job_id, "spool_id": spool_id}
    line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    os.write(fd, line)
    os.fsync(fd)
    return job_id, spool_id, len(line)


def _header(path: Path) -> tuple[str, str, int]:
    """``(job_id, spool_id, length of the header line)``."""
    with open(path, "rb") as handle:
        first = handle.readline(4096)
    try:
        header = json.loads(first)
        if header.get("kind") != KIND or not first.endswith(b"\n"):
            raise ValueError(header.get("kind"))
        return str(header["job_id"]), str(header["spool_id"]), len(first)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SpoolError(f"{path} is not a lora-pipeline metrics spool (unreadable header)") from None


def _read_header(path: Path, job_id: str) -> tuple[str, str, int]:
    header = _header(path)
    if header[0] != job_id:
        raise SpoolError(f"{path} belongs to job {header[0]}, not {job_id}")
    return header


def _complete_size(path: Path) -> int:
    """Size up to the last newline: a reader treats a torn tail as not there."""
    with open(path, "rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        handle.seek(max(0, size - 1))
        if handle.read(1) == b"\n":
            return size
        handle.seek(0)
        data = handle.read()
    return data.rfind(b"\n") + 1


def _cut_torn_tail(fd: int, path: Path, size: int, warn: Callable[[str], None]) -> int:
    complete = _complete_size(path)
    if complete < size:
        warn(f"{path}: ignored a torn last record ({size - complete} bytes, from a crash mid-write)")
        os.ftruncate(fd, complete)
        os.fsync(fd)
    return complete


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


__all__ = ["Spool", "SpoolBatch", "SpoolError", "SpoolRecord", "spool_files"]
