"""The fake's container switch: commands run with the pod's env, exits restart, terminate and deadlines kill."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from lora_pipeline.backends.runpod import RunPodBackend
from lora_pipeline.testing.fake_runpod import ContainerRunner, FakeRunPod
from lora_pipeline.testing.fake_runpod.containers import container_argv


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    with FakeRunPod(execute_containers=True) as running, running.environment():
        _runner(running).restart_pause = 0.1
        yield running


def _runner(fake: FakeRunPod) -> ContainerRunner:
    assert fake.containers is not None
    return fake.containers


def _backend(fake: FakeRunPod) -> RunPodBackend:
    return RunPodBackend(fake.api_key, sleep=lambda _: None, timeout=5, transport="graphql")


def _until(check: Callable[[], bool], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def _args(script: str) -> str:
    return json.dumps({"entrypoint": ["/bin/bash", "-c"], "cmd": [script]})


def test_docker_args_become_argv_in_both_forms() -> None:
    assert container_argv(_args("echo 'a b'")) == ["/bin/bash", "-c", "echo 'a b'"]
    assert container_argv("python -m x 'two words'") == ["python", "-m", "x", "two words"]


def test_a_container_sees_the_pods_env_with_secrets_resolved(fake: FakeRunPod) -> None:
    fake.secrets["hf_token"] = "hf_resolved_value"
    env = {"PLAIN": "x y", "HF_TOKEN": "{{ RUNPOD_SECRET_hf_token }}", "MISSING": "{{ RUNPOD_SECRET_nope }}"}
    script = 'echo "$PLAIN|$HF_TOKEN|$MISSING|$RUNPOD_POD_ID|$PIP_NO_INDEX"; sleep 30'
    pod = _backend(fake).create_pod(name="lp-x-1", image="img", gpu_type="A40", env=env, docker_args=_args(script))
    expected = f"x y|hf_resolved_value|{{{{ RUNPOD_SECRET_nope }}}}|{pod['id']}|1"
    assert _until(lambda: expected in _runner(fake).logs(pod["id"])), _runner(fake).logs(pod["id"])


def test_an_exited_container_is_restarted_like_runpod_does(fake: FakeRunPod) -> None:
    _runner(fake).max_restarts = 2
    pod = _backend(fake).create_pod(name="lp-x-1", image="img", gpu_type="A40", docker_args=_args("exit 3"))
    assert _until(lambda: _runner(fake).starts(pod["id"]) == 3 and not _runner(fake).running(pod["id"]))
    record = fake.pod(pod["id"])
    assert record is not None and record.exit_codes[:2] == [3, 3] and record.restart_count >= 2


def test_terminating_a_pod_kills_its_whole_container(fake: FakeRunPod) -> None:
    # Children in other process groups and sessions die too, as everything in a real container does.
    script = "setsid sleep 300 & echo $! > pids; timeout 300 sleep 300 & echo $! >> pids; wait"
    pod = _backend(fake).create_pod(name="lp-x-1", image="img", gpu_type="A40", docker_args=_args(script))
    pids_file = _runner(fake).work_dir / pod["id"] / "pids"
    assert _until(lambda: pids_file.exists() and len(pids_file.read_text().split()) == 2)
    _runner(fake).stop_grace = 0.5
    fake.state.terminate(pod["id"])
    assert _until(lambda: not any(_alive(int(pid)) for pid in pids_file.read_text().split()))
    assert not _runner(fake).running(pod["id"]) and _runner(fake).starts(pod["id"]) == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_terminate_after_on_the_virtual_clock_kills_the_container(fake: FakeRunPod) -> None:
    deadline = fake.now + timedelta(hours=1)
    pod = _backend(fake).create_pod(
        name="lp-x-1", image="img", gpu_type="A40", docker_args=_args("sleep 300"), terminate_after=deadline
    )
    assert _until(lambda: _runner(fake).running(pod["id"]))
    fake.advance(3600)
    assert _until(lambda: not _runner(fake).running(pod["id"]))
    record = fake.pod(pod["id"])
    assert record is not None and not record.live
