"""Apply ``sql/migrations`` in order, each in its own transaction, recorded with a checksum.

Rules:

- Files are named ``NNNN_name.sql`` and numbered 0001, 0002, ... without holes or duplicates.
- An applied migration whose file changed afterwards is an error (:class:`MigrationChecksumMismatch`), never a
  silent skip: add a new migration instead of editing an old one.
- A migration either applies completely or not at all; a failure names the file and Postgres' message.
- Concurrent runners serialise on an advisory lock; running twice changes nothing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .._exceptions import MigrationChecksumMismatch, MigrationError, MigrationGap
from .._logging import get_logger
from .paths import sql_root

log = get_logger("db.migrations")

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x10_AA_01  # pg_advisory_xact_lock key for migration runs
_TRACKING = """
create schema if not exists lora_internal;
create table if not exists lora_internal.schema_migrations (
  version integer primary key,
  name text not null,
  checksum text not null,
  applied_at timestamptz not null default now()
);
"""


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def filename(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class AppliedMigration:
    version: int
    name: str
    checksum: str
    applied_at: datetime


def migrations_dir() -> Path:
    return sql_root() / "migrations"


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    """The migrations of ``directory`` in order.

    Raises:
        MigrationGap: a file that does not follow ``NNNN_name.sql``, a hole or a duplicate number.
    """
    directory = directory or migrations_dir()
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationGap(f"{path.name}: migration files are named NNNN_lowercase_name.sql (e.g. 0008_add_x.sql)")
        found.append(Migration(int(match["version"]), match["name"], path, path.read_text(encoding="utf-8")))
    for expected, migration in enumerate(found, start=1):
        if migration.version != expected:
            duplicate = any(m.version == migration.version for m in found if m is not migration)
            problem = "is a duplicate number" if duplicate else f"follows a gap: {expected:04d} is missing"
            raise MigrationGap(f"{migration.filename} {problem}; number migrations 0001, 0002, ... without holes")
    return found


class MigrationRunner:
    """Applies and inspects migrations on one open psycopg connection."""

    def __init__(self, connection: Any, directory: Path | None = None) -> None:
        self.connection = connection
        self.migrations = discover_migrations(directory)

    def applied(self) -> dict[int, AppliedMigration]:
        """Migrations recorded in the database, by version."""
        with self.connection.transaction():
            self.connection.execute(_TRACKING)
        rows = self.connection.execute(
            "select version, name, checksum, applied_at from lora_internal.schema_migrations order by version"
        ).fetchall()
        return {row[0]: AppliedMigration(*row) for row in rows}

    def check_history(self, applied: dict[int, AppliedMigration]) -> None:
        """Refuse to go on when an applied migration changed or disappeared."""
        files = {m.version: m for m in self.migrations}
        for version, record in applied.items():
            migration = files.get(version)
            if migration is None:
                raise MigrationError(
                    f"migration {version:04d}_{record.name} is applied in the database but its file is missing: "
                    "restore it (applied migrations are never deleted)"
                )
            if migration.checksum != record.checksum:
                raise MigrationChecksumMismatch(
                    f"{migration.filename} was edited after it was applied (checksum {record.checksum[:12]} in the "
                    f"database, {migration.checksum[:12]} on disk): revert the edit and put the change in a new "
                    "migration"
                )

    def pending(self) -> list[Migration]:
        applied = self.applied()
        self.check_history(applied)
        return [m for m in self.migrations if m.version not in applied]

    def migrate(self) -> list[Migration]:
        """Apply every pending migration in order; returns those applied (empty when up to date)."""
        done: list[Migration] = []
        for migration in self.pending():
            if self._apply(migration):
                done.append(migration)
        return done

    def _apply(self, migration: Migration) -> bool:
        import psycopg

        try:
            with self.connection.transaction():
                self.connection.execute("select pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                already = self.connection.execute(
                    "select checksum from lora_internal.schema_migrations where version = %s", (migration.version,)
                ).fetchone()
                if already is not None:
                    return False
                self.connection.execute(migration.sql)
                self.connection.execute(
                    "insert into lora_internal.schema_migrations (version, name, checksum) values (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
        except psycopg.Error as error:
            diag = getattr(error, "diag", None)
            where = f" at character {diag.statement_position}" if diag and diag.statement_position else ""
            raise MigrationError(
                f"{migration.filename} failed{where} and was rolled back: {str(error).strip()}"
            ) from error
        log.info("applied migration %s", migration.filename)
        return True


__all__ = ["AppliedMigration", "Migration", "MigrationRunner", "discover_migrations", "migrations_dir"]
