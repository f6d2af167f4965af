"""The fake's schema accepts everything the pinned SDK can send, and refuses what the real API refuses."""

from __future__ import annotations

import json

import pytest
import requests
import runpod
from graphql import parse, validate
from runpod.api.mutations import pods as pod_mutations
from runpod.api.mutations import user as user_mutations
from runpod.api.queries import endpoints as endpoint_queries
from runpod.api.queries import gpus as gpu_queries
from runpod.api.queries import pods as pod_queries
from runpod.api.queries import user as user_queries

from lora_pipeline.backends import _runpod_graphql as gql
from lora_pipeline.testing.fake_runpod import SCHEMA, FakeRunPod

SDK_QUERIES = {
    "gpu pod, defaults": pod_mutations.generate_pod_deployment_mutation("n", "img", "NVIDIA A40"),
    "gpu pod, every option": pod_mutations.generate_pod_deployment_mutation(
        "n",
        "img",
        gpu_type_id="NVIDIA A40",
        cloud_type="SECURE",
        support_public_ip=False,
        start_ssh=True,
        data_center_id="EU-RO-1",
        country_code="RO",
        gpu_count=2,
        volume_in_gb=20,
        container_disk_in_gb=30,
        min_vcpu_count=4,
        min_memory_in_gb=16,
        docker_args="bash -c 'sleep 1'",
        ports="8888/http, 22/tcp",
        volume_mount_path="/workspace",
        env={"A": "1", "B": "two"},
        template_id="tpl",
        network_volume_id="vol",
        allowed_cuda_versions=["12.4", "12.8"],
        min_download=100,
        min_upload=50,
    ),
    "cpu pod": pod_mutations.generate_pod_deployment_mutation("n", "img", instance_id="cpu3c-2-4", env={"A": "1"}),
    "stop": pod_mutations.generate_pod_stop_mutation("abc"),
    "resume": pod_mutations.generate_pod_resume_mutation("abc", 1),
    "terminate": pod_mutations.generate_pod_terminate_mutation("abc"),
    "my pods": pod_queries.QUERY_POD,
    "one pod": pod_queries.generate_pod_query("abc"),
    "gpu types": gpu_queries.QUERY_GPU_TYPES,
    "one gpu type": gpu_queries.generate_gpu_query("NVIDIA A40", 2),
    "user": user_queries.QUERY_USER,
    "endpoints": endpoint_queries.QUERY_ENDPOINT,
    "user settings": user_mutations.generate_user_mutation("ssh-ed25519 AAAA\nssh-rsa BBBB"),
}

OUR_QUERIES = {
    "deploy": gql.deploy_mutation(
        {
            **gql.deploy_input(
                name="lp-x-1",
                image="img",
                env={"A": "1"},
                docker_args="",
                container_disk_gb=40,
                volume_gb=10,
                ports="22/tcp",
            ),
            **gql.offer_input("NVIDIA A40", "SECURE", None),
        }
    ),
    "pod": gql.pod_query("abc"),
    "my pods": gql.MY_PODS_QUERY,
    "terminate": gql.terminate_mutation("abc"),
    "price": gql.gpu_price_query("NVIDIA A40"),
}


def test_runpod_sdk_is_the_pinned_graphql_version() -> None:
    """runpod 1.13+ talks REST v2 (research §0.5): the fake and the backend would silently go unused."""
    major, minor = (int(part) for part in runpod.__version__.split(".")[:2])
    assert (major, minor) == (1, 12), f"runpod {runpod.__version__} is outside >=1.12,<1.13; re-check research §1"


@pytest.mark.parametrize("query", list(SDK_QUERIES.values()), ids=list(SDK_QUERIES))
def test_every_sdk_query_parses_and_validates(query: str) -> None:
    assert validate(SCHEMA, parse(query)) == []


@pytest.mark.parametrize("query", list(OUR_QUERIES.values()), ids=list(OUR_QUERIES))
def test_every_backend_query_parses_and_validates(query: str) -> None:
    assert validate(SCHEMA, parse(query)) == []


def _post(fake: FakeRunPod, payload: object, *, key: str | None = None, path: str = "/graphql") -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.post(fake.url + path, data=json.dumps(payload), headers=headers, timeout=5)


def test_unknown_input_field_is_a_400_validation_failure(fake: FakeRunPod) -> None:
    reply = _post(
        fake, {"query": "mutation { podFindAndDeployOnDemand(input: {interruptible: true}) { id } }"}, key=fake.api_key
    )
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "interruptible" in reply.json()["errors"][0]["message"]


def test_syntax_error_is_a_400_parse_failure(fake: FakeRunPod) -> None:
    reply = _post(fake, {"query": 'mutation { podTerminate(input: {podId: "a"b"}) }'}, key=fake.api_key)
    assert reply.status_code == 400
    assert reply.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


@pytest.mark.parametrize("key", [None, "rpa_NOT_A_KEY_OF_THIS_ACCOUNT"])
def test_missing_or_unknown_key_is_401(fake: FakeRunPod, key: str | None) -> None:
    assert _post(fake, {"query": "{ myself { id } }"}, key=key).status_code == 401


def test_key_in_query_parameter_and_variables_are_accepted(fake: FakeRunPod) -> None:
    payload = {
        "query": "query One($id: String!) { pod(input: {podId: $id}) { id } }",
        "variables": {"id": "nope"},
        "operationName": "One",
    }
    reply = requests.post(f"{fake.url}/graphql?api_key={fake.api_key}", data=json.dumps(payload), timeout=5)
    assert reply.status_code == 200 and reply.json() == {"data": {"pod": None}}
    assert fake.calls[-1].operation == "pod" and fake.calls[-1].input == {"podId": "nope"}


def test_only_post_graphql_is_served(fake: FakeRunPod) -> None:
    assert _post(fake, {"query": "{ myself { id } }"}, key=fake.api_key, path="/v1/pods").status_code == 404
    assert requests.get(fake.url + "/graphql", timeout=5).status_code == 405


def test_environment_helper_restores_the_previous_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNPOD_API_BASE_URL", "https://example.invalid")
    with FakeRunPod() as server:
        with server.environment():
            import os

            assert os.environ["RUNPOD_API_BASE_URL"] == server.url
        assert os.environ["RUNPOD_API_BASE_URL"] == "https://example.invalid"
