"""``sync_spool`` and ``lora-pipeline metrics sync``: upload what reporters left behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lora_pipeline import ConfigError
from lora_pipeline.cli import app
from lora_pipeline.pod import sync_spool
from lora_pipeline.pod.spool import spool_files

from .conftest import ANON_KEY, TOKEN, FakeSupabase


@pytest.fixture
def left_behind(make_reporter: Any, fake_supabase: FakeSupabase, tmp_path: Path) -> Path:
    """A spool holding 250 unsent points (the job's token was refused while the reporter ran)."""
    fake_supabase.ended = True
    reporter = make_reporter(batch_size=100)
    for step in range(250):
        reporter.log(step, loss=1.0, eval_loss=2.0 if step % 50 == 0 else None)
    assert reporter.finish(timeout=2).pending == 250
    fake_supabase.ended = False
    return tmp_path / "spool"


def test_sync_uploads_everything_pending_and_removes_the_spool(left_behind: Path, fake_supabase: FakeSupabase) -> None:
    result = sync_spool(left_behind, url=fake_supabase.url, anon_key=ANON_KEY, job_token=TOKEN, env={})
    assert (result.sent, result.pending, result.ok) == (250, 0, True)
    assert sorted(fake_supabase.rows) == list(range(250)) and fake_supabase.rows[50]["eval_loss"] == 2.0
    assert result.files[0].removed and spool_files(left_behind) == []
    assert sync_spool(left_behind, url=fake_supabase.url, anon_key=ANON_KEY, job_token=TOKEN, env={}).files == []


def test_sync_with_a_refused_token_keeps_everything(left_behind: Path, fake_supabase: FakeSupabase) -> None:
    result = sync_spool(left_behind, url=fake_supabase.url, anon_key=ANON_KEY, job_token="wrong-token-123", env={})
    assert not result.ok and result.pending == 250 and "42501" in (result.files[0].error or "")
    tokens = {fake_supabase.job_id: TOKEN}
    assert sync_spool(left_behind, url=fake_supabase.url, anon_key=ANON_KEY, job_token=tokens, env={}).ok


def test_sync_reads_settings_from_the_environment_and_says_what_is_missing(
    left_behind: Path, fake_supabase: FakeSupabase
) -> None:
    env = {"SUPABASE_URL": fake_supabase.url, "SUPABASE_ANON_KEY": ANON_KEY}
    result = sync_spool(left_behind, env=env)
    assert "LORA_JOB_TOKEN" in (result.files[0].error or "") and result.pending == 250
    assert sync_spool(left_behind, env={**env, "LORA_JOB_TOKEN": TOKEN}).sent == 250
    with pytest.raises(ConfigError, match="SUPABASE_URL"):
        sync_spool(left_behind, env={})


def test_the_cli_command_syncs_and_exits_non_zero_while_points_remain(
    left_behind: Path, fake_supabase: FakeSupabase
) -> None:
    runner = CliRunner()
    base = ["metrics", "sync", str(left_behind), "--url", fake_supabase.url, "--anon-key", ANON_KEY]
    failed = runner.invoke(app, [*base, "--job-token", "wrong-token-123"], env={"LORA_JOB_TOKEN": ""})
    assert failed.exit_code == 1
    done = runner.invoke(app, [*base, "--job-token", TOKEN])
    assert done.exit_code == 0, done.output
    assert "sent 250, pending 0" in done.output
    assert len(fake_supabase.rows) == 250
