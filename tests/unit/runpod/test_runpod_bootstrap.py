"""The pod bootstrap: valid bash, delivered byte for byte, installs the launcher's version, reports failures."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline import __version__
from lora_pipeline.backends.bootstrap import (
    BOOTSTRAP_ENV,
    bootstrap_command,
    bootstrap_env,
    default_package_spec,
    docker_args_for,
    render_bootstrap,
)

SPECS = {
    "index": {"package_spec": default_package_spec()},
    "wheel": {"package_spec": default_package_spec(), "wheel_url": "https://files.example/lora_pipeline-0.1.0.whl"},
    "awkward quoting": {"package_spec": "lora-pipeline[train]=='0.1.0' ; $(reboot)"},
}


@pytest.mark.parametrize("kwargs", list(SPECS.values()), ids=list(SPECS))
def test_rendered_script_is_valid_bash(kwargs: dict[str, str]) -> None:
    script = render_bootstrap(**kwargs)
    assert script.splitlines()[2] == "set -euo pipefail"
    assert script.rstrip().endswith("exec python -m lora_pipeline.pod run")
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_installs_the_launchers_version_or_the_wheel() -> None:
    assert f"'lora-pipeline[train]=={__version__}'" in render_bootstrap(package_spec=default_package_spec())
    wheel = render_bootstrap(package_spec=default_package_spec(), wheel_url="https://x.example/w.whl")
    assert "'lora-pipeline[train] @ https://x.example/w.whl'" in wheel


def test_docker_args_are_the_json_entrypoint_form() -> None:
    args = json.loads(docker_args_for("echo hi"))
    assert args["entrypoint"] == ["/bin/bash", "-c"]
    assert [*args["entrypoint"], *args["cmd"]] == bootstrap_command("echo hi")
    assert BOOTSTRAP_ENV in args["cmd"][0]


def _run_container(command: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a container command the way Docker would: argv = entrypoint + cmd, a clean environment."""
    base = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)}
    return subprocess.run(command, env={**base, **env}, capture_output=True, text=True, timeout=30)


def test_script_round_trips_byte_for_byte(tmp_path: Path) -> None:
    copy = tmp_path / "copy.sh"
    script = f'#!/bin/bash\n# quotes \' " ` $HOME \\ ünïcödé 😀 \t\ncp "$0" {copy}\n'
    result = _run_container(bootstrap_command(script), bootstrap_env(script), tmp_path)
    assert result.returncode == 0, result.stderr
    assert copy.read_bytes() == script.encode("utf-8")


def test_a_corrupted_env_value_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    env = bootstrap_env(f"touch {marker}\n# different")
    result = _run_container(bootstrap_command(f"touch {marker}\n"), env, tmp_path)
    assert result.returncode != 0 and not marker.exists()


class _Recorder(BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def supabase_url() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback HTTP server standing in for Supabase's rpc endpoint; yields its URL and what it received."""
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Recorder,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def _stub_python(tmp_path: Path, body: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "python"
    stub.write_text(f"#!/bin/bash\n{body}\n")
    stub.chmod(0o755)
    return bin_dir


def test_failure_is_reported_to_the_job_events(tmp_path: Path, supabase_url: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = supabase_url
    bin_dir = _stub_python(tmp_path, "exit 7")
    script = render_bootstrap(package_spec=default_package_spec())
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "TMPDIR": str(tmp_path),
        "SUPABASE_URL": url,
        "SUPABASE_ANON_KEY": "anon-key",
        "LORA_JOB_ID": 'job "1"\\x',
        "LORA_JOB_TOKEN": "tok\nen",
    }
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 7
    [post] = received
    assert post["path"] == "/rest/v1/rpc/pod_log_event"
    assert post["headers"]["apikey"] == "anon-key" and post["headers"]["Authorization"] == "Bearer anon-key"
    event = json.loads(post["body"])
    assert event["job_id"] == 'job "1"\\x' and event["job_token"] == "tok\nen"
    assert (event["level"], event["kind"]) == ("error", "bootstrap")
    line = next(n for n, text in enumerate(script.splitlines(), 1) if "pip install" in text)
    assert f"line {line}" in event["message"] and "python -m pip install" in event["message"]


def test_success_installs_then_execs_the_pod_program(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    bin_dir = _stub_python(tmp_path, f'echo "$*" >> {log}')
    script = render_bootstrap(package_spec="lora-pipeline[train]==9.9.9")
    env = {**bootstrap_env(script), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = _run_container(bootstrap_command(script), env, tmp_path)
    assert result.returncode == 0, result.stderr
    install, run = log.read_text().splitlines()
    assert install.startswith("-m pip install") and install.endswith("lora-pipeline[train]==9.9.9")
    assert run == "-m lora_pipeline.pod run"


def test_package_spec_is_required() -> None:
    with pytest.raises(ValueError, match="package_spec"):
        render_bootstrap(package_spec=" ")
