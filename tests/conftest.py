"""Shared fixtures: a private PostgreSQL cluster for schema and CLI tests; each test that needs one gets a
scratch database with the Supabase bootstrap installed (roles, auth, storage) exactly as the embedded stack
has it. The embedded stack itself comes from the lora_pipeline pytest plugin (`local_supabase`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

from lora_pipeline.db.bootstrap import install_supabase_bootstrap
from lora_pipeline.db.migrations import MigrationRunner
from lora_pipeline.local_supabase.postgres import PostgresCluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    cluster = PostgresCluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def scratch_db(pg_cluster: PostgresCluster) -> Iterator[Callable[..., str]]:
    """``scratch_db(migrate=False)`` creates a bootstrapped database and returns its URL."""
    created: list[str] = []

    def make(*, migrate: bool = False) -> str:
        name = f"scratch_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
            admin.execute(f'create database "{name}"')
        created.append(name)
        url = pg_cluster.dsn(dbname=name)
        with psycopg.connect(url, autocommit=True) as conn:
            install_supabase_bootstrap(conn, authenticator_password="scratch-pass")
            if migrate:
                MigrationRunner(conn).migrate()
        return url

    yield make
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        for name in created:
            admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="module")
def shared_migrated_db(pg_cluster: PostgresCluster) -> Iterator[str]:
    """One migrated database per module, for tests that roll every change back."""
    name = f"shared_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = pg_cluster.dsn(dbname=name)
    with psycopg.connect(url, autocommit=True) as conn:
        install_supabase_bootstrap(conn, authenticator_password="scratch-pass")
        MigrationRunner(conn).migrate()
    yield url
    with psycopg.connect(pg_cluster.dsn(), autocommit=True) as admin:
        admin.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def migrated_db(scratch_db: Callable[..., str]) -> str:
    return scratch_db(migrate=True)


@pytest.fixture
def conn(migrated_db: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(migrated_db, autocommit=True) as connection:
        yield connection
