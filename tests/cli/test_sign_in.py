"""Getting a user token: ``LoraPipeline.sign_in`` (sync and async) with refresh, ``dev user create``, the
dev pointer file shared by several stacks."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline import AsyncLoraPipeline, LoraPipeline, Role
from lora_pipeline._exceptions import AuthenticationError, ConfigError
from lora_pipeline.cli import dev


def test_sign_in_acts_as_the_user_and_refreshes_a_stale_session(local_supabase: Any) -> None:
    created = local_supabase.create_user("signin@example.test", "a long password 1")
    lp = LoraPipeline.sign_in(
        "signin@example.test", "a long password 1", url=local_supabase.url, anon_key=local_supabase.anon_key
    )
    assert lp.role is Role.USER and lp.user_id == created.id
    assert lp.session is not None and lp.session.user_id == created.id and "access_token" not in repr(lp.session)
    assert lp.datasets.list() == []
    first = lp.session
    lp._session = dataclasses.replace(first, expires_at=time.time() + 5)  # about to expire
    assert lp.datasets.list() == []
    assert lp.session is not None and lp.session.refresh_token != first.refresh_token, "renewed before the request"
    assert lp.session.expires_at > time.time() + 600 and lp.user_id == created.id
    copy = lp.with_options(timeout=5)
    assert copy.session is None and copy.user_id == created.id, "a copy acts as the user but never renews"
    assert copy.datasets.list() == []


def test_sign_in_reads_url_and_anon_key_from_the_environment(
    local_supabase: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    local_supabase.create_user("env@example.test", "a long password 2")
    monkeypatch.setenv("SUPABASE_URL", local_supabase.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", local_supabase.anon_key)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", local_supabase.service_role_key)
    lp = LoraPipeline.sign_in("env@example.test", "a long password 2")
    assert lp.role is Role.USER, "a signed-in client acts as the user even when the service key is around"


def test_a_wrong_password_is_an_authentication_error(local_supabase: Any) -> None:
    local_supabase.create_user("wrong@example.test", "a long password 3")
    with pytest.raises(AuthenticationError) as raised:
        LoraPipeline.sign_in("wrong@example.test", "not it", url=local_supabase.url, anon_key=local_supabase.anon_key)
    assert "not it" not in str(raised.value)
    with pytest.raises(ConfigError, match="email address"):
        LoraPipeline.sign_in("nobody", "x", url=local_supabase.url, anon_key=local_supabase.anon_key)


async def test_async_sign_in_and_refresh(local_supabase: Any) -> None:
    created = local_supabase.create_user("async@example.test", "a long password 4")
    lp = await AsyncLoraPipeline.sign_in(
        "async@example.test", "a long password 4", url=local_supabase.url, anon_key=local_supabase.anon_key
    )
    assert lp.user_id == created.id and await lp.jobs.list() == []
    before = lp.session
    assert before is not None
    renewed = await lp.refresh_session()
    assert renewed.refresh_token != before.refresh_token and lp.session is renewed
    assert await lp.datasets.list() == []
    await lp.close()


def test_dev_user_create_exports_a_working_token(
    cli: Callable[..., Any], local_supabase: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pointer = tmp_path / "dev-stack.json"
    monkeypatch.setattr(dev, "POINTER", pointer)
    dev.write_pointer(local_supabase.env(), pointer)
    made = cli("dev", "user", "create", "new@example.test", "--password", "a long password 5")
    assert made.code == 0, made.err
    exports = dict(line.removeprefix("export ").split("=", 1) for line in made.lines)
    assert (
        set(exports) == {"LORA_PIPELINE_ACCESS_TOKEN", "LORA_PIPELINE_ROLE"} and exports["LORA_PIPELINE_ROLE"] == "user"
    )
    for name, value in {**local_supabase.env(), **exports}.items():  # eval $(dev env); eval $(dev user create)
        monkeypatch.setenv(name, value)
    assert cli("jobs", "list", "-q").code == 0
    again = cli("dev", "user", "create", "new@example.test", "--password", "a long password 5")
    assert again.code == 2 and "already" in again.err.lower() and "Traceback" not in again.err
    quiet = cli("dev", "user", "create", "other@example.test", "--password", "a long password 6", "-q")
    (user_id,) = quiet.lines
    assert (
        json.loads(cli("dev", "user", "create", "third@example.test", "--password", "pw-long-7", "--json").out)["email"]
        == "third@example.test"
        and len(user_id) == 36
    )


def test_a_second_stack_stopping_leaves_the_first_stacks_pointer(tmp_path: Path) -> None:
    pointer = tmp_path / "dev-stack.json"
    first = {"SUPABASE_URL": "http://127.0.0.1:5001", "SUPABASE_ANON_KEY": "a", "SUPABASE_SERVICE_ROLE_KEY": "s"}
    second = {**first, "SUPABASE_URL": "http://127.0.0.1:5002"}
    dev.write_pointer(first, pointer)
    dev.write_pointer(second, pointer)  # a second `dev up` takes the pointer over
    assert dev.release_pointer(first["SUPABASE_URL"], pointer) is False, "the first stack exits: not its pointer"
    assert json.loads(pointer.read_text()) == second
    assert dev.release_pointer(second["SUPABASE_URL"], pointer) is True and not pointer.exists()
    assert oct(tmp_path.stat().st_mode)  # the folder exists; the file was owner-only while it lived


def test_a_session_expiring_during_a_long_wait_is_renewed_mid_wait(local_supabase: Any, tmp_path: Path) -> None:
    from lora_pipeline._auth import REFRESH_MARGIN
    from lora_pipeline.backends.local import LocalBackend

    local_supabase.create_user("long@example.test", "a long password 9")
    lp = LoraPipeline.sign_in(
        "long@example.test", "a long password 9", url=local_supabase.url, anon_key=local_supabase.anon_key
    )
    sample = Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl"
    job = lp.jobs.create(lp.datasets.upload(sample, name="support", progress=None).id, base_model="tiny")
    backend = LocalBackend(
        work_dir=tmp_path / "pods", extra_env={"LORA_TRAINER": "selftest", "LORA_SELFTEST_STEP_SECONDS": "0.05"}
    )
    lp.jobs.deploy(job.id, backend=backend)
    assert lp.session is not None
    first = lp.session
    lp._session = dataclasses.replace(first, expires_at=time.time() + REFRESH_MARGIN + 1)  # stale in 1 s
    done = lp.jobs.wait_for_completion(job.id, backend=backend, poll_interval=0.3, timeout=60, progress=None)
    assert done.status == "succeeded"
    assert lp.session.refresh_token != first.refresh_token, "renewed inside the one wait_for_completion call"
