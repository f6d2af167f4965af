"""The pod launch contract: one set of names, valid bash delivered byte for byte, checked input, images, wheels."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lora_pipeline import ConfigError, __version__
from lora_pipeline.backends._container_launch import container_launch
from lora_pipeline.backends._wheel import prebuilt_wheel, running_wheel
from lora_pipeline.backends.base import PodPackage, PodSpec
from lora_pipeline.backends.images import DEFAULT_IMAGE, check_image, read_image
from lora_pipeline.pod import launch
from lora_pipeline.pod._env import POD_ENV_NAMES

JOB_ENV = {"LORA_JOB_ID": "j", "LORA_JOB_TOKEN": "t", "SUPABASE_URL": "http://x", "SUPABASE_ANON_KEY": "anon"}
SERVICE_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.c2lnbmF0dXJl"  # {"role": "service_role"}


def _spec(**fields: object) -> PodSpec:
    package = PodPackage(wheel_object="u/j/_launch/lora_pipeline-0.1.0-py3-none-any.whl", wheel_sha256="ab" * 32)
    return PodSpec(job_id="j", name="lp-j-1", env=JOB_ENV, package=package, **fields)  # type: ignore[arg-type]


def test_the_script_is_valid_bash_and_starts_strict() -> None:
    script = launch.bootstrap_script()
    assert "set -uo pipefail" in script
    subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_the_pod_reads_the_names_the_launcher_writes() -> None:
    assert POD_ENV_NAMES["job_id"] == (launch.JOB_ID,) and launch.SUPABASE_URL in POD_ENV_NAMES["url"]
    script = launch.bootstrap_script()
    for name in (launch.WHEEL_OBJECT, launch.WHEEL_SHA256, launch.MAX_RUNTIME_SECONDS, launch.SECRET_ENV):
        assert f"${{{name}" in script, name
    env = launch.container_env(job_env=JOB_ENV, max_runtime_seconds=60, requirement="x==1")
    assert "LORA_PIPELINE_VERSION" not in env and env[launch.REQUIREMENT] == "x==1"


def test_a_spec_becomes_the_bootstrap_command_with_references_for_secrets() -> None:
    launched = container_launch(_spec(user_env={"WANDB_MODE": "offline"}, secrets={"HF_TOKEN": "hf_token"}))
    args = json.loads(launched.docker_args)
    assert args["entrypoint"] == ["/bin/bash", "-c"] and launch.BOOTSTRAP in args["cmd"][0]
    assert launched.env["HF_TOKEN"] == "{{ RUNPOD_SECRET_hf_token }}" and launched.env["WANDB_MODE"] == "offline"
    assert launched.env[launch.SECRET_ENV] == "HF_TOKEN" and launched.env[launch.WHEEL_SHA256] == "ab" * 32
    assert launched.allowed_cuda_versions == ["12.8", "12.9", "13.0"]


@pytest.mark.parametrize(
    ("env", "secrets", "says"),
    [
        ({"SUPABASE_SERVICE_ROLE_KEY": "x"}, None, "service credentials"),
        ({"MY_DATABASE_URL": "postgres://..."}, None, "service credentials"),
        ({"SOME_KEY": SERVICE_JWT}, None, "service-role key"),
        ({"SOME_KEY": "sb_secret_abc"}, None, "service-role key"),
        ({"A": "x\x00y"}, None, "NUL"),
        ({"LORA_JOB_TOKEN": "x"}, None, "launcher or RunPod sets it"),
        ({"1BAD": "x"}, None, "not a variable name"),
        (None, {"HF_TOKEN": "has space"}, "must name a RunPod secret"),
        ({"HF_TOKEN": "v"}, {"HF_TOKEN": "hf"}, "both in env and in secrets"),
    ],
)
def test_bad_env_and_secrets_are_refused_without_echoing_values(
    env: dict[str, str] | None, secrets: dict[str, str] | None, says: str
) -> None:
    problems = launch.check_user_env(env, secrets)
    assert problems and says in " ".join(problems)
    assert SERVICE_JWT not in " ".join(problems)
    with pytest.raises(ConfigError, match=says):
        container_launch(_spec(user_env=env or {}, secrets=secrets or {}))


def _run_container(command: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run a container command the way Docker would: argv = entrypoint + cmd, a clean environment."""
    base = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path)}
    return subprocess.run(command, env={**base, **env}, capture_output=True, text=True, timeout=30)


def test_a_script_round_trips_byte_for_byte(tmp_path: Path) -> None:
    copy = tmp_path / "copy.sh"
    script = f'#!/bin/bash\n# quotes \' " ` $HOME \\ ünïcödé 😀 \t\ncp "$0" {copy}\n'
    encoded = {launch.BOOTSTRAP: __import__("base64").b64encode(script.encode()).decode()}
    result = _run_container(launch.container_command(script), encoded, tmp_path)
    assert result.returncode == 0, result.stderr
    assert copy.read_bytes() == script.encode("utf-8")


def test_a_corrupted_bootstrap_value_does_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    encoded = {launch.BOOTSTRAP: __import__("base64").b64encode(f"touch {marker}\n# other".encode()).decode()}
    result = _run_container(launch.container_command(f"touch {marker}\n"), encoded, tmp_path)
    assert result.returncode != 0 and not marker.exists()


@pytest.mark.parametrize(
    ("image", "torch", "cuda"),
    [
        (DEFAULT_IMAGE, (2, 8), (12, 8)),
        ("runpod/pytorch:0.7.0-dev-cu1241-torch240-ubuntu2204", (2, 4), (12, 4)),
        ("runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04", (2, 4), (12, 4)),
        ("runpod/pytorch:1.0.2-cu1300-torch2100-ubuntu2404", (2, 10), (13, 0)),
        ("ghcr.io/me/trainer:latest", None, None),
        ("localhost:5000/trainer", None, None),
    ],
)
def test_image_tags_are_read(image: str, torch: tuple[int, int] | None, cuda: tuple[int, int] | None) -> None:
    info = read_image(image)
    assert (info.torch, info.cuda) == (torch, cuda)


def test_an_image_with_old_torch_is_refused_naming_one_that_works() -> None:
    with pytest.raises(ConfigError, match=r"torch 2\.4") as refused:
        check_image("runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04")
    assert DEFAULT_IMAGE in str(refused.value) and refused.value.argument == "image"
    assert check_image(None).name == DEFAULT_IMAGE and check_image("my/custom:1").torch is None


def test_the_running_wheel_is_deterministic_and_complete() -> None:
    first, second = running_wheel(), running_wheel()
    assert first.sha256 == second.sha256 and first.file_name == f"lora_pipeline-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(io.BytesIO(first.content)) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"lora_pipeline-{__version__}.dist-info/METADATA").decode()
    assert {"lora_pipeline/pod/runtime.py", "lora_pipeline/pod/bootstrap.sh"} <= names
    assert any(n.startswith("lora_pipeline/_sql/migrations/") for n in names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert "Name: lora-pipeline" in metadata and "Provides-Extra: train" in metadata


def test_a_prebuilt_wheel_is_checked(tmp_path: Path) -> None:
    good = tmp_path / running_wheel().file_name
    good.write_bytes(running_wheel().content)
    assert prebuilt_wheel(good).sha256 == running_wheel().sha256
    for name, content, says in [
        ("other-1.0-py3-none-any.whl", good.read_bytes(), "not a lora-pipeline wheel"),
        ("lora_pipeline-0.1.0-py3-none-any.whl", b"not a zip", "not a valid wheel"),
    ]:
        bad = tmp_path / "bad" / name
        bad.parent.mkdir(exist_ok=True)
        bad.write_bytes(content)
        with pytest.raises(ConfigError, match=says):
            prebuilt_wheel(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        prebuilt_wheel(tmp_path / "missing.whl")


class _Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def _record(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.received.append((self.command, self.path, body))
        self.send_response(200 if self.command == "POST" else 204)
        self.send_header("Content-Length", "2" if self.command == "POST" else "0")
        self.end_headers()
        if self.command == "POST":
            self.wfile.write(b"{}")

    do_POST = do_DELETE = _record

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    """One loopback server standing in for Supabase and RunPod; yields its URL and what it received."""
    received: list[tuple[str, str, bytes]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Recorder", (_Recorder,), {"received": received}))
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_an_image_without_python_is_reported_and_the_pod_ends_itself(
    tmp_path: Path, recorder: tuple[str, list[tuple[str, str, bytes]]]
) -> None:
    url, received = recorder
    tools = tmp_path / "bin"  # an "image" with the usual tools but no python
    tools.mkdir()
    for tool in ("curl", "sha256sum", "tail", "tee", "tr", "mkdir", "head", "cut", "sleep", "rm", "cat"):
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)
    env = {
        "PATH": str(tools),
        "TMPDIR": str(tmp_path),
        "SUPABASE_URL": url,
        "SUPABASE_ANON_KEY": "anon",
        "LORA_JOB_ID": "job-1",
        "LORA_JOB_TOKEN": 'tok"en',
        "RUNPOD_POD_ID": "pod123",
        "RUNPOD_API_KEY": "pod-key",
        "RUNPOD_API_BASE_URL": url,
        launch.EXIT_PAUSE: "0",
    }
    script = shutil.which("bash")
    assert script
    result = subprocess.run(
        [script, "-c", launch.bootstrap_script()], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1, result.stdout + result.stderr
    [(_, report_path, report), (method, terminate_path, _)] = received
    assert report_path == "/rest/v1/rpc/pod_report_bootstrap_failure"
    body = json.loads(report)
    assert body["job_token"] == 'tok"en' and body["step"] == "checking the image"
    assert "the image has no python" in body["message"] and "FAILED" in body["output_tail"]
    assert (method, terminate_path) == ("DELETE", "/v2/pods/pod123")
