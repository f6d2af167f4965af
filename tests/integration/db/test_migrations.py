"""The migration runner: ordered, transactional, recorded with checksums, idempotent, strict about history."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from lora_pipeline import DatabaseUnreachable, MigrationChecksumMismatch, MigrationError, MigrationGap
from lora_pipeline.db.connect import connect, mask_dsn
from lora_pipeline.db.migrations import MigrationRunner, discover_migrations, migrations_dir


def copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), target)
    return target


def test_migrate_twice_applies_everything_then_nothing(scratch_db: Callable[..., str]) -> None:
    url = scratch_db()
    with psycopg.connect(url, autocommit=True) as conn:
        first = MigrationRunner(conn).migrate()
        second = MigrationRunner(conn).migrate()
        recorded = conn.execute("select version, checksum from lora_internal.schema_migrations order by 1").fetchall()
    assert [m.version for m in first] == list(range(1, len(discover_migrations()) + 1))
    assert second == []
    assert [(v, c) for v, c in recorded] == [(m.version, m.checksum) for m in first]


def test_an_edited_applied_migration_is_an_error_not_a_skip(scratch_db: Callable[..., str], tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path)
    url = scratch_db()
    with psycopg.connect(url, autocommit=True) as conn:
        MigrationRunner(conn, folder).migrate()
        edited = folder / "0001_core_schema.sql"
        edited.write_text(edited.read_text() + "\n-- sneaky edit\n")
        with pytest.raises(MigrationChecksumMismatch, match=r"0001_core_schema\.sql was edited"):
            MigrationRunner(conn, folder).migrate()


def test_a_gap_in_numbering_is_refused(tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path)
    (folder / "0003_row_level_security.sql").unlink()
    with pytest.raises(MigrationGap, match="0003 is missing"):
        discover_migrations(folder)


def test_a_duplicate_number_is_refused(tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path)
    (folder / "0002_copy.sql").write_text("select 1;")
    with pytest.raises(MigrationGap, match="duplicate"):
        discover_migrations(folder)


def test_a_badly_named_file_is_refused(tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path)
    (folder / "add-things.sql").write_text("select 1;")
    with pytest.raises(MigrationGap, match="NNNN_lowercase_name"):
        discover_migrations(folder)


def test_a_failing_migration_is_rolled_back_completely(scratch_db: Callable[..., str], tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path)
    count = len(discover_migrations(folder))
    (folder / f"{count + 1:04d}_broken.sql").write_text(
        "create table public.half_applied (id int);\nselect * from no_such_table;\n"
    )
    url = scratch_db()
    with psycopg.connect(url, autocommit=True) as conn:
        with pytest.raises(MigrationError, match=f"{count + 1:04d}_broken.sql failed"):
            MigrationRunner(conn, folder).migrate()
        exists = conn.execute("select to_regclass('public.half_applied')").fetchone()
        recorded = conn.execute("select max(version) from lora_internal.schema_migrations").fetchone()
    assert exists == (None,)
    assert recorded == (count,)


def test_a_removed_applied_migration_is_an_error(scratch_db: Callable[..., str], tmp_path: Path) -> None:
    folder = copy_migrations(tmp_path)
    url = scratch_db()
    with psycopg.connect(url, autocommit=True) as conn:
        MigrationRunner(conn, folder).migrate()
        last = sorted(folder.glob("*.sql"))[-1]
        last.unlink()
        with pytest.raises(MigrationError, match="file is missing"):
            MigrationRunner(conn, folder).migrate()


def test_unreachable_database_names_the_url_without_password() -> None:
    url = "postgresql://postgres:hunter2-secret@127.0.0.1:9/postgres"
    with pytest.raises(DatabaseUnreachable) as info:
        connect(url)
    assert "127.0.0.1:9" in str(info.value) and "hunter2-secret" not in str(info.value)
    assert mask_dsn(url) == "postgresql://postgres:***@127.0.0.1:9/postgres"


def test_not_a_database_url_is_a_config_error() -> None:
    from lora_pipeline import ConfigError

    with pytest.raises(ConfigError, match="is not a PostgreSQL URL"):
        connect("https://project.supabase.co")
