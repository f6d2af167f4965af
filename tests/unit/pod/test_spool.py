"""The spool: append + fsync before sending, acknowledge after, recover from crashes mid-write."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from lora_pipeline.pod.spool import Spool, SpoolError, spool_files


@pytest.fixture
def job_id() -> str:
    return str(uuid.uuid4())


def points(start: int, count: int) -> list[str]:
    return [json.dumps({"step": step, "train_loss": 1.0}) for step in range(start, start + count)]


def test_records_read_back_exactly_as_written_and_ack_survives_reopening(tmp_path: Path, job_id: str) -> None:
    spool = Spool.open(tmp_path, job_id, warn=print)
    first = spool.append(points(0, 3), logged=3)
    second = spool.append(points(3, 2), logged=4)
    assert [json.loads(r.points) for r in spool.records(spool.acked)] == [
        [json.loads(p) for p in points(0, 3)],
        [json.loads(p) for p in points(3, 2)],
    ]
    assert (first.count, second.count, second.logged) == (3, 2, 4)
    spool.ack(first.end)
    spool.close()

    again = Spool.open(tmp_path, job_id, warn=print)
    assert again.acked == first.end
    assert again.pending() == (1, 2)
    batch = again.next_batch(again.acked, max_points=100, max_bytes=10_000)
    assert [p["step"] for p in json.loads(batch.points)] == [3, 4]
    assert batch.end == again.end
    again.close()


def test_a_batch_coalesces_records_up_to_the_limits(tmp_path: Path, job_id: str) -> None:
    spool = Spool.open(tmp_path, job_id, warn=print)
    for start in range(0, 50, 10):
        spool.append(points(start, 10), logged=10)
    batch = spool.next_batch(spool.acked, max_points=25, max_bytes=1_000_000)
    assert batch.count == 20 and len(json.loads(batch.points)) == 20
    one = spool.next_batch(spool.acked, max_points=5, max_bytes=1_000_000)
    assert one.count == 10, "a record larger than the limit still goes, alone"
    spool.close()


def test_a_torn_last_line_is_cut_with_a_warning_and_intact_lines_are_kept(tmp_path: Path, job_id: str) -> None:
    spool = Spool.open(tmp_path, job_id, warn=print)
    spool.append(points(0, 2), logged=2)
    spool.close()
    with open(tmp_path / f"{job_id}.jsonl", "ab") as handle:
        handle.write(b'{"v":1,"count":5,"logged":5,"crc32":1,"points":[{"step":9')  # died mid-write

    warnings: list[str] = []
    reader = Spool.read(tmp_path / f"{job_id}.jsonl", warn=warnings.append)
    assert reader.pending() == (1, 2)
    reader.close()

    writer = Spool.open(tmp_path, job_id, warn=warnings.append)
    assert any("torn" in w for w in warnings)
    writer.append(points(2, 1), logged=1)
    assert [r.count for r in writer.records(0)] == [2, 1]
    writer.close()


def test_a_corrupt_record_is_skipped_with_one_warning(tmp_path: Path, job_id: str) -> None:
    spool = Spool.open(tmp_path, job_id, warn=print)
    spool.append(points(0, 2), logged=2)
    path = spool.path
    spool.close()
    text = path.read_bytes().replace(b'"step": 1', b'"step": 7')  # bit rot: the checksum no longer matches
    path.write_bytes(text)
    warnings: list[str] = []
    spool = Spool.open(tmp_path, job_id, warn=warnings.append)
    spool.append(points(5, 1), logged=1)
    assert [r.count for r in spool.records(0)] == [1]
    assert [r.count for r in spool.records(0)] == [1]
    assert len([w for w in warnings if "corrupt" in w]) == 1
    spool.close()


def test_an_ack_from_another_spool_file_counts_as_no_ack(tmp_path: Path, job_id: str) -> None:
    spool = Spool.open(tmp_path, job_id, warn=print)
    record = spool.append(points(0, 2), logged=2)
    spool.ack(record.end)
    ack = spool.ack_path.read_text()
    spool.close(remove_if_done=True)
    assert not spool.path.exists()

    fresh = Spool.open(tmp_path, job_id, warn=print)
    fresh.append(points(0, 1), logged=1)
    fresh.ack_path.write_text(ack)  # a stale ack of the deleted log
    fresh.close()
    assert Spool.open(tmp_path, job_id, warn=print).pending() == (1, 1)


def test_the_log_is_deleted_only_when_fully_acked_and_nobody_else_has_it_open(tmp_path: Path, job_id: str) -> None:
    spool = Spool.open(tmp_path, job_id, warn=print)
    record = spool.append(points(0, 1), logged=1)
    assert spool.close(remove_if_done=True) is False, "not acknowledged yet"

    writer = Spool.open(tmp_path, job_id, warn=print)
    other = Spool.open(tmp_path, job_id, warn=print)  # e.g. `metrics sync` while the reporter runs
    other.ack(record.end)
    assert other.close(remove_if_done=True) is False, "the writer still holds it"
    writer.ack(record.end)
    assert writer.close(remove_if_done=True) is True
    assert spool_files(tmp_path) == []


def test_a_file_that_is_not_a_spool_is_refused(tmp_path: Path, job_id: str) -> None:
    (tmp_path / f"{job_id}.jsonl").write_text('{"something": "else"}\n')
    with pytest.raises(SpoolError):
        Spool.open(tmp_path, job_id, warn=print)
    other = str(uuid.uuid4())
    Spool.open(tmp_path, other, warn=print).close()
    (tmp_path / f"{other}.jsonl").rename(tmp_path / f"{job_id}.jsonl")
    with pytest.raises(SpoolError, match="belongs to job"):
        Spool.open(tmp_path, job_id, warn=print)
