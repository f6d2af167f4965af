"""lp.datasets: upload invariants, resumable uploads, RLS between users, and refusals that leave nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lora_pipeline import Conflict, DatasetValidationError, NotFound, PayloadTooLarge, UnsupportedMediaType
from lora_pipeline.types.datasets import DatasetStatus

from .conftest import SAMPLE, write_large


def objects(stack: Any) -> list[str]:
    with psycopg.connect(stack.db_url) as conn:
        return [r[0] for r in conn.execute("select name from storage.objects where bucket_id = 'lora-datasets'")]


def dataset_rows(stack: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.db_url) as conn:
        return conn.execute("select id, status, storage_path from public.datasets").fetchall()


def test_upload_records_validated_metadata_and_stores_the_object(local_supabase: Any, user_factory: Any) -> None:
    user, lp = user_factory()
    dataset = lp.datasets.upload(SAMPLE, name="support", description="demo", progress=None)
    assert dataset.status is DatasetStatus.READY and dataset.user_id == user.id
    assert dataset.format == "chat" and dataset.num_examples == 420 and dataset.size_bytes == SAMPLE.stat().st_size
    assert dataset.storage_path == f"{user.id}/{dataset.id}/support_chat.jsonl"
    assert len(dataset.sha256 or "") == 64 and dataset.validation_report and dataset.token_stats
    assert objects(local_supabase) == [dataset.storage_path]


def test_invalid_file_uploads_nothing(local_supabase: Any, user_factory: Any, tmp_path: Path) -> None:
    _, lp = user_factory()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    with pytest.raises(DatasetValidationError) as info:
        lp.datasets.upload(bad, name="bad", progress=None)
    assert info.value.report.counts_by_code.get("invalid_json") == 1
    assert dataset_rows(local_supabase) == [] and objects(local_supabase) == []


def test_over_the_bucket_limit_is_refused_before_any_byte_moves(
    local_supabase: Any, user_factory: Any, tmp_path: Path
) -> None:
    _, lp = user_factory()
    huge = tmp_path / "huge.jsonl"
    with open(huge, "wb") as handle:  # sparse: costs no disk
        handle.truncate(501 * 1024 * 1024)
    with pytest.raises(PayloadTooLarge, match="500 MB limit"):
        lp.datasets.upload(huge, name="huge", progress=None)
    assert dataset_rows(local_supabase) == []


def test_a_refused_mime_type_leaves_no_row(
    local_supabase: Any, user_factory: Any, small_dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lora_pipeline.resources import datasets as module

    _, lp = user_factory()
    monkeypatch.setattr(module, "content_type_for", lambda path, report: "image/png")
    with pytest.raises(UnsupportedMediaType):
        lp.datasets.upload(small_dataset, name="png", progress=None)
    assert dataset_rows(local_supabase) == [] and objects(local_supabase) == []


def test_a_failing_final_row_write_leaves_no_orphan_object(
    local_supabase: Any, user_factory: Any, small_dataset: Path
) -> None:
    _, lp = user_factory()
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute("""create or replace function public.refuse_ready() returns trigger language plpgsql as $$
                        begin if new.status = 'ready' and new.name = 'doomed' then
                          raise exception 'simulated failure of the row write'; end if; return new; end $$""")
        conn.execute(
            "create trigger refuse_ready before update on public.datasets "
            "for each row execute function public.refuse_ready()"
        )
    try:
        with pytest.raises(Exception, match="simulated failure"):
            lp.datasets.upload(small_dataset, name="doomed", progress=None)
        assert objects(local_supabase) == [] and dataset_rows(local_supabase) == []
    finally:
        with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
            conn.execute("drop trigger refuse_ready on public.datasets")
            conn.execute("drop function public.refuse_ready()")


KILLER = textwrap.dedent("""
    import os, signal, sys
    from lora_pipeline import LoraPipeline
    lp = LoraPipeline(url=sys.argv[1], anon_key=sys.argv[2], access_token=sys.argv[3])
    def progress(done, total):
        if done >= 6 * 1024 * 1024:
            os.kill(os.getpid(), signal.SIGKILL)
    lp.datasets.upload(sys.argv[4], name="big", progress=progress)
""")


def test_a_killed_large_upload_resumes_instead_of_restarting(
    local_supabase: Any, user_factory: Any, tmp_path: Path
) -> None:
    user, lp = user_factory()
    big = write_large(tmp_path / "big.jsonl", 14 * 1024 * 1024)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, local_supabase.url, local_supabase.anon_key, user.access_token, str(big)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL
    [(dataset_id, status, _)] = dataset_rows(local_supabase)
    assert status == "uploading" and objects(local_supabase) == []
    seen: list[int] = []
    dataset = lp.datasets.upload(big, name="big", progress=lambda done, total: seen.append(done))
    assert dataset.id == str(dataset_id) and dataset.status is DatasetStatus.READY
    assert seen[0] >= 6 * 1024 * 1024, "the second run must start from the server's offset, not from 0"
    path = lp.datasets.download(dataset.id, tmp_path / "back.jsonl", progress=None)
    assert path.read_bytes() == big.read_bytes()


def test_user_b_cannot_list_download_or_delete_user_a_dataset(
    local_supabase: Any, user_factory: Any, small_dataset: Path, tmp_path: Path
) -> None:
    _, alice = user_factory()
    _, bob = user_factory()
    dataset = alice.datasets.upload(small_dataset, name="private", progress=None)
    assert bob.datasets.list() == []
    with pytest.raises(NotFound):
        bob.datasets.retrieve(dataset.id)
    with pytest.raises(NotFound):
        bob.datasets.download(dataset.id, tmp_path, progress=None)
    with pytest.raises(NotFound):
        bob.datasets.delete(dataset.id)
    assert alice.datasets.retrieve(dataset.id).status is DatasetStatus.READY
    assert objects(local_supabase) == [dataset.storage_path]


def test_service_role_uploads_on_behalf_of_a_user(
    local_supabase: Any, user_factory: Any, service_client: Any, small_dataset: Path
) -> None:
    user, lp = user_factory()
    dataset = service_client.datasets.upload(small_dataset, name="for-user", user_id=user.id, progress=None)
    assert dataset.user_id == user.id and dataset.storage_path.startswith(f"{user.id}/")
    assert [d.id for d in lp.datasets.list()] == [dataset.id]


def test_delete_removes_row_and_object_but_not_while_jobs_use_it(
    local_supabase: Any, user_factory: Any, small_dataset: Path
) -> None:
    _, lp = user_factory()
    dataset = lp.datasets.upload(small_dataset, name="used", progress=None)
    job = lp.jobs.create(dataset.id, base_model="tiny-model")
    with pytest.raises(Conflict):
        lp.datasets.delete(dataset.id)
    assert objects(local_supabase) == [dataset.storage_path]
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute("delete from public.training_jobs where id = %s", (job.id,))
    lp.datasets.delete(dataset.id)
    assert dataset_rows(local_supabase) == [] and objects(local_supabase) == []


def test_traversal_and_unicode_in_file_names_are_stored_safely(
    local_supabase: Any, user_factory: Any, tmp_path: Path
) -> None:
    user, lp = user_factory()
    odd = tmp_path / "..résumé train?.jsonl"
    odd.write_text("".join(f'{{"text": "example {i}"}}\n' for i in range(20)))
    dataset = lp.datasets.upload(odd, name="../../etc/passwd", progress=None)
    assert dataset.storage_path == f"{user.id}/{dataset.id}/r_sum_train_.jsonl"
    assert dataset.name == "../../etc/passwd"


def test_a_missing_file_is_a_config_error(user_factory: Any) -> None:
    from lora_pipeline import ConfigError

    _, lp = user_factory()
    with pytest.raises(ConfigError, match="is not a readable file"):
        lp.datasets.upload("/no/such/file.jsonl", name="x", progress=None)
