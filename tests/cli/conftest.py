"""Running the CLI as a user does: in-process through the console-script entry point (fast), or as a real
subprocess of the installed ``lora-pipeline`` script where the whole process matters (tracebacks, imports)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lora_pipeline.cli import main

EXE = shutil.which("lora-pipeline") or "lora-pipeline"
PROJECT_ENV = (
    "LORA_PIPELINE_URL",
    "SUPABASE_URL",
    "NEXT_PUBLIC_SUPABASE_URL",
    "LORA_PIPELINE_ANON_KEY",
    "SUPABASE_ANON_KEY",
    "NEXT_PUBLIC_SUPABASE_ANON_KEY",
    "LORA_PIPELINE_SERVICE_ROLE_KEY",
    "SUPABASE_SERVICE_ROLE_KEY",
    "SUPABASE_SERVICE_KEY",
    "LORA_PIPELINE_ACCESS_TOKEN",
    "LORA_PIPELINE_ROLE",
)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [line for line in self.out.splitlines() if line.strip()]


@pytest.fixture(autouse=True)
def _no_project_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Each test starts without project settings and with its own home (the dev pointer file lives there)."""
    for name in PROJECT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("COLUMNS", "40")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """``cli("jobs", "list", "-q")``: exit code, stdout and stderr of one in-process invocation."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(list(args))
        except SystemExit as done:
            code = int(done.code or 0) if not isinstance(done.code, str) else 1
        else:
            code = 0
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli_process() -> Callable[..., Result]:
    """The installed console script in a child process, with extra environment variables."""

    def run(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> Result:
        full = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
        full.update(env or {})
        done = subprocess.run([EXE, *args], capture_output=True, text=True, env=full, timeout=timeout, check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def user_shell(local_supabase: Any, user_factory: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A signed-in user's shell: URL, anon key and the user's access token in the environment; returns the
    same user's client, for arranging and checking what the commands did."""
    user, lp = user_factory()
    monkeypatch.setenv("SUPABASE_URL", local_supabase.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", local_supabase.anon_key)
    monkeypatch.setenv("LORA_PIPELINE_ACCESS_TOKEN", user.access_token)
    return lp
