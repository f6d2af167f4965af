"""Maintainers: regenerate sql/schema.lock.json from a fresh database after changing a migration.

    python scripts/update_schema_lock.py

Starts a private PostgreSQL, installs the Supabase bootstrap, applies every migration and writes the lock
that ``lora-pipeline db verify`` compares against. A test fails when the lock and the migrations disagree.
"""

from __future__ import annotations

import psycopg

from lora_pipeline.db.bootstrap import install_supabase_bootstrap
from lora_pipeline.db.migrations import MigrationRunner
from lora_pipeline.db.verify import write_lock
from lora_pipeline.local_supabase.postgres import PostgresCluster


def main() -> None:
    cluster = PostgresCluster.start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            install_supabase_bootstrap(conn, authenticator_password="lock")  # noqa: S106 (throwaway cluster)
            MigrationRunner(conn).migrate()
            print(f"wrote {write_lock(conn)}")
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
