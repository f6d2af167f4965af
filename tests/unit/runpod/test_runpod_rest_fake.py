"""The fake's REST v2 against RunPod's published OpenAPI document: request validation and reply shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from lora_pipeline.testing.fake_runpod import FakeRunPod
from lora_pipeline.testing.fake_runpod.rest_schema import openapi_document, schema_errors

GPU_POD = {"name": "p", "image": "runpod/pytorch:2.4.0", "gpu": {"id": "NVIDIA A40", "count": 1}, "cloud": "SECURE"}


def call(fake: FakeRunPod, method: str, path: str, *, key: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or fake.api_key}"}
    return httpx.request(method, fake.url + path, headers=headers, timeout=5, **kwargs)


def test_the_schema_copy_is_runpods_v2_document() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1") and document["info"]["version"] == "2.0.0"
    assert {"/v2/pods", "/v2/pods/{id}/action", "/v2/catalog/gpus", "/v2/billing/pods"} <= set(document["paths"])


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({**GPU_POD, "bogus": 1}, "$"),
        ({**GPU_POD, "gpu": {"id": "NVIDIA A40", "gpuCount": 1}}, "$.gpu"),
        ({**GPU_POD, "terminateAfter": "2027-01-01T00:00:00Z"}, "$"),  # GraphQL had it; REST v2 does not
        ({**GPU_POD, "cloud": "ALL"}, "$.cloud"),
        ({**GPU_POD, "env": {"A": 1}}, "$.env.A"),
    ],
    ids=["unknown top-level field", "unknown gpu field", "graphql-only field", "bad enum", "non-string env"],
)
def test_a_body_outside_the_schema_is_a_422_listing_each_violation(fake: FakeRunPod, body: Any, where: str) -> None:
    reply = call(fake, "POST", "/v2/pods", json=body)
    problem = reply.json()
    assert reply.status_code == 422 and reply.headers["content-type"] == "application/problem+json"
    assert problem["title"] == "Unprocessable Entity" and problem["status"] == 422
    assert any(error.startswith(where + ":") for error in problem["errors"]), problem["errors"]
    assert fake.pods() == []


def test_a_missing_image_without_a_template_is_refused() -> None:
    assert schema_errors("CreatePodRequest", {"name": "p", "gpu": {"id": "x"}}) == ["$: 'image' is a required property"]
    assert schema_errors("CreatePodRequest", {"name": "p", "templateId": "t", "gpu": {"id": "x"}}) == []


def test_replies_match_the_documented_response_schemas(fake: FakeRunPod) -> None:
    created = call(fake, "POST", "/v2/pods", json={**GPU_POD, "env": {"A": "1"}, "ports": ["22/tcp"]})
    assert created.status_code == 201 and schema_errors("Pod", created.json()) == []
    pod_id = created.json()["id"]
    fake.advance(600)
    replies = {
        "ListPodsResponse": call(fake, "GET", "/v2/pods"),
        "Pod": call(fake, "GET", f"/v2/pods/{pod_id}"),
        "ListGpuTypesResponse": call(fake, "GET", "/v2/catalog/gpus?include=AVAILABILITY&product=POD"),
        "ListDataCentersResponse": call(fake, "GET", "/v2/catalog/datacenters?include=GPU_AVAILABILITY"),
        "ListPodBillingResponse": call(fake, "GET", f"/v2/billing/pods?podId={pod_id}"),
    }
    for schema, reply in replies.items():
        assert reply.status_code == 200 and schema_errors(schema, reply.json()) == [], schema
        assert reply.headers["ratelimit-policy"] and reply.headers["ratelimit"]
    stopped = call(fake, "POST", f"/v2/pods/{pod_id}/action", json={"action": "stop"})
    assert stopped.json()["status"] == "EXITED" and stopped.json()["actions"] == ["start", "terminate"]
    assert schema_errors("Pod", stopped.json()) == []


def test_errors_are_problem_documents(fake: FakeRunPod) -> None:
    pod_id = call(fake, "POST", "/v2/pods", json=GPU_POD).json()["id"]
    replies = [
        (401, call(fake, "GET", "/v2/pods", key="rpa_WRONG")),
        (404, call(fake, "GET", "/v2/pods/nosuchpod")),
        (404, call(fake, "GET", "/v2/nowhere")),
        (405, call(fake, "PUT", "/v2/pods")),
        (400, call(fake, "GET", "/v2/catalog/gpus?include=AVAILABILITY")),  # product is required with include
        (422, call(fake, "POST", f"/v2/pods/{pod_id}/action", json={"action": "reset"})),
    ]
    for status, reply in replies:
        assert reply.status_code == status and schema_errors("ErrorResponse", reply.json()) == [], reply.text


def test_actions_follow_the_documented_status_table(fake: FakeRunPod) -> None:
    pod_id = call(fake, "POST", "/v2/pods", json=GPU_POD).json()["id"]
    assert call(fake, "POST", f"/v2/pods/{pod_id}/action", json={"action": "start"}).status_code == 409
    assert call(fake, "POST", f"/v2/pods/{pod_id}/action", json={"action": "restart"}).json()["status"] == "RUNNING"
    assert call(fake, "POST", f"/v2/pods/{pod_id}/action", json={"action": "terminate"}).status_code == 204
    assert call(fake, "GET", f"/v2/pods/{pod_id}").status_code == 404


def test_capacity_is_per_data_centre(fake: FakeRunPod) -> None:
    fake.set_data_center_stock("A40", "SECURE", {"EU-RO-1": 1})
    pinned = {**GPU_POD, "dataCenterIds": ["US-TX-3"]}
    assert call(fake, "POST", "/v2/pods", json=pinned).status_code == 400
    placed = call(fake, "POST", "/v2/pods", json={**GPU_POD, "dataCenterIds": ["US-TX-3", "EU-RO-1"]})
    assert placed.status_code == 201 and placed.json()["dataCenterId"] == "EU-RO-1"
    assert call(fake, "POST", "/v2/pods", json=GPU_POD).status_code == 400  # the one GPU is taken
    gpus = call(fake, "GET", "/v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=SECURE").json()["gpus"]
    a40 = next(g for g in gpus if g["id"] == "NVIDIA A40")
    assert a40["availability"] == "NONE" and "dataCenters" not in a40


def test_graphql_can_be_switched_off_with_410(fake: FakeRunPod) -> None:
    fake.retire_graphql()
    reply = call(fake, "POST", "/graphql", json={"query": "query { myself { id } }"})
    assert reply.status_code == 410 and reply.json()["title"] == "Gone"
    assert call(fake, "GET", "/v2/pods").status_code == 200
    fake.retire_graphql(False)
    assert call(fake, "POST", "/graphql", json={"query": "query { myself { id } }"}).status_code == 200
