"""Exactly which columns a signed-in user may write, per table (issue 12).

Service-side code trusts some columns (a job's pod, status, price and token; a dataset's object). A column a
user may write is a value another code path must never trust, so every column the ``authenticated`` role may
insert or update is listed here; a new column, or a new grant, fails this test until someone decides.
"""

from __future__ import annotations

from typing import Any

import psycopg

from lora_pipeline.local_supabase import LocalSupabase

ALL = "*"
"""Every column of the table (a table-level grant)."""

INSERT: dict[str, set[str] | str] = {
    "datasets": ALL,
    "dataset_download_tokens": ALL,
    "training_jobs": ALL,
    "job_events": ALL,
    "notifications": ALL,
    "model_baselines": ALL,
}
UPDATE: dict[str, set[str] | str] = {
    "datasets": {
        "name",
        "description",
        "format",
        "storage_path",
        "file_name",
        "size_bytes",
        "sha256",
        "num_examples",
        "token_stats",
        "status",
        "validation_report",
        "upload_url",
    },
    "dataset_download_tokens": {"revoked_at"},
    "training_jobs": {"name"},
    "notifications": {"read_at"},
    "model_baselines": ALL,
}
"""``datasets`` object columns are writable only while the upload runs (trigger guard_dataset_update)."""


def _columns(db: psycopg.Connection[Any], table: str) -> set[str]:
    rows = db.execute(
        "select column_name from information_schema.columns where table_schema = 'public' and table_name = %s",
        (table,),
    ).fetchall()
    return {name for (name,) in rows}


def _writable(db: psycopg.Connection[Any], privilege: str) -> dict[str, set[str]]:
    rows = db.execute(
        """
        select c.table_name, c.column_name from information_schema.columns c
         where c.table_schema = 'public'
           and has_column_privilege('authenticated', format('public.%%I', c.table_name), c.column_name, %s)
        """,
        (privilege,),
    ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        if not table.startswith("conf_"):
            found.setdefault(table, set()).add(column)
    return found


def _expected(db: psycopg.Connection[Any], listed: dict[str, set[str] | str]) -> dict[str, set[str]]:
    return {table: _columns(db, table) if columns == ALL else set(columns) for table, columns in listed.items()}


def test_users_insert_exactly_the_listed_columns(stack: LocalSupabase) -> None:
    with stack.connect() as db:
        assert _writable(db, "INSERT") == _expected(db, INSERT)


def test_users_update_exactly_the_listed_columns(stack: LocalSupabase) -> None:
    with stack.connect() as db:
        assert _writable(db, "UPDATE") == _expected(db, UPDATE)


def test_no_column_the_control_plane_trusts_is_user_writable(stack: LocalSupabase) -> None:
    trusted = {
        "training_jobs": {
            "status",
            "status_reason",
            "pod_id",
            "cost_per_hour",
            "gpu_type",
            "backend",
            "user_id",
            "job_token_hash",
            "job_token_expires_at",
            "progress",
            "heartbeat_at",
            "error",
            "started_at",
            "finished_at",
            "attempt",
            "dataset_id",
        },
        "validation_results": {"decision", "conditions", "job_id", "user_id", "model_name"},
        "cost_records": {"amount_usd", "seconds", "hourly_rate", "started_at"},
        "datasets": {"user_id", "storage_bucket"},
    }
    with stack.connect() as db:
        updatable = _writable(db, "UPDATE")
        insertable = _writable(db, "INSERT")
    for table, columns in trusted.items():
        assert not columns & updatable.get(table, set()), table
        if table in ("validation_results", "cost_records"):
            assert not insertable.get(table), table
