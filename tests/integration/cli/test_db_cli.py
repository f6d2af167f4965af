"""`lora-pipeline db migrate|verify|status` as a user runs them, via the installed console script."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable

import psycopg

EXE = shutil.which("lora-pipeline") or "lora-pipeline"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("LORA_PIPELINE_DB_URL", None) if env is None else None
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=full_env, timeout=120, check=False)


def test_migrate_twice_then_verify_then_a_dropped_policy_fails_verify(scratch_db: Callable[..., str]) -> None:
    url = scratch_db()
    first = cli("db", "migrate", "--db-url", url)
    assert first.returncode == 0, first.stderr
    assert "applied 0001_core_schema.sql" in first.stdout and "migration(s) applied" in first.stdout

    second = cli("db", "migrate", "--db-url", url)
    assert second.returncode == 0 and "up to date: no migration to apply" in second.stdout

    verified = cli("db", "verify", "--db-url", url)
    assert verified.returncode == 0, verified.stdout
    assert "OK: the database matches the migrations" in verified.stdout

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("drop policy training_jobs_owner_select on public.training_jobs")
    broken = cli("db", "verify", "--db-url", url)
    assert broken.returncode == 1
    assert "policy public.training_jobs.training_jobs_owner_select: missing" in broken.stdout


def test_db_url_from_environment_and_status(scratch_db: Callable[..., str]) -> None:
    url = scratch_db()
    assert cli("db", "migrate", env={"LORA_PIPELINE_DB_URL": url}).returncode == 0
    status = cli("db", "status", env={"LORA_PIPELINE_DB_URL": url})
    assert status.returncode == 0 and "0007_metrics_ingest.sql" in status.stdout and "pending" not in status.stdout


def test_unreachable_database_is_a_clear_error_with_exit_code_2() -> None:
    result = cli("db", "verify", "--db-url", "postgresql://postgres:topsecret@127.0.0.1:9/postgres")
    assert result.returncode == 2
    assert "cannot connect to postgresql://postgres:***@127.0.0.1:9/postgres" in result.stderr
    assert "topsecret" not in result.stderr + result.stdout


def test_missing_db_url_names_the_option_and_env_vars() -> None:
    result = cli("db", "migrate", env={"LORA_PIPELINE_DB_URL": "", "SUPABASE_DB_URL": "", "DATABASE_URL": ""})
    assert result.returncode == 2
    assert "--db-url" in result.stderr and "LORA_PIPELINE_DB_URL" in result.stderr


def test_status_as_json_lists_every_migration_with_its_time(scratch_db: Callable[..., str]) -> None:
    import json

    url = scratch_db()
    assert cli("db", "migrate", "--db-url", url).returncode == 0
    listed = json.loads(cli("db", "status", "--db-url", url, "--json").stdout)
    assert [row["migration"] for row in listed][:2] == ["0001_core_schema.sql", "0002_job_lifecycle.sql"]
    assert "0009_natural_keys.sql" in {row["migration"] for row in listed}
    assert all(row["applied_at"] for row in listed)
