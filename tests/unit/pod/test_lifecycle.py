"""Process-level behaviour, each in a fresh interpreter: exit and SIGTERM finish the reporter, signal handlers
chain, ``import lora_pipeline.pod`` stays light."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lora_pipeline._config import ENV_NAMES
from lora_pipeline.pod._env import POD_ENV_NAMES

from .conftest import ANON_KEY, TOKEN, FakeSupabase

CHILD = """
import os, signal, sys, time
from lora_pipeline.pod import MetricsReporter
{before}
reporter = MetricsReporter(os.environ["JOB"], "{token}", os.environ["URL"], "{anon}", spool_dir=os.environ["SPOOL"],
                           rank=0, flush_interval=60)
for step in range(100):
    reporter.log(step, loss=1.0 / (step + 1))
{after}
"""


def run_child(
    fake: FakeSupabase, tmp_path: Path, *, before: str = "", after: str = ""
) -> subprocess.CompletedProcess[str]:
    code = CHILD.format(token=TOKEN, anon=ANON_KEY, before=textwrap.dedent(before), after=textwrap.dedent(after))
    env = {**os.environ, "JOB": fake.job_id, "URL": fake.url, "SPOOL": str(tmp_path / "spool")}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)


def test_points_logged_before_a_normal_exit_are_sent_by_the_atexit_hook(
    fake_supabase: FakeSupabase, tmp_path: Path
) -> None:
    result = run_child(fake_supabase, tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(fake_supabase.rows) == list(range(100))


def test_sigterm_finishes_the_reporter_then_terminates_as_before(fake_supabase: FakeSupabase, tmp_path: Path) -> None:
    result = run_child(fake_supabase, tmp_path, after="os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)")
    assert result.returncode == -signal.SIGTERM
    assert sorted(fake_supabase.rows) == list(range(100))


def test_sigterm_chains_to_the_handler_that_was_installed_before(fake_supabase: FakeSupabase, tmp_path: Path) -> None:
    before = """
    def previous(signum, frame):
        print("previous handler ran")
        sys.exit(3)
    signal.signal(signal.SIGTERM, previous)
    """
    result = run_child(
        fake_supabase, tmp_path, before=before, after="os.kill(os.getpid(), signal.SIGTERM); time.sleep(30)"
    )
    assert result.returncode == 3 and "previous handler ran" in result.stdout
    assert len(fake_supabase.rows) == 100


@pytest.mark.parametrize("module", ["lora_pipeline.pod", "lora_pipeline.pod.reporter", "lora_pipeline.pod.sync"])
def test_importing_the_pod_side_pulls_in_no_heavy_dependency(module: str) -> None:
    heavy = ("supabase", "runpod", "torch", "transformers", "pandas", "matplotlib", "pydantic", "numpy", "postgrest")
    code = (
        f"import sys, {module} as m\n"
        "getattr(m, 'MetricsReporter', None)\n"
        f"print([name for name in {heavy!r} if name in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_the_pod_reads_the_same_url_and_key_variables_as_the_sdk() -> None:
    assert POD_ENV_NAMES["url"] == ENV_NAMES["url"]
    assert POD_ENV_NAMES["anon_key"] == ENV_NAMES["anon_key"]
    assert not any("SERVICE" in name for names in POD_ENV_NAMES.values() for name in names)
