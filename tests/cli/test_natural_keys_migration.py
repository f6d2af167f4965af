"""Migration 0009 on a database that already holds duplicates: it renames later twin datasets and deactivates
older twin conditions instead of failing to build its unique indexes."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg

from lora_pipeline.db.migrations import MigrationRunner, migrations_dir


def test_existing_duplicates_survive_the_unique_indexes(scratch_db: Callable[..., str], tmp_path: Path) -> None:
    before = tmp_path / "before"
    before.mkdir()
    for migration in sorted(migrations_dir().glob("*.sql")):
        if migration.name < "0009":
            shutil.copy(migration, before / migration.name)
    url = scratch_db()
    user = str(uuid.uuid4())
    with psycopg.connect(url, autocommit=True) as conn:
        MigrationRunner(conn, before).migrate()
        conn.execute("insert into auth.users (id, email) values (%s, 'twin@example.test')", (user,))
        for _ in range(3):
            conn.execute("insert into public.datasets (user_id, name) values (%s, 'support')", (user,))
            conn.execute(
                "insert into public.model_baselines (user_id, model_name, metric, kind, threshold) "
                "values (%s, 'bot', 'eval_loss', 'max', 5)",
                (user,),
            )
        applied = MigrationRunner(conn).migrate()
        assert "0009_natural_keys.sql" in [m.filename for m in applied]
        names = sorted(r[0] for r in conn.execute("select name from public.datasets where user_id = %s", (user,)))
        active = conn.execute("select count(*) from public.model_baselines where active").fetchone()
    assert names[0] == "support" and len(set(names)) == 3 and all(n.startswith("support (") for n in names[1:])
    assert active == (1,)
