"""``lora-pipeline ui``: which credentials the dashboard holds, and the real command serving pages."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest

from lora_pipeline._exceptions import ConfigError
from lora_pipeline.cli import _clients
from lora_pipeline.cli.ui import dashboard_viewers

from .conftest import free_port

PROJECT_ENV = [n for n in os.environ if n.startswith(("SUPABASE_", "LORA_PIPELINE_", "NEXT_PUBLIC_SUPABASE_"))]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROJECT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_clients.options, "role", None)


def test_with_both_keys_and_no_role_the_dashboard_asks_for_a_sign_in(
    monkeypatch: pytest.MonkeyPatch, local_supabase: Any
) -> None:
    monkeypatch.setenv("SUPABASE_URL", local_supabase.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", local_supabase.anon_key)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", local_supabase.service_role_key)
    viewers = dashboard_viewers()
    assert viewers.sign_in_enabled and viewers.for_session(None) is None


def test_role_service_fixes_a_service_viewer(monkeypatch: pytest.MonkeyPatch, local_supabase: Any) -> None:
    monkeypatch.setenv("SUPABASE_URL", local_supabase.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", local_supabase.anon_key)
    monkeypatch.setenv("SUPABASE_SERVICE_ROLE_KEY", local_supabase.service_role_key)
    monkeypatch.setattr(_clients.options, "role", "service")
    viewer = dashboard_viewers().for_session(None)
    assert viewer is not None and viewer.is_service and viewer.label == "service role"


def test_a_user_token_in_the_environment_fixes_that_user(monkeypatch: pytest.MonkeyPatch, local_supabase: Any) -> None:
    user = local_supabase.create_user("ann@example.com", "a long password 8")
    monkeypatch.setenv("SUPABASE_URL", local_supabase.url)
    monkeypatch.setenv("SUPABASE_ANON_KEY", local_supabase.anon_key)
    monkeypatch.setenv("LORA_PIPELINE_ACCESS_TOKEN", user.access_token)
    viewer = dashboard_viewers().for_session(None)
    assert viewer is not None and not viewer.is_service and viewer.client.user_id == user.id


def test_no_project_settings_say_what_to_set() -> None:
    with pytest.raises(ConfigError, match="SUPABASE_URL and SUPABASE_ANON_KEY"):
        dashboard_viewers()


def test_the_command_serves_the_sign_in_page(local_supabase: Any) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    env.update(SUPABASE_URL=local_supabase.url, SUPABASE_ANON_KEY=local_supabase.anon_key)
    command = [sys.executable, "-m", "lora_pipeline", "ui", "--port", str(port)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as server:
        try:
            deadline, page = time.monotonic() + 30, None
            while page is None and time.monotonic() < deadline and server.poll() is None:
                try:
                    page = httpx.get(f"http://127.0.0.1:{port}/jobs", follow_redirects=True, timeout=2)
                except httpx.HTTPError:
                    time.sleep(0.2)
            assert page is not None, server.stderr.read() if server.stderr else ""
            assert page.status_code == 200 and 'id="password"' in page.text
            assert "/static/uplot/uPlot.iife.min.js" not in page.text  # sign-in has no charts
            assert httpx.get(f"http://127.0.0.1:{port}/static/uplot/uPlot.iife.min.js").status_code == 200
        finally:
            server.terminate()
            server.wait(timeout=10)


def test_dev_up_ui_serves_the_dashboard_beside_the_stack(tmp_path: Any) -> None:
    import signal

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in PROJECT_ENV}
    env["HOME"] = str(tmp_path)  # the stack's pointer file lives under it
    command = [sys.executable, "-m", "lora_pipeline", "dev", "up", "--ui", "--ui-port", str(port)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as stack:
        try:
            assert stack.stdout is not None
            lines = []
            for line in stack.stdout:
                lines.append(line)
                if "# dashboard on" in line:
                    break
            assert f"http://127.0.0.1:{port}/" in lines[-1], "".join(lines)
            page = httpx.get(f"http://127.0.0.1:{port}/jobs", follow_redirects=True, timeout=10)
            assert page.status_code == 200 and 'id="email"' in page.text
        finally:
            stack.send_signal(signal.SIGINT)
            stack.wait(timeout=30)
