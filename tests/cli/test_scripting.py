"""Scriptable output against the local stack: -q ids, --json documents, pipe-safe tables, id prefixes, --role."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_upload_quiet_prints_only_the_id_and_json_is_one_document(cli: Callable[..., Any], user_shell: Any) -> None:
    quiet = cli("datasets", "upload", str(SAMPLE), "--name", "support", "-q")
    assert quiet.code == 0, quiet.err
    assert len(quiet.lines) == 1 and UUID.fullmatch(quiet.lines[0])
    shown = cli("datasets", "show", quiet.lines[0], "--json")
    document = json.loads(shown.out)
    assert document["id"] == quiet.lines[0] and document["status"] == "ready" and document["num_examples"] == 420


def test_piped_lists_have_a_header_and_never_wrap_ids(cli: Callable[..., Any], user_shell: Any) -> None:
    ids = {cli("datasets", "upload", str(SAMPLE), "--name", f"support-{n}", "-q").lines[0] for n in range(2)}
    table = cli("datasets", "list")  # COLUMNS=40 (conftest) and stdout is not a terminal
    assert table.code == 0
    header, *rows = table.lines
    assert header.split() == ["id", "status", "examples", "format", "name"]
    assert len(rows) == 2 and {row.split()[0] for row in rows} == ids
    assert all(len(row) > 40 for row in rows), "rows are longer than COLUMNS and still one line each"
    assert set(cli("datasets", "list", "-q").lines) == ids
    assert {d["id"] for d in json.loads(cli("datasets", "list", "--json").out)} == ids


def test_jobs_quiet_json_and_short_id_prefixes(cli: Callable[..., Any], user_shell: Any) -> None:
    dataset_id = cli("datasets", "upload", str(SAMPLE), "--name", "support", "-q").lines[0]
    created = cli("jobs", "create", dataset_id[:8], "--base-model", "tiny", "--name", "first", "-q")
    assert created.code == 0, created.err
    (job_id,) = created.lines
    assert UUID.fullmatch(job_id)
    status = cli("jobs", "status", job_id[:8], "--json")
    assert json.loads(status.out)["id"] == job_id and json.loads(status.out)["status"] == "created"
    assert cli("jobs", "list", "-q").lines == [job_id]
    listed = cli("jobs", "list", "--json")
    assert [j["id"] for j in json.loads(listed.out)] == [job_id]
    assert "job_token_hash" not in listed.out
    events = json.loads(cli("jobs", "events", job_id[:6], "--json").out)
    assert isinstance(events, list)


def test_prefix_errors_are_clear(cli: Callable[..., Any], user_shell: Any, local_supabase: Any) -> None:
    user_shell.baselines.create("m", metric="eval_loss", kind="max", threshold=5.0)
    user_shell.baselines.create("m", metric="train_loss", kind="max", threshold=5.0)
    with local_supabase.connect() as conn:
        conn.execute(
            "update public.model_baselines set id = ('abcd' || substr(id::text, 5))::uuid where model_name = 'm'"
        )
    ambiguous = cli("baselines", "deactivate", "abcd")
    assert ambiguous.code == 2 and "ambiguous" in ambiguous.err and "give more characters" in ambiguous.err
    assert "too short" in cli("jobs", "status", "ab").err
    assert "not a UUID or the start of one" in cli("jobs", "status", "zz-top").err
    missing = cli("jobs", "status", "0000")
    assert missing.code == 2 and "no job id starts with '0000'" in missing.err


def test_both_keys_without_a_role_is_explained_in_shell_terms(
    cli: Callable[..., Any], local_supabase: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in local_supabase.env().items():  # what `eval $(lora-pipeline dev env)` leaves behind
        monkeypatch.setenv(name, value)
    refused = cli("jobs", "list")
    assert refused.code == 2
    assert "--role service" in refused.err and "LORA_PIPELINE_ROLE" in refused.err and "Role." not in refused.err
    allowed = cli("--role", "service", "jobs", "list", "-q")
    assert allowed.code == 0 and allowed.out == "", allowed.err
    user = cli("--role", "user", "jobs", "list")
    assert user.code == 2 and "LORA_PIPELINE_ACCESS_TOKEN" in user.err and "dev user create" in user.err


def test_estimate_refuses_what_create_refuses(cli: Callable[..., Any], user_shell: Any) -> None:
    dataset_id = cli("datasets", "upload", str(SAMPLE), "--name", "support", "-q").lines[0]
    big = ("--base-model", "meta-llama/Llama-2-70b-hf", "--gpu", "A40")
    estimate = cli("jobs", "estimate", dataset_id, *big)
    create = cli("jobs", "create", dataset_id, *big)
    assert estimate.code == create.code == 2
    assert "more than the 48 GB" in estimate.err and estimate.err == create.err
    fits = cli("jobs", "estimate", dataset_id, "--base-model", "Qwen/Qwen2.5-0.5B-Instruct", "--gpu", "A40", "--json")
    assert fits.code == 0 and json.loads(fits.out)["gpu_type"] == "A40"


def test_a_failed_job_shows_its_reason_and_message(
    cli: Callable[..., Any], user_shell: Any, local_supabase: Any, tmp_path: Path
) -> None:
    dataset_id = cli("datasets", "upload", str(SAMPLE), "--name", "support", "-q").lines[0]
    job_id = cli("jobs", "create", dataset_id, "--base-model", "tiny", "-q").lines[0]
    with local_supabase.connect() as conn:
        conn.execute("update public.datasets set status = 'failed' where id = %s", (dataset_id,))
    deployed = cli("jobs", "deploy", job_id[:8])
    assert deployed.code == 1
    assert "failed (validation_failed): dataset is failed, not ready" in deployed.out
    status = cli("jobs", "status", job_id[:8])
    assert "failed (validation_failed): dataset is failed, not ready" in status.out
