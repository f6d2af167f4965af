"""The fake's pod state machine, money and hooks, driven through the unmodified runpod SDK."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import runpod

from lora_pipeline.testing.fake_runpod import CAPACITY_MESSAGE, FakeRunPod, Phase
from lora_pipeline.testing.fake_runpod.faults import Fault, parse_fault


@pytest.fixture
def slow_fake() -> Iterator[FakeRunPod]:
    with FakeRunPod(provision_delay=60, restart_delay=30) as server, server.environment():
        yield server


def test_runtime_is_null_while_the_image_is_pulled(slow_fake: FakeRunPod) -> None:
    pod = runpod.create_pod("p", "img", "NVIDIA A40")
    seen = runpod.get_pod(pod["id"])
    assert seen["desiredStatus"] == "RUNNING" and seen["runtime"] is None
    slow_fake.advance(60)
    assert runpod.get_pod(pod["id"])["runtime"]["ports"][0]["privatePort"] == 22


def test_container_exit_restarts_and_counts(slow_fake: FakeRunPod) -> None:
    pod_id = runpod.create_pod("p", "img", "NVIDIA A40")["id"]
    slow_fake.advance(90)
    slow_fake.container_exit(pod_id, 1)
    assert runpod.get_pod(pod_id)["runtime"] is None
    slow_fake.advance(30)
    seen, record = runpod.get_pod(pod_id), slow_fake.pod(pod_id)
    assert seen["runtime"] is not None and seen["uptimeSeconds"] == 0
    assert record is not None and record.restart_count == 1 and record.exit_codes == [1]


def test_billing_follows_the_virtual_clock(fake: FakeRunPod) -> None:
    start = fake.balance
    pod_id = runpod.create_pod("p", "img", "NVIDIA A40", cloud_type="SECURE")["id"]
    fake.advance(1800)
    assert fake.pod(pod_id).billed_usd == pytest.approx(0.22)  # type: ignore[union-attr]
    assert fake.balance == pytest.approx(start - 0.22)
    assert runpod.get_user()["id"] == "user_fake"


def test_running_out_of_money_terminates_pods_without_a_network_volume() -> None:
    with FakeRunPod(balance=1.0) as fake, fake.environment():
        pod_id = runpod.create_pod("p", "img", "NVIDIA A40", cloud_type="SECURE")["id"]
        fake.advance(3 * 3600)
        assert runpod.get_pod(pod_id) is None and fake.balance == pytest.approx(0, abs=1e-5)
        assert fake.pod(pod_id).billed_usd == pytest.approx(1.0, abs=1e-5)  # type: ignore[union-attr]


def test_stop_after_deadline_stops_and_resume_needs_free_gpus(fake: FakeRunPod) -> None:
    pod_id = runpod.create_pod("p", "img", "NVIDIA A40", cloud_type="SECURE")["id"]
    fake.state.pods[pod_id].stop_after = fake.now + timedelta(minutes=5)
    fake.advance(301)
    assert runpod.get_pod(pod_id)["desiredStatus"] == "EXITED"
    fake.set_stock("A40", "SECURE", 0)
    with pytest.raises(runpod.error.QueryError, match="not enough free GPUs"):
        runpod.resume_pod(pod_id, 1)
    fake.set_stock("A40", "SECURE", 1)
    assert runpod.resume_pod(pod_id, 1)["desiredStatus"] == "RUNNING"


def test_all_cloud_takes_the_cheaper_cloud_with_stock(fake: FakeRunPod) -> None:
    pod_id = runpod.create_pod("p", "img", "NVIDIA A40")["id"]
    assert fake.pod(pod_id).cloud_type == "COMMUNITY"  # type: ignore[union-attr]
    fake.set_stock("A40", "COMMUNITY", 0)
    assert fake.pod(runpod.create_pod("q", "img", "NVIDIA A40")["id"]).cloud_type == "SECURE"  # type: ignore[union-attr]


def test_stock_is_listed_and_can_lie() -> None:
    with FakeRunPod(default_stock=0, stock_lies=True) as fake, fake.environment():
        assert runpod.get_gpu("NVIDIA A40")["lowestPrice"]["uninterruptablePrice"] == pytest.approx(0.35)
        with pytest.raises(runpod.error.QueryError, match="no longer any instances"):
            runpod.create_pod("p", "img", "NVIDIA A40")
        assert fake.calls_to("podFindAndDeployOnDemand")[-1].response["errors"][0]["message"] == CAPACITY_MESSAGE


def test_unknown_gpu_type_looks_like_no_capacity(fake: FakeRunPod) -> None:
    reply = fake.gateway.handle(
        "/graphql",
        {"Authorization": f"Bearer {fake.api_key}"},
        b'{"query": "mutation { podFindAndDeployOnDemand(input: {gpuTypeId: \\"NVIDIA Z9\\"}) { id } }"}',
    )
    assert reply is not None and reply.status == 200 and b'"podFindAndDeployOnDemand": null' in reply.body


def test_pod_env_is_what_the_container_sees(fake: FakeRunPod) -> None:
    pod = runpod.create_pod("p", "img", "NVIDIA A40", env={"LORA_JOB_ID": "j"})
    env = fake.pod_env(pod["id"])
    assert env["LORA_JOB_ID"] == "j" and env["RUNPOD_POD_ID"] == pod["id"]
    assert env["RUNPOD_API_KEY"] != fake.api_key and env["RUNPOD_API_BASE_URL"] == fake.url
    assert fake.state.principal(env["RUNPOD_API_KEY"]).pod_id == pod["id"]  # type: ignore[union-attr]


def test_pod_key_cannot_list_or_create(fake: FakeRunPod) -> None:
    pod = runpod.create_pod("p", "img", "NVIDIA A40")
    pod_key = fake.pod_env(pod["id"])["RUNPOD_API_KEY"]
    with pytest.raises(runpod.error.QueryError, match="Forbidden"):
        runpod.get_pods(api_key=pod_key)
    assert runpod.get_pod(pod["id"], api_key=pod_key)["id"] == pod["id"]


def test_faults_are_consumed_in_order_per_operation(fake: FakeRunPod) -> None:
    fake.script("myself", ["internal_error", "ok"])
    with pytest.raises(runpod.error.QueryError, match="Something went wrong"):
        runpod.get_user()
    assert runpod.get_user()["id"] == "user_fake"
    assert [c.fault for c in fake.calls_to("myself")] == [Fault("internal_error"), Fault("ok")]


@pytest.mark.parametrize(
    ("spec", "fault"), [("delay(1.5)", Fault("delay", 1.5)), ("http_429_text", Fault("http_429_text", 2.0))]
)
def test_fault_specs_parse(spec: str, fault: Fault) -> None:
    assert parse_fault(spec) == fault


@pytest.mark.parametrize("spec", ["explode", "delay(x)"])
def test_unknown_faults_are_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(spec)


def test_terminated_pods_leave_the_listing(fake: FakeRunPod) -> None:
    pod_id = runpod.create_pod("p", "img", "NVIDIA A40")["id"]
    runpod.terminate_pod(pod_id)
    assert runpod.get_pods() == [] and fake.pod(pod_id).phase is Phase.TERMINATED  # type: ignore[union-attr]
