"""``lora-pipeline db``: apply and verify the schema on any PostgreSQL (a Supabase project or the local stack)."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import console, db_url_option, echo_json
from ._output import JsonOpt

app = typer.Typer(
    help="Apply and verify lora-pipeline's schema, RLS policies, functions and buckets.", no_args_is_help=True
)

DbUrl = typer.Option(None, "--db-url", help="postgresql://user:password@host:5432/postgres (env LORA_PIPELINE_DB_URL)")


@app.command()
def migrate(db_url: str | None = DbUrl) -> None:
    """Apply pending migrations in order, each in its own transaction. Running it twice changes nothing."""
    from ..db.connect import connect
    from ..db.migrations import MigrationRunner

    with connect(db_url_option(db_url), autocommit=True) as conn:
        applied = MigrationRunner(conn).migrate()
    if not applied:
        console.print("database is up to date: no migration to apply")
        return
    for migration in applied:
        console.print(f"applied {migration.filename}")
    console.print(f"{len(applied)} migration(s) applied")


@app.command()
def status(db_url: str | None = DbUrl, json_out: bool = JsonOpt) -> None:
    """List migrations and whether each is applied."""
    from ..db.connect import connect
    from ..db.migrations import MigrationRunner

    with connect(db_url_option(db_url), autocommit=True) as conn:
        runner = MigrationRunner(conn)
        applied = runner.applied()
        runner.check_history(applied)
    if json_out:
        echo_json(
            [
                {"migration": m.filename, "applied_at": applied[m.version].applied_at if m.version in applied else None}
                for m in runner.migrations
            ]
        )
        return
    for migration in runner.migrations:
        record = applied.get(migration.version)
        state = f"applied {record.applied_at:%Y-%m-%d %H:%M}" if record else "pending"
        console.print(f"{migration.filename:40} {state}")


@app.command()
def verify(db_url: str | None = DbUrl) -> None:
    """Check tables, columns, indexes, RLS, policies, grants, foreign keys, functions and buckets against the
    migrations; exits 1 on any gap."""
    from ..db.connect import connect
    from ..db.verify import verify_schema

    with connect(db_url_option(db_url), autocommit=True) as conn:
        report = verify_schema(conn)
    console.print(report.render(), highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)


@app.command(hidden=True)
def snapshot(
    db_url: str | None = DbUrl,
    output: Path | None = typer.Option(None, help="where to write the lock (default sql/schema.lock.json)"),
) -> None:
    """Maintainers: write sql/schema.lock.json from a freshly migrated database."""
    from ..db.connect import connect
    from ..db.verify import write_lock

    with connect(db_url_option(db_url), autocommit=True) as conn:
        path = write_lock(conn, output)
    console.print(f"wrote {path}")
