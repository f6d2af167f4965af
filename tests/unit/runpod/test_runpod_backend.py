"""RunPodBackend against the fake: failover, typed errors, retries, idempotent launch and terminate, reaping."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest

from lora_pipeline._exceptions import (
    APIConnectionError,
    AuthenticationError,
    CapacityError,
    ConfigError,
    InsufficientFunds,
    PermissionDenied,
    RateLimited,
    ServiceUnavailable,
    Timeout,
)
from lora_pipeline.backends.base import PodBackend, PodHandle, PodSpec, PodState, pod_name
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.testing.fake_runpod import FakeRunPod

CREATE = "podFindAndDeployOnDemand"
SECURE_A40 = RunPodOffer(gpu_type="A40", cloud_type="SECURE")
COMMUNITY_A40 = RunPodOffer(gpu_type="A40", cloud_type="COMMUNITY")
L40S = RunPodOffer(gpu_type="L40S", cloud_type="ALL")
Make = Callable[..., RunPodBackend]


def spec(job_id: str = "job1", attempt: int = 1, **fields: object) -> PodSpec:
    return PodSpec(job_id=job_id, attempt=attempt, name=pod_name(job_id, attempt), **fields)  # type: ignore[arg-type]


def test_backend_satisfies_the_protocol(make_backend: Make) -> None:
    assert isinstance(make_backend(), PodBackend)


@pytest.mark.parametrize("first", ["capacity_error", "capacity_null"])
def test_capacity_in_either_shape_fails_over_to_the_next_offer(
    fake: FakeRunPod, make_backend: Make, first: str
) -> None:
    fake.script(CREATE, [first])
    handle = make_backend(SECURE_A40, COMMUNITY_A40).launch(spec())
    creates = fake.calls_to(CREATE)
    assert [c.input["cloudType"] for c in creates] == ["SECURE", "COMMUNITY"]  # type: ignore[index]
    assert handle.cloud_type == "COMMUNITY" and fake.pod(handle.pod_id) is not None  # type: ignore[attr-defined]


def test_failover_crosses_gpu_types_when_the_spec_names_none(fake: FakeRunPod, make_backend: Make) -> None:
    fake.set_stock("A40", "SECURE", 0)
    handle = make_backend(SECURE_A40, L40S).launch(spec())
    assert handle.gpu_type == "L40S"
    assert [c.input["gpuTypeId"] for c in fake.calls_to(CREATE)] == ["NVIDIA A40", "NVIDIA L40S"]  # type: ignore[index]


def test_a_named_gpu_goes_first_and_fails_over_only_to_gpus_with_as_much_memory(
    fake: FakeRunPod, make_backend: Make
) -> None:
    fake.script(CREATE, ["capacity_error"])
    offers = (RunPodOffer(gpu_type="RTX_4090"), L40S, RunPodOffer(gpu_type="A100_80GB"), SECURE_A40)
    handle = make_backend(*offers).launch(spec(gpu_type="L40S"))
    tried = [c.input["gpuTypeId"] for c in fake.calls_to(CREATE)]  # type: ignore[index]
    assert tried[:2] == ["NVIDIA L40S", "NVIDIA A100 80GB PCIe"] and "NVIDIA GeForce RTX 4090" not in tried
    assert handle.gpu_type == "A100_80GB"


def test_exhausting_every_offer_raises_capacity_error(
    fake: FakeRunPod, make_backend: Make, sleeps: list[float]
) -> None:
    fake.script(CREATE, ["capacity_error", "capacity_null"] * 2)
    with pytest.raises(CapacityError, match="no capacity for pod lp-job1-1"):
        make_backend(SECURE_A40, COMMUNITY_A40, capacity_rounds=2).launch(spec())
    assert len(fake.calls_to(CREATE)) == 4 and fake.pods() == []
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 2.0  # one jittered pause between the two rounds


def test_real_stock_shortage_is_capacity_in_the_null_shape_too() -> None:
    with FakeRunPod(capacity_shape="null", default_stock=0) as fake, fake.environment():
        backend = RunPodBackend(fake.api_key, timeout=2, sleep=lambda _: None, capacity_rounds=1, transport="graphql")
        with pytest.raises(CapacityError):
            backend.launch(spec(gpu_type="A40"))
        assert fake.calls_to(CREATE)[-1].response == {"data": {CREATE: None}}


def test_insufficient_balance_is_not_retried(fake: FakeRunPod, make_backend: Make) -> None:
    fake.script(CREATE, ["insufficient_balance"])
    with pytest.raises(InsufficientFunds):
        make_backend(SECURE_A40, COMMUNITY_A40).launch(spec())
    assert len(fake.calls_to(CREATE)) == 1


def test_spend_limit_of_the_account_is_insufficient_funds() -> None:
    with (
        FakeRunPod(spend_limit=0.1) as fake,
        fake.environment(),
        pytest.raises(InsufficientFunds, match="spending limit"),
    ):
        RunPodBackend(fake.api_key, timeout=2, transport="graphql").launch(spec(gpu_type="A40"))


def test_unknown_key_is_an_authentication_error_without_retries(fake: FakeRunPod, make_backend: Make) -> None:
    with pytest.raises(AuthenticationError):
        make_backend(api_key="rpa_WRONG_KEY_123456").list_pods()
    assert len(fake.calls) == 1 and fake.calls[0].status == 401


def test_scripted_401_is_an_authentication_error(fake: FakeRunPod, make_backend: Make) -> None:
    fake.script("myself", ["http_401"])
    with pytest.raises(AuthenticationError):
        make_backend().list_pods()


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("http_429_text(7)", RateLimited),
        ("http_429_json", RateLimited),
        ("http_500_html", ServiceUnavailable),
        ("cloudflare_1010", ServiceUnavailable),
        ("malformed_json", ServiceUnavailable),
        ("internal_error", ServiceUnavailable),
        ("drop_connection", APIConnectionError),
    ],
)
def test_transient_failures_are_retried_then_raised_typed(
    fake: FakeRunPod, make_backend: Make, sleeps: list[float], fault: str, error: type[Exception]
) -> None:
    fake.script("myself", [fault] * 3)
    with pytest.raises(error):
        make_backend(max_attempts=3).list_pods()
    assert len(fake.calls_to("myself")) == 3 and len(sleeps) == 2


def test_a_transient_failure_then_success_recovers(fake: FakeRunPod, make_backend: Make, sleeps: list[float]) -> None:
    fake.script("gpuTypes", ["http_500_html", "http_429_text"])
    assert make_backend().price("A40") == pytest.approx(0.35)
    assert len(sleeps) == 2


def test_a_slow_reply_hits_our_timeout_not_the_sdks_30_seconds(fake: FakeRunPod, make_backend: Make) -> None:
    fake.script("pod", ["delay(3)", "delay(3)"])
    handle = PodHandle(backend="runpod", pod_id="nosuchpod00000", name="x")
    with pytest.raises(Timeout, match=r"within 0\.2s"):
        make_backend(timeout=0.2, max_attempts=2).status(handle)


def test_create_that_timed_out_is_found_instead_of_created_twice(fake: FakeRunPod, make_backend: Make) -> None:
    fake.script(CREATE, ["delay(0.6)"])
    handle = make_backend(SECURE_A40, timeout=0.2).launch(spec())
    assert len(fake.calls_to(CREATE)) == 1 and [p.id for p in fake.pods()] == [handle.pod_id]


@pytest.mark.parametrize("fault", ["drop_connection_after", "internal_error"])
def test_create_retried_after_a_lost_reply_rents_one_pod(fake: FakeRunPod, make_backend: Make, fault: str) -> None:
    fake.script(CREATE, [fault])
    handle = make_backend(SECURE_A40).launch(spec())
    assert len(fake.pods()) == 1 and fake.pods()[0].id == handle.pod_id


def test_retries_inside_a_launch_do_not_multiply(fake: FakeRunPod, make_backend: Make) -> None:
    fake.script(CREATE, ["internal_error"])
    fake.script("myself", ["ok", "http_500_html"])  # the first lookup, then the lookup before the retry
    make_backend(SECURE_A40, max_attempts=3).launch(spec())
    assert len(fake.calls_to("myself")) == 3 and len(fake.calls_to(CREATE)) == 2 and len(fake.pods()) == 1


def test_launch_is_idempotent_by_name(fake: FakeRunPod, make_backend: Make) -> None:
    backend = make_backend(SECURE_A40)
    first, second = backend.launch(spec()), backend.launch(spec())
    assert first.pod_id == second.pod_id and len(fake.calls_to(CREATE)) == 1
    assert backend.launch(spec(attempt=2)).pod_id != first.pod_id


def test_launch_sends_the_spec_and_reads_the_price_after_create(fake: FakeRunPod, make_backend: Make) -> None:
    fake.set_price("A40", secure=0.52, community=None)
    deadline = fake.now + timedelta(hours=2)
    handle = make_backend(SECURE_A40).launch(
        spec(env={"LORA_JOB_ID": "job1"}, command=["/bin/bash", "-c", "run"], terminate_after=deadline, volume_gb=5)
    )
    assert handle.cost_per_hour == pytest.approx(0.52)
    operations = [c.operation for c in fake.calls]
    assert operations[operations.index(CREATE) + 1] == "pod"
    sent = fake.calls_to(CREATE)[0].input or {}
    assert sent["terminateAfter"] == deadline.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert sent["dockerArgs"] == '{"cmd": ["run"], "entrypoint": ["/bin/bash", "-c"]}'
    assert sent["env"] == [{"key": "LORA_JOB_ID", "value": "job1"}] and sent["volumeMountPath"] == "/workspace"


def test_naive_terminate_after_is_refused(make_backend: Make) -> None:
    with pytest.raises(ConfigError, match="timezone-aware"):
        make_backend(SECURE_A40).launch(spec(terminate_after=FakeRunPod().now.replace(tzinfo=None)))


def test_terminate_after_deadline_ends_the_pod_on_the_virtual_clock(fake: FakeRunPod, make_backend: Make) -> None:
    backend = make_backend(SECURE_A40)
    handle = backend.launch(spec(terminate_after=fake.now + timedelta(hours=1)))
    fake.advance(3599)
    assert backend.status(handle).state is PodState.RUNNING
    fake.advance(2)
    assert backend.status(handle).state is PodState.TERMINATED
    assert fake.pod(handle.pod_id).billed_usd == pytest.approx(0.44, rel=1e-3)  # type: ignore[union-attr]


def test_status_follows_provisioning_and_stop() -> None:
    with FakeRunPod(provision_delay=120) as fake, fake.environment():
        backend = RunPodBackend(fake.api_key, timeout=2, transport="graphql")
        handle = backend.launch(spec(gpu_type="A40"))
        assert backend.status(handle).state is PodState.PROVISIONING
        fake.advance(120)
        assert backend.status(handle).state is PodState.RUNNING
        fake.state.stop(handle.pod_id)
        assert backend.status(handle).state is PodState.EXITED


def test_terminate_is_idempotent(fake: FakeRunPod, make_backend: Make) -> None:
    backend = make_backend(SECURE_A40)
    handle = backend.launch(spec())
    backend.terminate(handle)
    backend.terminate(handle)
    assert fake.pods() == [] and backend.status(handle).state is PodState.TERMINATED
    assert fake.calls_to("podTerminate")[-1].response["errors"][0]["message"] == "pod not found to terminate"


def test_pod_scoped_key_terminates_its_own_pod_only(fake: FakeRunPod, make_backend: Make) -> None:
    backend = make_backend(SECURE_A40)
    own, other = backend.launch(spec("own")), backend.launch(spec("other"))
    pod_backend = make_backend(api_key=fake.pod_env(own.pod_id)["RUNPOD_API_KEY"])
    with pytest.raises(PermissionDenied):
        pod_backend.terminate(other)
    with pytest.raises(PermissionDenied):
        pod_backend.list_pods()
    assert pod_backend.status(own).state is PodState.RUNNING
    pod_backend.terminate(own)
    assert [p.id for p in fake.pods()] == [other.pod_id]


def test_reap_terminates_only_condemned_lp_pods(fake: FakeRunPod, make_backend: Make) -> None:
    backend = make_backend(SECURE_A40)
    doomed, kept = backend.launch(spec("done-job", 2)), backend.launch(spec("live-job"))
    backend.create_pod(name="someone-elses-pod", image="img", gpu_type="A40")
    asked: list[tuple[str, int]] = []

    def condemn(job_id: str, attempt: int, handle: PodHandle) -> bool:
        asked.append((job_id, attempt))
        return job_id == "done-job"

    reaped = backend.reap(condemn)
    assert [h.pod_id for h in reaped] == [doomed.pod_id]
    assert sorted(asked) == [("done-job", 2), ("live-job", 1)]
    assert {p.name for p in fake.pods()} == {kept.name, "someone-elses-pod"}


def test_reap_goes_on_after_one_pod_fails(fake: FakeRunPod, make_backend: Make) -> None:
    backend = make_backend(SECURE_A40, max_attempts=1)
    backend.launch(spec("a"))
    backend.launch(spec("b"))
    fake.script("podTerminate", ["http_500_html"])
    assert len(backend.reap(lambda *_: True)) == 1 and len(fake.pods()) == 1


def test_price_is_the_lowest_on_demand_rate(fake: FakeRunPod, make_backend: Make) -> None:
    fake.set_price("H100_80GB", secure=2.99, community=2.69)
    backend = make_backend()
    assert backend.price("H100_80GB") == pytest.approx(2.69)
    assert backend.price(None) is None


def test_query_error_text_never_leaks_env_values(
    fake: FakeRunPod, make_backend: Make, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "job-token-that-must-not-leak-0123456789"
    fake.script(CREATE, ["insufficient_balance"])
    with caplog.at_level(logging.DEBUG, logger="lora_pipeline"), pytest.raises(InsufficientFunds) as raised:
        make_backend(SECURE_A40).launch(spec(env={"LORA_JOB_TOKEN": secret}))
    chain = [raised.value, raised.value.__cause__]
    assert all(secret not in str(e) and secret not in repr(vars(e)) for e in chain)
    assert secret not in caplog.text


def test_missing_key_is_a_config_error_naming_the_env_var() -> None:
    with pytest.raises(ConfigError, match="RUNPOD_API_KEY"):
        RunPodBackend("")
