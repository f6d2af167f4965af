"""End to end on RunPod with the fake executing containers: the very bootstrap a pod runs, nothing skipped.

Each pod's container command runs as a local process in a fresh virtualenv that sees this environment's
packages except lora-pipeline, with pip barred from every index: lora-pipeline gets into the "pod" only as the
wheel ``deploy`` uploaded into the job's Storage folder (or not at all).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.resources._job_control import PROVISION_TIMEOUT
from lora_pipeline.testing.fake_runpod import FakeRunPod
from lora_pipeline.types.jobs import JobStatus, TrainingJob

SELFTEST = {"LORA_TRAINER": "selftest", "LORA_HEARTBEAT_SECONDS": "0.5"}
TERMINATIONS = ("deletePod", "podTerminate")
LAUNCH_ENV = {
    "LORA_JOB_ID",
    "LORA_JOB_TOKEN",
    "SUPABASE_URL",
    "SUPABASE_ANON_KEY",
    "LORA_BOOTSTRAP_B64",
    "LORA_WHEEL_BUCKET",
    "LORA_WHEEL_OBJECT",
    "LORA_WHEEL_SHA256",
    "LORA_MAX_RUNTIME_SECONDS",
}


@pytest.fixture
def executing_fake() -> Iterator[Callable[..., FakeRunPod]]:
    """``make(**kwargs)``: a fake RunPod that runs each pod's container; all stopped after the test."""
    with ExitStack() as stack:

        def make(**kwargs: Any) -> FakeRunPod:
            env = {"LORA_BOOTSTRAP_EXIT_PAUSE": "5", **kwargs.pop("container_env", {})}
            fake = stack.enter_context(FakeRunPod(execute_containers=True, container_env=env, **kwargs))
            stack.enter_context(fake.environment())
            return fake

        yield make


def backend_for(fake: FakeRunPod, transport: str = "graphql") -> RunPodBackend:
    return RunPodBackend(
        fake.api_key, [RunPodOffer(gpu_type="A40")], sleep=lambda _: None, timeout=5, transport=transport
    )


def wait_for(lp: Any, job_id: str, done: Callable[[TrainingJob], bool], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = lp.jobs.retrieve(job_id)
        if done(job) or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def terminations(fake: FakeRunPod) -> list[Any]:
    return [call for call in fake.calls if call.operation in TERMINATIONS]


def wait_gone(fake: FakeRunPod, pod_id: Any, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pod = fake.pod(pod_id)
        if pod is not None and not pod.live:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("transport", ["graphql", "rest"])
def test_a_pod_installs_the_shipped_wheel_trains_and_terminates_itself(
    owner: Any, executing_fake: Callable[..., Any], transport: str
) -> None:
    _, lp, dataset = owner
    fake = executing_fake()
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40", name="container e2e")
    started = time.monotonic()
    job = lp.jobs.deploy(job.id, backend=backend_for(fake, transport), env=SELFTEST)
    running = wait_for(lp, job.id, lambda j: j.status is not JobStatus.PROVISIONING, timeout=120)
    deploy_to_running = time.monotonic() - started
    assert running.status in (JobStatus.RUNNING, JobStatus.UPLOADING, JobStatus.SUCCEEDED), fake.containers.logs(
        job.pod_id
    )
    job = wait_for(lp, job.id, lambda j: j.terminal, timeout=120)
    logs = fake.containers.logs(job.pod_id)
    assert job.status is JobStatus.SUCCEEDED, logs[-3000:]
    assert len(lp.metrics.history(job.id)) == 12 and lp.artifacts.list(job_id=job.id)
    sent = fake.pod_env(job.pod_id)
    assert set(sent) >= LAUNCH_ENV and "LORA_PIPELINE_VERSION" not in sent
    wheel_name = sent["LORA_WHEEL_OBJECT"].rsplit("/", 1)[1]
    assert f"Processing ./lora-pipeline/bootstrap/{wheel_name}" in logs or wheel_name in logs
    assert "Successfully installed lora-pipeline-" in logs
    container_root = str(fake.containers.work_dir / job.pod_id / "venv")
    assert f"from {container_root}" in logs, "lora_pipeline must be imported from the container's own install"
    assert wait_gone(fake, job.pod_id)
    [ended] = terminations(fake)
    assert ended.api_key != fake.api_key, "the pod ends itself with its pod-scoped key"
    assert fake.containers.starts(job.pod_id) == 1
    create = fake.calls_to("createPod" if transport == "rest" else "podFindAndDeployOnDemand")[-1]
    assert create.input is not None and create.status in (200, 201)
    cuda = create.input["gpu"]["allowedCudaVersions"] if transport == "rest" else create.input["allowedCudaVersions"]
    assert cuda == ["12.8", "12.9", "13.0"], "the default image's CUDA 12.8 needs a 12.8+ host driver"
    print(f"\n[{transport}] deploy -> running: {deploy_to_running:.1f} s (container-executing fake)")


def _tamper(local_supabase: Any, object_name: str) -> None:
    reply = httpx.put(
        f"{local_supabase.url}/storage/v1/object/lora-models/{object_name}",
        content=b"PK\x03\x04 not the wheel the launcher built",
        headers={
            "apikey": local_supabase.service_role_key,
            "Authorization": f"Bearer {local_supabase.service_role_key}",
            "Content-Type": "application/octet-stream",
            "x-upsert": "true",
        },
    )
    assert reply.status_code == 200, reply.text


def test_a_tampered_wheel_fails_the_job_as_container_error_and_ends_the_pod_once(
    local_supabase: Any, owner: Any, executing_fake: Callable[..., Any]
) -> None:
    _, lp, dataset = owner
    fake = executing_fake(provision_delay=60)  # the image "pulls" until the wheel has been swapped
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend_for(fake), env=SELFTEST)
    _tamper(local_supabase, fake.pod_env(job.pod_id)["LORA_WHEEL_OBJECT"])
    started = time.monotonic()
    fake.advance(60)
    job = wait_for(lp, job.id, lambda j: j.terminal, timeout=PROVISION_TIMEOUT.total_seconds())
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "container_error")
    assert time.monotonic() - started < 60
    assert "SHA-256" in job.error["message"] and "not installing it" in job.error["message"]
    assert job.error["step"] == "checking the wheel" and "FAILED" in job.error["output"]
    assert wait_gone(fake, job.pod_id)
    assert len(terminations(fake)) == 1
    logs = fake.containers.logs(job.pod_id)
    assert fake.containers.starts(job.pod_id) == 1 and "pip install" not in logs and "Processing" not in logs
    events = lp.jobs.events(job.id)
    assert any(e.kind == "bootstrap" and "SHA-256" in e.message for e in events)


def test_a_pip_failure_fails_the_job_with_pips_own_words_and_ends_the_pod(
    owner: Any, executing_fake: Callable[..., Any]
) -> None:
    _, lp, dataset = owner
    fake = executing_fake()
    job = lp.jobs.create(dataset.id, base_model="tiny")
    # The first-deploy bug of issue 13: a requirement the index cannot serve. Here it is named explicitly.
    job = lp.jobs.deploy(job.id, backend=backend_for(fake), requirement="lora-pipeline[train]==99.0", env=SELFTEST)
    job = wait_for(lp, job.id, lambda j: j.terminal, timeout=PROVISION_TIMEOUT.total_seconds())
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "container_error")
    assert job.error["step"] == "installing lora-pipeline"
    assert "No matching distribution" in job.error["output"] or "no matching distribution" in job.error["output"]
    assert wait_gone(fake, job.pod_id)
    assert len(terminations(fake)) == 1 and fake.containers.starts(job.pod_id) == 1


def test_an_unresolved_runpod_secret_fails_before_install(owner: Any, executing_fake: Callable[..., Any]) -> None:
    _, lp, dataset = owner
    fake = executing_fake()
    job = lp.jobs.create(dataset.id, base_model="tiny")
    job = lp.jobs.deploy(job.id, backend=backend_for(fake), env=SELFTEST, secrets={"HF_TOKEN": "hf_token"})
    [create] = fake.calls_to("podFindAndDeployOnDemand")
    sent = {e["key"]: e["value"] for e in create.input["env"]}
    assert sent["HF_TOKEN"] == "{{ RUNPOD_SECRET_hf_token }}" and sent["LORA_SECRET_ENV"] == "HF_TOKEN"
    job = wait_for(lp, job.id, lambda j: j.terminal, timeout=60)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "container_error")
    assert "secret HF_TOKEN was not resolved" in job.error["message"]
    assert wait_gone(fake, job.pod_id)


def test_a_restarted_container_of_an_ended_job_terminates_at_once(
    local_supabase: Any, owner: Any, executing_fake: Callable[..., Any]
) -> None:
    _, lp, dataset = owner
    fake = executing_fake()
    slow = {**SELFTEST, "LORA_SELFTEST_STEP_SECONDS": "2"}
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend_for(fake), env=slow)
    job = wait_for(lp, job.id, lambda j: j.status is JobStatus.RUNNING, timeout=120)
    assert job.status is JobStatus.RUNNING, fake.containers.logs(job.pod_id)[-3000:]
    assert fake.containers is not None
    fake.containers.restart_pause = 3.0
    fake.containers.crash(job.pod_id)  # the container dies; RunPod restarts it 3 s later ...
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:  # ... by when the job ended elsewhere
        conn.execute(
            "update public.training_jobs set status = 'failed', status_reason = 'pod_lost' where id = %s", (job.id,)
        )
    restarted = time.monotonic()
    assert wait_gone(fake, job.pod_id, timeout=60), fake.containers.logs(job.pod_id)[-3000:]
    assert time.monotonic() - restarted < 30
    logs = fake.containers.logs(job.pod_id)
    assert fake.containers.starts(job.pod_id) == 2 and fake.pod(job.pod_id).restart_count == 1, logs[-3000:]
    assert len(terminations(fake)) == 1
    second_start = fake.containers.logs(job.pod_id).split("--- container start 2")[1]
    assert "already ended (failed); terminating this pod" in second_start and "pip install" not in second_start
    assert lp.jobs.retrieve(job.id).status_reason == "pod_lost"


class _Index(BaseHTTPRequestHandler):
    asked: list[str]

    def do_GET(self) -> None:
        self.asked.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def package_index() -> Iterator[tuple[str, list[str]]]:
    """A loopback "package index" that records every path pip asks for and serves nothing."""
    asked: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Index", (_Index,), {"asked": asked}))
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple", asked
    server.shutdown()
    server.server_close()


def test_the_bootstrap_never_asks_an_index_for_lora_pipeline(
    owner: Any, executing_fake: Callable[..., Any], package_index: tuple[str, list[str]]
) -> None:
    _, lp, dataset = owner
    index_url, asked = package_index
    fake = executing_fake(container_env={"PIP_NO_INDEX": "false", "PIP_INDEX_URL": index_url})
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend_for(fake), env=SELFTEST)
    job = wait_for(lp, job.id, lambda j: j.terminal, timeout=120)
    assert job.status is JobStatus.SUCCEEDED, fake.containers.logs(job.pod_id)[-3000:]
    assert not [path for path in asked if "lora-pipeline" in path or "lora_pipeline" in path], asked
    # The recorder does see a by-name install: only when the user names a published requirement.
    named = lp.jobs.deploy(
        lp.jobs.create(dataset.id, base_model="tiny").id,
        backend=backend_for(fake),
        requirement="lora-pipeline[train]==0.1.0",
        env=SELFTEST,
    )
    named = wait_for(lp, named.id, lambda j: j.terminal, timeout=120)
    assert named.status_reason == "container_error" and "/simple/lora-pipeline/" in asked


def test_a_wheel_that_is_gone_fails_the_job_with_the_download_status(
    local_supabase: Any, owner: Any, executing_fake: Callable[..., Any]
) -> None:
    _, lp, dataset = owner
    fake = executing_fake(provision_delay=60)
    job = lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny").id, backend=backend_for(fake), env=SELFTEST)
    object_name = fake.pod_env(job.pod_id)["LORA_WHEEL_OBJECT"]
    service = {"apikey": local_supabase.service_role_key, "Authorization": f"Bearer {local_supabase.service_role_key}"}
    gone = httpx.delete(f"{local_supabase.url}/storage/v1/object/lora-models/{object_name}", headers=service)
    assert gone.status_code == 200, gone.text
    fake.advance(60)
    job = wait_for(lp, job.id, lambda j: j.terminal, timeout=60)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "container_error")
    assert job.error["step"] == "downloading lora-pipeline"
    assert "could not download the wheel lora_pipeline-" in job.error["message"] and "(HTTP 4" in job.error["message"]
    assert wait_gone(fake, job.pod_id) and len(terminations(fake)) == 1


def test_an_image_whose_torch_is_too_old_fails_before_pip_runs(
    owner: Any, executing_fake: Callable[..., Any], tmp_path: Path
) -> None:
    _, lp, dataset = owner
    old_torch = tmp_path / "image-packages" / "torch"  # a custom image whose tag says nothing: torch 2.4 inside
    old_torch.mkdir(parents=True)
    (old_torch / "__init__.py").write_text('__version__ = "2.4.1+cu124"\n')
    fake = executing_fake(container_env={"PYTHONPATH": str(old_torch.parent)})
    job = lp.jobs.create(dataset.id, base_model="tiny")
    job = lp.jobs.deploy(job.id, backend=backend_for(fake), image="ghcr.io/example/trainer:latest", env=SELFTEST)
    job = wait_for(lp, job.id, lambda j: j.terminal, timeout=60)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "container_error")
    assert job.error["step"] == "checking the image's torch"
    assert "torch 2.4.1+cu124 is older than 2.5" in job.error["message"]
    assert "pip install" not in fake.containers.logs(job.pod_id) and wait_gone(fake, job.pod_id)
