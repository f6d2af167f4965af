"""Planted secrets never reach a log record, a repr or an exception message."""

from __future__ import annotations

import logging

import jwt
import pytest

from lora_pipeline import LoraPipeline, Settings
from lora_pipeline._error_mapping import map_error
from lora_pipeline._logging import get_logger, redact, register_secret

SECRET = "s" * 40
SERVICE_KEY = jwt.encode({"role": "service_role", "iss": "supabase"}, SECRET, algorithm="HS256")
ANON_KEY = jwt.encode({"role": "anon", "iss": "supabase"}, SECRET, algorithm="HS256")
JOB_TOKEN = "jobtok_Zq9v0E8s1Tn3kYp6Lr2Wx4Cb7Hd5Fg0Jm1Nq8Rs3Uv"
SIGNED_URL = "http://127.0.0.1:5/storage/v1/object/sign/lora-datasets/a/b.jsonl?token=eyJhbGciOi.sig.nature123"
BEARER = "Authorization: Bearer opaque-access-token-9876543210"


def _all_text(records: list[logging.LogRecord]) -> str:
    formatter = logging.Formatter("%(message)s")
    return "\n".join(formatter.format(r) + str(r.args) + str(r.__dict__) for r in records)


def test_no_log_record_contains_a_planted_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lora_pipeline")
    register_secret(JOB_TOKEN)
    log = get_logger("test")
    log.info("connecting with %s and %s", SERVICE_KEY, ANON_KEY)
    log.warning("job token %s", JOB_TOKEN)
    log.info("downloading %s", SIGNED_URL)
    log.debug("headers: %s", BEARER)
    log.info("apikey=%s", ANON_KEY)
    try:
        raise RuntimeError(f"failed with {SERVICE_KEY} and LORA_JOB_TOKEN={JOB_TOKEN}")
    except RuntimeError:
        log.exception("boom")
    records = caplog.records
    text = _all_text(records)
    for secret in (SERVICE_KEY, ANON_KEY, JOB_TOKEN, "sig.nature123", "opaque-access-token-9876543210"):
        assert secret not in text
    assert "<redacted>" in text
    assert len(records) == 6


def test_client_and_settings_repr_hide_keys() -> None:
    client = LoraPipeline(url="https://a.example", service_role_key=SERVICE_KEY)
    settings = Settings.resolve(
        env={}, url="https://a.example", service_role_key=SERVICE_KEY, runpod_api_key="rpa_planted_runpod_key_1234"
    )
    for text in (repr(client), str(client.settings), repr(settings)):
        assert SERVICE_KEY not in text and "rpa_planted_runpod_key_1234" not in text


def test_exception_messages_are_redacted() -> None:
    register_secret(JOB_TOKEN)
    error = map_error(
        service="postgrest",
        body={
            "code": "42501",
            "message": f"bad token {JOB_TOKEN}",
            "hint": f"header Authorization: Bearer {SERVICE_KEY}",
        },
    )
    assert JOB_TOKEN not in str(error) and SERVICE_KEY not in str(error) and SERVICE_KEY not in repr(error)


def test_redact_handles_query_tokens_and_env_assignments() -> None:
    text = redact(f"{SIGNED_URL} SUPABASE_SERVICE_ROLE_KEY={SERVICE_KEY} x-lora-job-token: abc123def456")
    assert "sig.nature123" not in text and SERVICE_KEY not in text and "abc123def456" not in text


def test_config_errors_never_echo_the_key() -> None:
    from lora_pipeline import ConfigError

    with pytest.raises(ConfigError) as info:
        Settings.resolve(env={}, anon_key=SERVICE_KEY)
    assert SERVICE_KEY not in str(info.value)


def test_a_pod_spec_repr_shows_env_names_not_values() -> None:
    from lora_pipeline.backends.base import PodSpec

    spec = PodSpec(job_id="j", name="lp-j-1", env={"LORA_JOB_TOKEN": "tok-secret-123", "SUPABASE_ANON_KEY": "anon-x"})
    text = repr(spec) + str(spec)
    assert "tok-secret-123" not in text and "anon-x" not in text
    assert "LORA_JOB_TOKEN" in text
