"""Env values and docker args reach RunPod exactly as given; the raw SDK's interpolation is pinned as a hazard."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import runpod
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_pipeline._exceptions import ConfigError
from lora_pipeline.backends import _runpod_graphql as gql
from lora_pipeline.backends.runpod import RunPodBackend
from lora_pipeline.testing.fake_runpod import FakeRunPod

HOSTILE_VALUES = {
    "double quotes": 'he said "hi"',
    "json config": '{"lr": 0.0001, "name": "x"}',
    "backslashes": "C:\\path\\to\\file \\n not a newline",
    "newlines and tabs": "line1\nline2\r\n\tend",
    "braces": "}{ ) ( ] [",
    "unicode": "naïve café 😀 中文 \u2028 \u00a0",
    "triple quotes": '"""block""" and \\"""',
    "unicode escape text": "\\u0041 stays six characters",
    "injection": 'x" }, { key: "EVIL", value: "1',
    "control characters": "bell\x07 escape\x1b delete\x7f",
    "empty": "",
}


def _sent(fake: FakeRunPod) -> dict[str, object]:
    create = fake.calls_to("podFindAndDeployOnDemand")[-1]
    assert create.status == 200 and create.input is not None
    return create.input


@pytest.mark.parametrize("value", list(HOSTILE_VALUES.values()), ids=list(HOSTILE_VALUES))
def test_env_value_and_docker_args_arrive_exactly(
    fake: FakeRunPod, make_backend: Callable[..., RunPodBackend], value: str
) -> None:
    backend = make_backend()
    pod = backend.create_pod(
        name=f"n {value}", image="img", gpu_type="A40", env={"A": value, "B": "plain"}, docker_args=value
    )
    sent = _sent(fake)
    assert sent["env"] == [{"key": "A", "value": value}, {"key": "B", "value": "plain"}]
    assert sent["dockerArgs"] == value and sent["name"] == f"n {value}"
    assert pod["env"] == [f"A={value}", "B=plain"]
    container_env = fake.pod_env(pod["id"])
    assert container_env["A"] == value and "EVIL" not in container_env


@pytest.fixture(scope="module")
def shared_fake() -> Iterator[FakeRunPod]:
    with FakeRunPod(default_stock=10_000, spend_limit=1e9, balance=1e9) as server, server.environment():
        yield server


_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)
_KEYS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(env=st.dictionaries(_KEYS, _TEXT, max_size=6), docker_args=_TEXT)
def test_any_env_and_docker_args_are_delivered_byte_for_byte(
    shared_fake: FakeRunPod, env: dict[str, str], docker_args: str
) -> None:
    backend = RunPodBackend(shared_fake.api_key, timeout=5, sleep=lambda _: None, transport="graphql")
    pod = backend.create_pod(name="prop", image="img", gpu_type="A40", env=env, docker_args=docker_args)
    sent = _sent(shared_fake)
    assert sent["env"] == [{"key": k, "value": v} for k, v in env.items()]
    assert sent["dockerArgs"] == docker_args
    assert [(k, v) for k, v in shared_fake.state.pods[pod["id"]].env] == list(env.items())


def test_raw_sdk_create_pod_breaks_on_a_quoted_env_value(fake: FakeRunPod) -> None:
    """The hazard this backend exists to avoid: runpod.create_pod pastes env values into the query raw."""
    with pytest.raises(runpod.error.QueryError, match="Syntax Error"):
        runpod.create_pod("raw", "img", "NVIDIA A40", env={"CFG": '{"lr": 0.0001}'})
    assert fake.calls[-1].status == 400
    assert fake.calls[-1].response["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"


def test_raw_sdk_create_pod_lets_a_value_inject_env_entries(fake: FakeRunPod) -> None:
    pod = runpod.create_pod("raw", "img", "NVIDIA A40", env={"A": 'x" }, { key: "EVIL", value: "1'})
    assert pod["env"] == ["A=x", "EVIL=1"]


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"1BAD": "x"}, "not a valid variable name"),
        ({"WITH-DASH": "x"}, "not a valid variable name"),
        ({"A": "nul\x00inside"}, "NUL"),
        ({"A": "\ud800"}, "not valid Unicode"),
        ({f"K{i}": "v" for i in range(51)}, "at most 50"),
    ],
)
def test_env_that_runpod_cannot_hold_is_refused_before_sending(
    fake: FakeRunPod, make_backend: Callable[..., RunPodBackend], env: dict[str, str], needle: str
) -> None:
    with pytest.raises(ConfigError, match=needle):
        make_backend().create_pod(name="n", image="img", gpu_type="A40", env=env)
    assert fake.calls_to("podFindAndDeployOnDemand") == []


def test_fifty_env_vars_are_allowed() -> None:
    assert len(gql.env_input({f"K{i}": "v" for i in range(50)})) == 50


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (0.5, "0.5"),
        ('a"b', '"a\\"b"'),
        (gql.EnumValue("SECURE"), "SECURE"),
        ({"key": "K", "value": "V"}, '{key: "K", value: "V"}'),
        (["12.4", "12.8"], '["12.4", "12.8"]'),
    ],
)
def test_literal(value: object, expected: str) -> None:
    assert gql.literal(value) == expected


@pytest.mark.parametrize("bad", [{"bad key": 1}, gql.EnumValue("NOT AN ENUM"), float("nan"), object()])
def test_literal_refuses_what_graphql_cannot_express(bad: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        gql.literal(bad)
