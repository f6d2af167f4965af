"""A pod ends itself over REST v2 with its pod-scoped key, then runpodctl, then GraphQL while it lasts."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from lora_pipeline.backends.runpod import RunPodBackend
from lora_pipeline.pod.environment import PodEnvironment
from lora_pipeline.pod.self_terminate import terminate_own_pod
from lora_pipeline.testing.fake_runpod import FakeRunPod


@pytest.fixture
def pod_id(fake: FakeRunPod) -> str:
    backend = RunPodBackend(fake.api_key, sleep=lambda _: None)
    return str(backend.create_pod(name="lp-job-1", image="img", gpu_type="A40")["id"])


def pod_environment(fake: FakeRunPod, pod_id: str, tmp_path: Path) -> PodEnvironment:
    env = fake.pod_env(pod_id)
    return PodEnvironment(
        url="http://127.0.0.1:1",
        anon_key="anon",
        job_id="job",
        job_token="token",
        work_dir=tmp_path,
        pod_id=pod_id,
        runpod_api_key=env["RUNPOD_API_KEY"],
        runpod_api_base=env["RUNPOD_API_BASE_URL"],
    )


@pytest.fixture
def no_runpodctl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def test_rest_delete_with_the_pod_key_comes_first(
    fake: FakeRunPod, pod_id: str, tmp_path: Path, no_runpodctl: None
) -> None:
    assert terminate_own_pod(pod_environment(fake, pod_id, tmp_path))
    [delete] = fake.calls_to("deletePod")
    assert delete.status == 204 and delete.api_key == fake.pod_env(pod_id)["RUNPOD_API_KEY"] != fake.api_key
    assert fake.pods() == [] and fake.calls_to("podTerminate") == []


def test_a_pod_that_is_already_gone_counts_as_ended(
    fake: FakeRunPod, pod_id: str, tmp_path: Path, no_runpodctl: None
) -> None:
    environment = pod_environment(fake, pod_id, tmp_path)
    fake.state.terminate(pod_id)
    assert terminate_own_pod(environment)
    assert [c.status for c in fake.calls_to("deletePod")] == [404]


def test_rest_refused_falls_back_to_graphql(fake: FakeRunPod, pod_id: str, tmp_path: Path, no_runpodctl: None) -> None:
    fake.script("deletePod", ["internal_error"])
    assert terminate_own_pod(pod_environment(fake, pod_id, tmp_path))
    assert [c.status for c in fake.calls_to("podTerminate")] == [200] and fake.pods() == []


def test_rest_refused_and_graphql_retired_is_a_logged_failure(
    fake: FakeRunPod, pod_id: str, tmp_path: Path, no_runpodctl: None
) -> None:
    fake.script("deletePod", ["internal_error"])
    fake.retire_graphql()
    assert not terminate_own_pod(pod_environment(fake, pod_id, tmp_path))
    assert [p.id for p in fake.pods()] == [pod_id]


def test_runpodctl_is_the_fallback_where_present(
    fake: FakeRunPod, pod_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "runpodctl-args"
    script = bin_dir / "runpodctl"
    script.write_text(f'#!/bin/sh\necho "$@" > {record}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    fake.script("deletePod", ["internal_error"])
    assert terminate_own_pod(pod_environment(fake, pod_id, tmp_path))
    assert record.read_text().split() == ["remove", "pod", pod_id] and fake.calls_to("podTerminate") == []


def test_local_pods_do_not_call_runpod(fake: FakeRunPod, tmp_path: Path) -> None:
    local = PodEnvironment(url="u", anon_key="a", job_id="j", job_token="t", work_dir=tmp_path, backend="local")
    assert not terminate_own_pod(local) and fake.calls == []
