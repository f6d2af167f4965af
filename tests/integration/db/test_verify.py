"""`db verify` compares the live catalog with what the migrations declare (sql/schema.lock.json)."""

from __future__ import annotations

from typing import Any

import psycopg

from lora_pipeline.db.verify import snapshot_schema, verify_schema


def test_fresh_migration_matches_the_lock_exactly(conn: psycopg.Connection[Any]) -> None:
    """If this fails after changing a migration, regenerate the lock: `lora-pipeline db snapshot --db-url ...`."""
    report = verify_schema(conn)
    assert report.ok, report.render()
    assert sum(report.checked.values()) > 300


def test_a_dropped_policy_is_named(conn: psycopg.Connection[Any]) -> None:
    conn.execute("drop policy metrics_points_owner_select on public.metrics_points")
    report = verify_schema(conn)
    assert not report.ok
    assert [str(g) for g in report.gaps] == ["policy public.metrics_points.metrics_points_owner_select: missing"]


def test_the_seeds_anon_insert_policy_is_flagged_as_extra(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "create policy anyone_writes on public.metrics_points for insert to anon with check (job_id is not null)"
    )
    gaps = [str(g) for g in verify_schema(conn).gaps]
    assert gaps == ["policy public.metrics_points.anyone_writes: is not declared by the migrations (extra)"]


def test_a_grant_to_anon_is_flagged(conn: psycopg.Connection[Any]) -> None:
    conn.execute("grant select on public.training_jobs to anon")
    gaps = [str(g) for g in verify_schema(conn).gaps]
    assert gaps == ["table grant training_jobs.anon: is not declared by the migrations (extra)"]


def test_disabled_rls_missing_index_and_bucket_change_are_reported(conn: psycopg.Connection[Any]) -> None:
    conn.execute("alter table public.datasets disable row level security")
    conn.execute("drop index public.metrics_points_job_id_step_desc_idx")
    conn.execute("update storage.buckets set public = true where id = 'lora-models'")
    names = {g.name for g in verify_schema(conn).gaps}
    assert {"datasets", "metrics_points.metrics_points_job_id_step_desc_idx", "lora-models"} <= names


def test_a_security_definer_function_losing_its_search_path_is_reported(conn: psycopg.Connection[Any]) -> None:
    conn.execute("alter function public.ingest_metrics(uuid, text, jsonb) reset search_path")
    gaps = verify_schema(conn).gaps
    assert [g.name for g in gaps] == ["public.ingest_metrics(job_id uuid, job_token text, points jsonb)"]


def test_snapshot_covers_every_table(conn: psycopg.Connection[Any]) -> None:
    snap = snapshot_schema(conn)
    assert len(snap["tables"]) == 10 and all(t["rls"] for t in snap["tables"].values())
    assert not any(key.endswith(".anon") for key in snap["table_grants"])


def test_a_column_grant_widened_back_to_the_table_is_reported(conn: psycopg.Connection[Any]) -> None:
    """Issue 12: users update only a job's name; granting them status or pod_id again is a gap ``db verify`` names."""
    conn.execute("grant update (pod_id, status) on public.training_jobs to authenticated")
    conn.execute("grant insert on public.validation_results to authenticated")
    gaps = sorted(str(g) for g in verify_schema(conn).gaps)
    assert any(g.startswith("column grant training_jobs.authenticated.UPDATE") for g in gaps), gaps
    assert any(g.startswith("table grant validation_results.authenticated") for g in gaps), gaps


def test_a_dropped_tenant_constraint_is_reported(conn: psycopg.Connection[Any]) -> None:
    conn.execute("alter table public.datasets drop constraint datasets_storage_path_in_owner_folder")
    conn.execute("drop trigger guard_dataset_update on public.datasets")
    names = {g.name for g in verify_schema(conn).gaps}
    assert any("datasets_storage_path_in_owner_folder" in name for name in names), names
    assert any("guard_dataset_update" in name for name in names), names
