"""RunPodBackend over REST v2 against the fake: catalog-ordered failover, the create status table, states,
restarts, idempotent launch and terminate, pod-scoped keys, logs, billing, and GraphQL's 410."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from lora_pipeline._exceptions import (
    APIRetired,
    AuthenticationError,
    BadRequest,
    CapacityError,
    ConfigError,
    InsufficientFunds,
    PermissionDenied,
    RateLimited,
)
from lora_pipeline.backends.base import PodBackend, PodSpec, PodState, pod_name
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.testing.fake_runpod import FakeRunPod

CREATE = "createPod"
A40 = RunPodOffer(gpu_type="A40")
SECURE_A40 = RunPodOffer(gpu_type="A40", cloud_type="SECURE")
L40S = RunPodOffer(gpu_type="L40S", cloud_type="SECURE")
Make = Callable[..., RunPodBackend]


@pytest.fixture
def rest(make_backend: Make) -> Make:
    """``rest(*offers, **options)``: a REST backend whose status is never served from an old pod list."""

    def make(*offers: RunPodOffer, **options: object) -> RunPodBackend:
        options.setdefault("status_ttl", 0)
        return make_backend(*offers, transport="rest", **options)

    return make


def spec(job_id: str = "job1", attempt: int = 1, **fields: object) -> PodSpec:
    return PodSpec(job_id=job_id, attempt=attempt, name=pod_name(job_id, attempt), **fields)  # type: ignore[arg-type]


def tried(fake: FakeRunPod) -> list[tuple[str, str, list[str]]]:
    return [
        (c.input["gpu"]["id"], c.input["cloud"], c.input.get("dataCenterIds", []))  # type: ignore[index,union-attr]
        for c in fake.calls_to(CREATE)
    ]


def test_rest_is_the_default_transport_and_needs_no_sdk_calls(fake: FakeRunPod) -> None:
    backend = RunPodBackend(fake.api_key, [A40], sleep=lambda _: None)
    assert backend.transport == "rest" and isinstance(backend, PodBackend)
    handle = backend.launch(spec(gpu_type="A40"))
    assert {c.operation_type for c in fake.calls} == {"rest"}
    assert handle.cost_per_hour == fake.pod(handle.pod_id).cost_per_hr  # type: ignore[union-attr]


def test_unknown_transport_is_a_config_error_naming_the_choices(fake: FakeRunPod) -> None:
    with pytest.raises(ConfigError, match=r"transport='rest'.*'graphql'") as error:
        RunPodBackend(fake.api_key, transport="soap")
    assert error.value.env_names == ("LORA_PIPELINE_RUNPOD_TRANSPORT",)


def test_the_create_body_matches_the_spec_and_the_schema(fake: FakeRunPod, rest: Make) -> None:
    env = {"LORA_JOB_ID": "job1", "QUOTE": 'a "b"\nc'}
    handle = rest(SECURE_A40).launch(spec(gpu_type="A40", env=env, command=["bash", "-c", "run"], volume_gb=20))
    [create] = fake.calls_to(CREATE)
    body = create.input
    assert body["name"] == "lp-job1-1"  # type: ignore[index]
    assert (body["gpu"]["id"], body["gpu"]["count"]) == ("NVIDIA A40", 1)  # type: ignore[index]
    assert body["cloud"] == "SECURE" and body["disk"] == 40  # type: ignore[index]
    assert body["env"]["QUOTE"] == 'a "b"\nc'  # type: ignore[index]
    assert body["mounts"] == {"persistent": {"size": 20, "path": "/workspace"}}  # type: ignore[index]
    assert create.status == 201 and dict(fake.pod(handle.pod_id).env)["QUOTE"] == 'a "b"\nc'  # type: ignore[union-attr]


def test_candidates_follow_offer_order_then_price_and_skip_clouds_without_the_gpu(fake: FakeRunPod, rest: Make) -> None:
    fake.set_price("L40S", secure=0.9, community=None)
    fake.script(CREATE, ["capacity_error"] * 2)
    handle = rest(A40, RunPodOffer(gpu_type="L40S")).launch(spec())
    assert [(g, c) for g, c, _ in tried(fake)] == [
        ("NVIDIA A40", "COMMUNITY"),  # the cheaper cloud of the first offer first
        ("NVIDIA A40", "SECURE"),
        ("NVIDIA L40S", "SECURE"),  # L40S has no community price, so no community candidate
    ]
    assert handle.gpu_type == "L40S"


def test_catalog_stock_puts_data_centres_with_capacity_first(fake: FakeRunPod, rest: Make) -> None:
    fake.set_data_center_stock("A40", "SECURE", {"US-TX-3": 0, "EU-RO-1": 2})
    handle = rest(SECURE_A40).launch(spec(gpu_type="A40"))
    assert tried(fake) == [("NVIDIA A40", "SECURE", ["EU-RO-1"])]
    assert fake.pod(handle.pod_id).data_center_id == "EU-RO-1"  # type: ignore[union-attr]


def test_a_pinned_data_centre_without_capacity_is_a_400_then_capacity_error(fake: FakeRunPod, rest: Make) -> None:
    fake.set_data_center_stock("A40", "SECURE", {"US-TX-3": 0, "EU-RO-1": 2})
    offer = RunPodOffer(gpu_type="A40", cloud_type="SECURE", data_center_id="US-TX-3")
    with pytest.raises(CapacityError, match="no capacity for pod lp-job1-1") as error:
        rest(offer, capacity_rounds=2).launch(spec(gpu_type="A40"))
    assert [c.status for c in fake.calls_to(CREATE)] == [400, 400]
    assert error.value.suggestion and "add offers" in error.value.suggestion
    assert fake.pods() == []


def test_402_stops_at_once(fake: FakeRunPod, rest: Make) -> None:
    fake.script(CREATE, ["insufficient_balance"])
    with pytest.raises(InsufficientFunds) as error:
        rest(A40, L40S).launch(spec())
    assert len(fake.calls_to(CREATE)) == 1 and error.value.status == 402


def test_the_accounts_spend_limit_is_a_402_from_the_fake_itself() -> None:
    with FakeRunPod(spend_limit=0.1) as fake, fake.environment():
        backend = RunPodBackend(fake.api_key, [SECURE_A40], sleep=lambda _: None, status_ttl=0)
        with pytest.raises(InsufficientFunds, match="spending limit"):
            backend.launch(spec(gpu_type="A40"))
        assert [c.status for c in fake.calls_to(CREATE)] == [402]


def test_403_skips_the_candidate(fake: FakeRunPod, rest: Make) -> None:
    fake.forbid_pool("A40", "SECURE")
    handle = rest(SECURE_A40, L40S).launch(spec())
    assert [c.status for c in fake.calls_to(CREATE)] == [403, 201] and handle.gpu_type == "L40S"


def test_403_on_every_candidate_is_permission_denied(fake: FakeRunPod, rest: Make) -> None:
    fake.forbid_pool("A40", "SECURE")
    with pytest.raises(PermissionDenied, match="access denied"):
        rest(SECURE_A40, capacity_rounds=1).launch(spec())


def test_422_is_never_retried_and_names_each_violation(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40)
    with pytest.raises(BadRequest) as error:
        backend.create_pod(name="", image="img", gpu_type="A40")  # name has minLength 1
    assert error.value.status == 422 and "$.name" in str(error.value)
    assert len(fake.calls_to(CREATE)) == 1


def test_a_gpu_the_catalog_does_not_offer_in_the_cloud_is_not_tried(fake: FakeRunPod, rest: Make) -> None:
    fake.set_price("A40", secure=None, community=0.3)
    with pytest.raises(CapacityError, match="catalog lists none of the offered GPU types"):
        rest(SECURE_A40, capacity_rounds=1).launch(spec())
    assert fake.calls_to(CREATE) == []


def test_429_waits_retry_after_then_the_same_candidate_succeeds(
    fake: FakeRunPod, rest: Make, sleeps: list[float]
) -> None:
    fake.script(CREATE, ["http_429_json(3)"])
    handle = rest(SECURE_A40, L40S).launch(spec())
    assert [c.status for c in fake.calls_to(CREATE)] == [429, 201] and handle.gpu_type == "A40"
    assert 3.0 in sleeps


@pytest.mark.parametrize("fault", ["internal_error", "http_500_html", "drop_connection"])
def test_5xx_retries_the_same_candidate(fake: FakeRunPod, rest: Make, fault: str) -> None:
    fake.script(CREATE, [fault])
    handle = rest(SECURE_A40, L40S).launch(spec())
    assert [g for g, _, _ in tried(fake)] == ["NVIDIA A40", "NVIDIA A40"] and handle.gpu_type == "A40"


def test_a_create_whose_reply_was_lost_is_found_not_repeated(fake: FakeRunPod, rest: Make) -> None:
    fake.script(CREATE, ["drop_connection_after"])
    handle = rest(SECURE_A40).launch(spec())
    assert len(fake.calls_to(CREATE)) == 1 and [p.id for p in fake.pods()] == [handle.pod_id]


def test_launch_is_idempotent_by_name(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40)
    first, second = backend.launch(spec()), backend.launch(spec())
    assert first.pod_id == second.pod_id and len(fake.calls_to(CREATE)) == 1


def test_status_maps_rest_states_and_counts_container_restarts() -> None:
    with FakeRunPod(provision_delay=60, restart_delay=30) as fake, fake.environment():
        backend = RunPodBackend(fake.api_key, [SECURE_A40], sleep=lambda _: None, status_ttl=0)
        handle = backend.launch(spec())
        assert backend.status(handle).state is PodState.PROVISIONING
        fake.advance(60)
        running = backend.status(handle)
        assert (running.state, running.name, running.restarts) == (PodState.RUNNING, "lp-job1-1", 0)
        fake.container_exit(handle.pod_id, 1)
        restarting = backend.status(handle)
        assert restarting.state is PodState.PROVISIONING and restarting.detail == (
            "RunPod status STARTING (container restarted 1x)"
        )
        fake.advance(30)
        assert backend.status(handle).state is PodState.RUNNING and backend.status(handle).restarts == 1
        fake.state.stop(handle.pod_id)
        assert backend.status(handle).state is PodState.EXITED


def test_status_shares_one_pod_list_between_calls(fake: FakeRunPod, rest: Make) -> None:
    launcher = rest(SECURE_A40)
    handles = [launcher.launch(spec(f"job{i}")) for i in range(3)]
    backend = rest(status_ttl=60)  # e.g. the service's sync loop, which did not launch them
    before = len(fake.calls)
    for _ in range(5):
        for handle in handles:
            assert backend.status(handle).state is PodState.RUNNING
    assert [c.operation for c in fake.calls[before:]] == ["listPods"]


def test_a_pod_missing_from_the_list_is_checked_before_it_is_called_gone(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40, status_ttl=60)
    old = backend.launch(spec("old"))
    backend.status(old)  # the list is now cached
    new = rest(SECURE_A40).launch(spec("new"))  # created by another client: not in our list
    assert backend.status(new).state is PodState.RUNNING
    fake.state.terminate(old.pod_id)
    assert backend.status(old).state is PodState.RUNNING  # still inside the list's ttl: the heartbeat decides
    assert rest(SECURE_A40).status(old).state is PodState.TERMINATED


def test_terminate_is_idempotent(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40)
    handle = backend.launch(spec())
    backend.terminate(handle)
    backend.terminate(handle)  # this backend knows the pod is gone: no second request
    assert fake.pods() == [] and backend.status(handle).state is PodState.TERMINATED
    assert [c.status for c in fake.calls_to("deletePod")] == [204]
    rest(SECURE_A40).terminate(handle)  # another client: RunPod's 404 counts as done
    assert [c.status for c in fake.calls_to("deletePod")] == [204, 404]


def test_pod_scoped_key_reads_and_terminates_its_own_pod_only(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40)
    own, other = backend.launch(spec("own")), backend.launch(spec("other"))
    pod_backend = rest(api_key=fake.pod_env(own.pod_id)["RUNPOD_API_KEY"])
    with pytest.raises(PermissionDenied):
        pod_backend.terminate(other)
    with pytest.raises(PermissionDenied):
        pod_backend.list_pods()
    assert pod_backend.status(own).state is PodState.RUNNING
    pod_backend.terminate(own)
    assert [p.id for p in fake.pods()] == [other.pod_id]


def test_reap_and_list_work_over_rest(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40)
    keep, drop = backend.launch(spec("keep")), backend.launch(spec("drop"))
    backend.create_pod(name="not-ours", image="img", gpu_type="A40")
    assert {h.name for h in backend.list_pods()} == {keep.name, drop.name}
    reaped = backend.reap(lambda job_id, attempt, handle: job_id == "drop")
    assert [h.pod_id for h in reaped] == [drop.pod_id] and drop.pod_id not in {p.id for p in fake.pods()}


def test_price_is_the_lowest_catalog_rate(fake: FakeRunPod, rest: Make) -> None:
    fake.set_price("A40", secure=0.5, community=0.31)
    assert rest().price("A40") == 0.31


def test_logs_come_from_the_sse_stream(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40)
    handle = backend.launch(spec())
    for number in range(5):
        fake.append_log(handle.pod_id, f"step {number}")
    assert backend.logs is not None and backend.logs(handle, tail=3) == "step 2\nstep 3\nstep 4"
    assert make_graphql_logs_absent(fake)


def make_graphql_logs_absent(fake: FakeRunPod) -> bool:
    return RunPodBackend(fake.api_key, transport="graphql").logs is None


def test_billing_reconciles_with_the_fakes_bill(fake: FakeRunPod, rest: Make) -> None:
    backend = rest(SECURE_A40)
    handle = backend.launch(spec())
    fake.advance(1800)
    billed = backend.billed_usd(handle, fake.now - timedelta(hours=1))
    assert billed == pytest.approx(fake.pod(handle.pod_id).billed_usd) and billed == pytest.approx(0.22)  # type: ignore[union-attr]


def test_wrong_key_is_an_authentication_error_without_retries(fake: FakeRunPod, rest: Make) -> None:
    with pytest.raises(AuthenticationError):
        rest(api_key="rpa_WRONG").list_pods()
    assert len(fake.calls) == 1


def test_rate_limited_reads_are_retried_after_retry_after(fake: FakeRunPod, rest: Make, sleeps: list[float]) -> None:
    fake.script("listPods", ["http_429_text(4)", "http_429_json(2)"])
    assert rest().list_pods() == []
    assert sleeps[:2] == [4.0, 2.0]


def test_rate_limit_that_never_lifts_surfaces_typed(fake: FakeRunPod, rest: Make) -> None:
    fake.script("listPods", ["http_429_json(1)"] * 5)
    with pytest.raises(RateLimited):
        rest(max_attempts=2).list_pods()


def test_graphql_switched_off_fails_at_once_with_the_retirement_message(fake: FakeRunPod, make_backend: Make) -> None:
    fake.retire_graphql()
    graphql = make_backend(SECURE_A40)
    with pytest.raises(APIRetired) as error:
        graphql.launch(spec())
    assert error.value.status == 410 and "GraphQL API has been retired" in str(error.value)
    assert "transport='rest'" in str(error.value) and "unreadable" not in str(error.value)
    assert len(fake.calls) == 0, "a 410 is answered before the GraphQL gateway and never retried"
    rest_handle = RunPodBackend(fake.api_key, [SECURE_A40], sleep=lambda _: None).launch(spec())
    assert fake.pod(rest_handle.pod_id) is not None


@pytest.mark.parametrize("cloud", ["secure", "SECURE } evil { ", "ALL2"])
def test_a_made_up_cloud_is_refused_before_sending(fake: FakeRunPod, rest: Make, cloud: str) -> None:
    with pytest.raises(ValueError, match="is not a valid CloudType"):
        rest().create_pod(name="n", image="img", gpu_type="A40", cloud_type=cloud)
    assert fake.calls_to(CREATE) == []


def test_direct_create_with_all_leaves_the_cloud_to_runpods_default(fake: FakeRunPod, rest: Make) -> None:
    pod = rest().create_pod(name="n", image="img", gpu_type="A40", data_center_id="EU-RO-1")
    [create] = fake.calls_to(CREATE)
    assert "cloud" not in create.input and create.input["dataCenterIds"] == ["EU-RO-1"]  # type: ignore[operator,index]
    assert pod["cloud"] == "SECURE" and pod["dataCenterId"] == "EU-RO-1"


def test_data_centres_come_with_gpu_stock(fake: FakeRunPod, rest: Make) -> None:
    fake.set_data_center_stock("A40", "SECURE", {"EU-RO-1": 3})
    fake.set_stock("A40", "COMMUNITY", 0)
    assert rest()._rest is not None
    centres = {dc["id"]: dc for dc in rest()._rest.transport.data_centers()}  # type: ignore[union-attr]
    a40 = {dc: next(g for g in centres[dc]["gpuAvailability"] if g["id"] == "NVIDIA A40") for dc in centres}
    assert a40["EU-RO-1"]["availability"] == "MEDIUM" and a40["US-TX-3"]["availability"] == "NONE"
    assert centres["EU-RO-1"]["region"] == "EUROPE"


def test_rest_works_without_the_runpod_package(fake: FakeRunPod) -> None:
    import subprocess
    import sys

    program = (
        "import sys; sys.modules['runpod'] = None\n"  # any `import runpod` now fails
        "from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer\n"
        "b = RunPodBackend(sys.argv[1], [RunPodOffer(gpu_type='A40')], sleep=lambda _: None)\n"
        "print(b.create_pod(name='no-sdk', image='img', gpu_type='A40')['id'], b.price('A40'))\n"
    )
    env = {"RUNPOD_API_BASE_URL": fake.url, "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", program, fake.api_key], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert [p.name for p in fake.pods()] == ["no-sdk"]
