"""Database tooling: the migration runner, the schema verifier and the Supabase bootstrap for local use.

Needs the ``local`` extra (psycopg). ``lora-pipeline db migrate|verify --db-url URL`` are the CLI faces.
"""

from .migrations import Migration, MigrationRunner, discover_migrations, migrations_dir
from .verify import SchemaGap, VerifyReport, snapshot_schema, verify_schema

__all__ = [
    "Migration",
    "MigrationRunner",
    "SchemaGap",
    "VerifyReport",
    "discover_migrations",
    "migrations_dir",
    "snapshot_schema",
    "verify_schema",
]
