"""Diagnostics a new user needs: a wrong URL says which URL is expected, LORA_PIPELINE_LOG=debug shows requests
(secrets redacted), reprs are short and hold no hashes of secrets."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lora_pipeline.types.datasets import Dataset
from lora_pipeline.types.jobs import TrainingJob


@pytest.fixture
def plain_web_server() -> Iterator[str]:
    """A web server that is not Supabase (it answers 404 File not found to every API path)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_server_that_is_not_supabase_says_which_url_is_expected(
    cli: Callable[..., Any], plain_web_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_URL", plain_web_server)
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon-key-for-a-test")
    result = cli("jobs", "list")
    assert result.code == 2
    assert "does not serve a Supabase API" in result.err and "https://<project-ref>.supabase.co" in result.err


def test_a_url_ending_in_rest_v1_names_the_project_url(
    cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SUPABASE_URL", "https://abc.supabase.co/rest/v1")
    monkeypatch.setenv("SUPABASE_ANON_KEY", "anon-key-for-a-test")
    result = cli("datasets", "list")
    assert result.code == 2 and "needs the project URL, e.g. 'https://abc.supabase.co'" in result.err


def test_debug_logging_shows_each_request_and_no_key(cli_process: Callable[..., Any], plain_web_server: str) -> None:
    secret = "sb_publishable_debuglogsecret123"
    result = cli_process(
        "jobs",
        "list",
        env={"SUPABASE_URL": plain_web_server, "SUPABASE_ANON_KEY": secret, "LORA_PIPELINE_LOG": "debug"},
    )
    assert "DEBUG lora_pipeline.executor: training_jobs as anon" in result.err
    assert secret not in result.err + result.out


def test_reprs_are_short_and_never_show_token_hashes() -> None:
    job = TrainingJob.model_validate(
        {
            "id": "11111111-2222-3333-4444-555555555555",
            "user_id": "u",
            "dataset_id": "d",
            "base_model": "tiny",
            "status": "failed",
            "status_reason": "training_error",
            "error": {"message": "CUDA out of memory"},
            "job_token_hash": "f" * 64,
            "hyperparameters": {"lr": 0.0002, "rank": 16},
        }
    )
    assert "f" * 64 not in repr(job) and "job_token_hash" not in job.model_dump_json()
    assert job.status_text() == "failed (training_error): CUDA out of memory"
    dataset = Dataset.model_validate(
        {"id": "d", "user_id": "u", "name": "support", "status": "ready", "validation_report": {"x": "y" * 5000}}
    )
    assert len(repr(dataset)) < 120 and len(repr(job)) < 200
