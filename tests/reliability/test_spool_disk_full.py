"""A full disk under the metrics spool: a clear error, training goes on, and what can be kept is kept.

How the disk fills (the choice, since CI may run as root or not):

- ``RLIMIT_FSIZE`` (always): the reporter runs in a child process whose file-size limit is set just above the
  spool's size, with SIGXFSZ ignored, so the kernel refuses the spool's writes (``EFBIG``), the first one
  part-way through a record, as a full disk does. The limit is raised again to "free the space". It needs no
  privilege and binds root too.
- a 1 MiB tmpfs (only where ``mount`` is permitted, e.g. CI as root): a real ``ENOSPC`` from a real file system,
  filled by a ballast file and freed by deleting it.
- ``/dev/full`` (always): a spool file that cannot be written at all from the start.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from tests._support.tcp_proxy import TcpProxy

from lora_pipeline.local_supabase import LocalSupabase

from .conftest import SLOWEST_LOG_CALL, make_pod_job, stored, wait_until

DISK_ERROR = "cannot write the metrics spool"

CHILD = textwrap.dedent("""
    import json, logging, resource, signal, sys, time
    from dataclasses import asdict
    from pathlib import Path
    from lora_pipeline.pod import MetricsReporter, SendPolicy

    job_id, token, url, anon_key, spool_dir, options = sys.argv[1:7]
    options = json.loads(options)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    reporter = MetricsReporter(
        job_id, token, url, anon_key, spool_dir=spool_dir, rank=0, handle_signals=False, spool_interval=0.02,
        flush_interval=options["flush_interval"], batch_size=options["batch_size"], max_buffer=300,
        policy=SendPolicy(timeout=10, max_retries=1, max_in_flight=options["max_in_flight"]),
    )

    def log(step):
        began = time.perf_counter()
        reporter.log(step, loss=1.0 / (step + 1), tokens_seen=step * 7)
        return time.perf_counter() - began

    for step in range(100):
        log(step)
    assert reporter.flush(timeout=60), reporter.stats()
    spool = Path(reporter.stats().spool_path)
    _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (spool.stat().st_size + options["room"], hard))
    slowest = 0.0
    for step in range(100, 1100):
        slowest = max(slowest, log(step))
        if step % 50 == 0:
            time.sleep(0.01)  # a training step takes time; the spool writer runs meanwhile
    deadline = time.monotonic() + 30
    while reporter.stats().dropped_points == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    full = reporter.stats()
    if options["free_space"]:
        resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))  # the space is back
    for step in range(1100, 1200):
        slowest = max(slowest, log(step))
    final = reporter.finish(timeout=60)
    print(json.dumps({"full": asdict(full), "final": asdict(final), "slowest": slowest}), flush=True)
""")


def check_kept(stack: LocalSupabase, job_id: str, final: dict[str, Any], logged: int) -> dict[int, Any]:
    """Everything not counted as dropped is stored once with its logged value; nothing else is missing."""
    rows = stored(stack, job_id)
    assert final["pending"] == 0, final
    assert len(rows) == logged - final["dropped_points"], (len(rows), final)
    assert final["sent"] == len(rows)
    wrong = [s for s, r in rows.items() if r["train_loss"] != 1.0 / (s + 1) or r["extra"] != {"tokens_seen": s * 7}]
    assert not wrong, wrong[:10]
    return rows


def run_child(url: str, anon_key: str, job: Any, spool_dir: Path, **options: Any) -> tuple[dict[str, Any], str]:
    """Run :data:`CHILD`; returns its report and its stderr."""
    settings = {"free_space": True, "room": 2500, "batch_size": 100, "flush_interval": 0.05, "max_in_flight": 2}
    settings.update(options)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, job.id, job.token, url, anon_key, str(spool_dir), json.dumps(settings)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), result.stderr


def test_a_spool_that_hits_the_file_size_limit_keeps_what_fits_and_recovers(
    local_supabase: LocalSupabase, tmp_path: Path
) -> None:
    job = make_pod_job(local_supabase)
    # 2500 bytes of room: the first record that meets the limit is written part-way, as on a full disk.
    report, stderr = run_child(local_supabase.url, local_supabase.anon_key, job, tmp_path / "spool")
    full, final = report["full"], report["final"]

    errors = [line for line in stderr.splitlines() if DISK_ERROR in line]
    assert len(errors) == 1 and errors[0].startswith("ERROR"), stderr[-3000:]
    assert str(tmp_path / "spool") in errors[0] and "File too large" in errors[0], "names the spool and the cause"
    assert "corrupt" not in stderr and "torn" not in stderr, "a write cut short by the full disk left no debris"
    assert 0 < full["dropped_points"] < 1000, "memory kept max_buffer points and dropped only the oldest beyond it"
    assert final["logged"] == 1200 and final["dropped_points"] == full["dropped_points"]
    rows = check_kept(local_supabase, job.id, final, 1200)
    assert set(range(100)) <= set(rows) and set(range(1100, 1200)) <= set(rows)
    assert report["slowest"] < SLOWEST_LOG_CALL, "log() never waits for the disk"


def test_a_disk_still_full_at_finish_delivers_everything_that_reached_the_spool(
    local_supabase: LocalSupabase, tmp_path: Path
) -> None:
    job = make_pod_job(local_supabase)
    # Room for a few batches that go out one at a time over a slow link: at finish() most of them are still
    # on disk, unsent, while the points the writer could not spool wait in memory.
    with TcpProxy(local_supabase.url) as slow_link:
        slow_link.delay(0.15)
        report, stderr = run_child(
            slow_link.url,
            local_supabase.anon_key,
            job,
            tmp_path / "spool",
            free_space=False,
            room=16_000,
            batch_size=20,
            flush_interval=60,
            max_in_flight=1,
        )
    final = report["final"]
    rows = stored(local_supabase, job.id)
    assert final["spooled"] >= 160, "several batches reached the disk before it filled"
    assert final["sent"] == final["spooled"] == len(rows), final
    lost_in_memory = final["logged"] - final["dropped_points"] - final["spooled"]
    assert final["pending"] == lost_in_memory > 0
    assert f"{lost_in_memory} could not be written to disk and are lost" in stderr, stderr[-2000:]
    assert set(range(100)) <= set(rows)


@contextlib.contextmanager
def small_tmpfs(size: str = "1m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted on a fresh folder; skips the test where mounting is not permitted."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    where = Path(tempfile.mkdtemp(prefix="lora-tmpfs-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        where.rmdir()
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'not permitted'})")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)
        with contextlib.suppress(OSError):
            where.rmdir()


def fill(directory: Path) -> Path:
    """Write a ballast file until the file system is full; returns it (delete it to free the space)."""
    ballast = directory / "ballast"
    with open(ballast, "wb", buffering=0) as handle:
        while True:
            try:
                handle.write(b"\0" * 4096)
            except OSError:
                return ballast


def test_a_full_file_system_under_the_spool_keeps_what_fits_and_recovers(
    local_supabase: LocalSupabase, make_reporter: Any, caplog: pytest.LogCaptureFixture
) -> None:
    job = make_pod_job(local_supabase)
    with small_tmpfs() as disk:
        reporter = make_reporter(
            job, local_supabase.url, local_supabase.anon_key, spool_dir=disk, batch_size=100, max_buffer=300
        )
        with caplog.at_level("WARNING", logger="lora_pipeline"):
            for step in range(100):
                reporter.log(step, loss=1.0 / (step + 1), tokens_seen=step * 7)
            assert reporter.flush(timeout=30)
            ballast = fill(disk)
            slowest = 0.0
            for step in range(100, 1100):
                began = time.perf_counter()
                reporter.log(step, loss=1.0 / (step + 1), tokens_seen=step * 7)
                slowest = max(slowest, time.perf_counter() - began)
                if step % 50 == 0:
                    reporter.flush()
            assert wait_until(lambda: reporter.stats().dropped_points > 0)
            ballast.unlink()
            for step in range(1100, 1200):
                reporter.log(step, loss=1.0 / (step + 1), tokens_seen=step * 7)
            final = reporter.finish(timeout=60)
        errors = [r for r in caplog.records if DISK_ERROR in r.getMessage()]
    assert len(errors) == 1 and errors[0].levelname == "ERROR" and "No space left" in errors[0].getMessage()
    rows = check_kept(local_supabase, job.id, asdict(final), 1200)
    assert set(range(100)) <= set(rows) and set(range(1100, 1200)) <= set(rows)
    assert slowest < SLOWEST_LOG_CALL


def test_a_spool_file_that_cannot_be_written_at_all_falls_back_to_a_temporary_spool(
    local_supabase: LocalSupabase, make_reporter: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    job = make_pod_job(local_supabase)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / f"{job.id}.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    with caplog.at_level("ERROR", logger="lora_pipeline"):
        reporter = make_reporter(job, local_supabase.url, local_supabase.anon_key, spool_dir=spool_dir)
    assert [r for r in caplog.records if "cannot use the metrics spool directory" in r.getMessage()]
    assert reporter.stats().spool_path and not reporter.stats().spool_path.startswith(str(spool_dir))
    for step in range(500):
        reporter.log(step, loss=1.0 / (step + 1), tokens_seen=step * 7)
    final = reporter.finish(timeout=60)
    check_kept(local_supabase, job.id, asdict(final), 500)
    assert final.dropped_points == 0
