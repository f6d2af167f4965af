"""Jobs on the RunPod backend against the fake RunPod server, over both transports.

Every test runs on REST v2 (the default) and on GraphQL (the runpod SDK's wire, until RunPod retires it);
:class:`Wire` says how each one names its operations. A whole job through the real bootstrap, container and
all, is in ``test_jobs_runpod_containers.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from lora_pipeline import APIRetired, CapacityError
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.types.jobs import JobStatus


@dataclass(frozen=True)
class Wire:
    """One transport's names for what the tests look at in ``fake.calls``."""

    transport: str
    create: str
    terminate: str
    creates_per_gpu: int
    """Creates one GPU offer costs when it has no capacity (REST tries each cloud; GraphQL asks for ALL)."""

    def gpu_ids(self, fake: Any) -> list[str]:
        key = ("gpu", "id") if self.transport == "rest" else ("gpuTypeId",)
        ids = []
        for call in fake.calls_to(self.create):
            value = call.input
            for part in key:
                value = value[part]
            if not ids or ids[-1] != value:
                ids.append(value)
        return ids


WIRES = {
    "rest": Wire("rest", "createPod", "deletePod", 2),
    "graphql": Wire("graphql", "podFindAndDeployOnDemand", "podTerminate", 1),
}


@pytest.fixture(params=list(WIRES))
def wire(request: pytest.FixtureRequest) -> Wire:
    return WIRES[request.param]


def backend_for(fake: Any, wire: Wire, *offers: str, **options: Any) -> RunPodBackend:
    options = {"sleep": lambda _: None, "timeout": 5, **options}
    return RunPodBackend(
        fake.api_key, [RunPodOffer(gpu_type=o) for o in offers or ("A40",)], transport=wire.transport, **options
    )


def deploy(lp: Any, dataset: Any, backend: RunPodBackend, **fields: Any) -> Any:
    return lp.jobs.deploy(lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40", **fields).id, backend=backend)


def test_capacity_failover_then_success_on_the_next_offer(owner: Any, fake_runpod: Any, wire: Wire) -> None:
    _, lp, dataset = owner
    fake_runpod.script(wire.create, ["capacity_error", "capacity_null"] * wire.creates_per_gpu)
    job = deploy(lp, dataset, backend_for(fake_runpod, wire, "A40", "L40S", "A100_80GB"))
    assert job.status is JobStatus.PROVISIONING and job.gpu_type == "A100_80GB"
    assert wire.gpu_ids(fake_runpod) == ["NVIDIA A40", "NVIDIA L40S", "NVIDIA A100 80GB PCIe"]


def test_no_capacity_anywhere_fails_the_job_with_no_capacity(owner: Any, fake_runpod: Any, wire: Wire) -> None:
    _, lp, dataset = owner
    fake_runpod.script(wire.create, ["capacity_error"] * 20)
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40")
    with pytest.raises(CapacityError):
        lp.jobs.deploy(job.id, backend=backend_for(fake_runpod, wire))
    job = lp.jobs.retrieve(job.id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "no_capacity")
    assert fake_runpod.pods() == []


def test_budget_reached_stops_the_job_and_ends_its_pod(owner: Any, fake_runpod: Any, wire: Wire) -> None:
    _, lp, dataset = owner
    fake_runpod.state.spend_limit, fake_runpod.state.balance = 1e6, 1e7
    fake_runpod.set_price("A40", secure=3600.0, community=3600.0)  # a dollar a second
    backend = backend_for(fake_runpod, wire)
    job = deploy(lp, dataset, backend, max_cost_usd=1.0)
    time.sleep(1.2)
    [synced] = lp.jobs.sync(job.id, backend=backend)
    assert (synced.status, synced.status_reason) == (JobStatus.FAILED, "budget_exceeded")
    assert fake_runpod.pods() == [] and fake_runpod.calls_to(wire.terminate)


def test_cancel_while_provisioning_terminates_the_pod(owner: Any, fake_runpod: Any, wire: Wire) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod, wire)
    job = lp.jobs.cancel(deploy(lp, dataset, backend).id, backend=backend)
    assert job.status is JobStatus.CANCELLED
    assert fake_runpod.pods() == [] and fake_runpod.calls_to(wire.terminate)


def test_a_pod_that_vanished_fails_the_job_as_pod_lost(owner: Any, fake_runpod: Any, wire: Wire) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod, wire, status_ttl=0)  # over REST: no shared pod list to wait out
    job = deploy(lp, dataset, backend)
    fake_runpod.state.terminate(job.pod_id)  # gone without a word from the pod (host failure, balance, a user)
    [synced] = lp.jobs.sync(job.id, backend=backend)
    assert (synced.status, synced.status_reason) == (JobStatus.FAILED, "pod_lost")


def test_a_container_that_keeps_restarting_without_heartbeats_is_ended(
    local_supabase: Any, owner: Any, fake_runpod: Any, wire: Wire
) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod, wire)
    job = deploy(lp, dataset, backend)
    for code in (1, 1, 1):  # RunPod restarts an exited container and keeps billing
        fake_runpod.container_exit(job.pod_id, code)
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute(
            "update public.training_jobs set heartbeat_at = now() - interval '1 hour' where id = %s", (job.id,)
        )
    [synced] = lp.jobs.sync(job.id, backend=backend)
    assert (synced.status, synced.status_reason) == (JobStatus.FAILED, "pod_lost")
    assert fake_runpod.pod(job.pod_id).restart_count == 3 and fake_runpod.pods() == []


def test_reap_terminates_only_pods_whose_job_ended_or_went_silent(
    local_supabase: Any, owner: Any, fake_runpod: Any, wire: Wire
) -> None:
    _, lp, dataset = owner
    backend = backend_for(fake_runpod, wire)
    live, ended, silent = (deploy(lp, dataset, backend) for _ in range(3))
    stray = backend.create_pod(name="lp-00000000-0000-0000-0000-000000000000-1", image="x", gpu_type="A40", env={})
    with psycopg.connect(local_supabase.db_url, autocommit=True) as conn:
        conn.execute("update public.training_jobs set heartbeat_at = now() where id = %s", (live.id,))
        conn.execute(
            "update public.training_jobs set status = 'failed', status_reason = 'training_error' where id = %s",
            (ended.id,),
        )
        conn.execute(
            "update public.training_jobs set heartbeat_at = now() - interval '1 hour' where id = %s", (silent.id,)
        )
    condemned = {h.pod_id for h in lp.jobs.reap(backend=backend)}
    assert condemned == {ended.pod_id, silent.pod_id, stray["id"]}
    assert [p.id for p in fake_runpod.pods()] == [live.pod_id]


def run_pod_program(fake: Any, pod_id: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The pod program as a container would run it once the bootstrap installed the package."""
    env = {
        **fake.pod_env(pod_id),
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LORA_TRAINER": "selftest",
        "LORA_WORK_DIR": str(tmp_path / "work"),
        "LORA_HEARTBEAT_SECONDS": "0.5",
    }
    command = [sys.executable, "-m", "lora_pipeline.pod", "run"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_with_graphql_retired_a_full_job_runs_on_rest(owner: Any, fake_runpod: Any, tmp_path: Path) -> None:
    _, lp, dataset = owner
    fake_runpod.retire_graphql()
    backend = backend_for(fake_runpod, WIRES["rest"])
    job = deploy(lp, dataset, backend)
    finished = run_pod_program(fake_runpod, job.pod_id, tmp_path)
    assert finished.returncode == 0, finished.stderr[-3000:]
    job = lp.jobs.wait_for_completion(job.id, backend=backend, timeout=30, poll_interval=0.2, progress=None)
    assert job.status is JobStatus.SUCCEEDED and fake_runpod.pods() == []
    [ended] = fake_runpod.calls_to("deletePod")[:1]
    assert ended.api_key != fake_runpod.api_key, "the pod ends itself over REST with its own pod-scoped key"
    assert not [c for c in fake_runpod.calls if c.operation_type != "rest"], "nothing reached GraphQL"


def test_forcing_graphql_once_it_is_retired_fails_at_once_with_the_retirement_message(
    owner: Any, fake_runpod: Any
) -> None:
    _, lp, dataset = owner
    fake_runpod.retire_graphql()
    sleeps: list[float] = []
    backend = backend_for(fake_runpod, WIRES["graphql"], sleep=sleeps.append)
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40")
    with pytest.raises(APIRetired, match="GraphQL API has been retired") as error:
        lp.jobs.deploy(job.id, backend=backend)
    assert sleeps == [] and "transport='rest'" in str(error.value)
    job = lp.jobs.retrieve(job.id)
    assert job.status is JobStatus.FAILED and "retired" in (job.error or {}).get("message", "")


def test_an_ended_job_records_what_runpod_billed_beside_our_estimate(
    local_supabase: Any, owner: Any, fake_runpod: Any
) -> None:
    """Over REST the bill comes from /v2/billing/pods once the job ended; over GraphQL there is none to read."""
    _, lp, dataset = owner
    fake_runpod.set_price("A40", secure=3.6, community=3.6)
    backend = backend_for(fake_runpod, WIRES["rest"])
    job = lp.jobs.cancel(deploy(lp, dataset, backend).id, backend=backend)
    assert job.status is JobStatus.CANCELLED
    [record] = lp.costs.for_job(job.id)
    assert record.billed_usd is not None and record.billed_usd >= 0 and record.billed_at is not None
    assert fake_runpod.calls_to("listPodBilling")
