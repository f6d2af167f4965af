"""What reaches RunPod is exactly what the caller passed, or a clear refusal before anything is sent.

The byte-for-byte property for env *values* and docker args already lives in
tests/unit/runpod/test_runpod_escaping.py (``test_any_env_and_docker_args_are_delivered_byte_for_byte``, with
hostile examples and the raw SDK's injection pinned as the hazard); it is not repeated here. This module adds
what it leaves out, against the same fake RunPod GraphQL server (the real runpod SDK on the wire):

- env *keys* of any text: a valid variable name is delivered as is, anything else (``=``, spaces, quotes,
  braces, newlines, unicode, a leading digit) is a ``ConfigError`` naming the key, with nothing sent;
- pod names, image names and data-centre ids with GraphQL-breaking text (quotes, braces, backslashes,
  ``\"\"\"``, newlines, injection attempts) arrive byte for byte and add no field or env entry;
- the job path (``launch`` with a ``PodSpec``): command arguments become ``dockerArgs`` JSON that decodes to
  the very same argv, and the spec's env arrives exactly;
- NUL bytes in any string field, an unknown GPU type and a made-up cloud type are refused before sending.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lora_pipeline import ConfigError
from lora_pipeline.backends.base import PodSpec
from lora_pipeline.backends.runpod import RunPodBackend
from lora_pipeline.testing.fake_runpod import FakeRunPod

VALID_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
INJECTIONS = [
    'x" }, { key: "EVIL", value: "1',
    '", imageName: "evil/image", name: "',
    '") { id } podTerminate(input: {podId: "victim"}) { id',
    '"""',
    "\\",
    '\\"',
    "\\u0022",
    "}}}}",
    "$env",
    "# comment\nname: evil",
    "\r\n\t",
    "😀 \u2028 \u00a0",
]
HOSTILE = st.one_of(
    st.sampled_from(INJECTIONS),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40),
)
NOT_EMPTY_HOSTILE = HOSTILE.filter(bool)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeRunPod]:
    with FakeRunPod(default_stock=10_000, spend_limit=1e9, balance=1e9) as server, server.environment():
        yield server


@pytest.fixture(scope="module")
def backend(fake: FakeRunPod) -> RunPodBackend:
    # The GraphQL wire, where text is spliced into queries; REST sends JSON (tests/unit/runpod/test_runpod_rest_*).
    return RunPodBackend(fake.api_key, timeout=5, sleep=lambda _: None, transport="graphql")


def deploys(fake: FakeRunPod) -> int:
    return len(fake.calls_to("podFindAndDeployOnDemand"))


KEY_LIKE = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,11}", fullmatch=True)


@SETTINGS
@given(keys=st.lists(st.one_of(KEY_LIKE, KEY_LIKE, st.text(max_size=12)), min_size=1, max_size=4, unique=True))
def test_env_keys_are_delivered_as_given_or_refused_by_name(
    fake: FakeRunPod, backend: RunPodBackend, keys: list[str]
) -> None:
    env = {key: f"value of {i}" for i, key in enumerate(keys)}
    sent_before = deploys(fake)
    bad = [key for key in keys if not VALID_KEY.match(key)]
    if bad:
        with pytest.raises(ConfigError) as refused:
            backend.create_pod(name="keys", image="img", gpu_type="A40", env=env)
        assert f"env key {bad[0]!r} is not a valid variable name" in str(refused.value)
        assert refused.value.argument == "env"
        assert deploys(fake) == sent_before, "nothing may be sent when the env is refused"
        return
    pod = backend.create_pod(name="keys", image="img", gpu_type="A40", env=env)
    assert fake.calls_to("podFindAndDeployOnDemand")[-1].input["env"] == [  # type: ignore[index]
        {"key": k, "value": v} for k, v in env.items()
    ]
    assert fake.pod(pod["id"]).env == list(env.items())  # type: ignore[union-attr]


@SETTINGS
@given(name=NOT_EMPTY_HOSTILE, image=NOT_EMPTY_HOSTILE, data_center=NOT_EMPTY_HOSTILE)
def test_names_images_and_data_centres_arrive_byte_for_byte(
    fake: FakeRunPod, backend: RunPodBackend, name: str, image: str, data_center: str
) -> None:
    pod = backend.create_pod(name=name, image=image, gpu_type="A40", env={"ONLY": "one"}, data_center_id=data_center)
    sent = fake.calls_to("podFindAndDeployOnDemand")[-1].input
    assert sent is not None
    assert (sent["name"], sent["imageName"], sent["dataCenterId"]) == (name, image, data_center)
    assert sent["env"] == [{"key": "ONLY", "value": "one"}], "text in other fields must not add env entries"
    stored = fake.pod(pod["id"])
    assert stored is not None and (stored.name, stored.image_name) == (name, image)
    assert stored.env == [("ONLY", "one")] and stored.data_center_id == data_center


@SETTINGS
@given(
    command=st.lists(HOSTILE, min_size=1, max_size=5),
    env=st.dictionaries(KEY_LIKE, HOSTILE, max_size=5),
)
def test_a_launched_spec_reaches_the_pod_exactly(
    fake: FakeRunPod, backend: RunPodBackend, command: list[str], env: dict[str, str]
) -> None:
    spec = PodSpec(job_id="j", name=f"lp-{uuid.uuid4()}-1", image="img", gpu_type="A40", env=env, command=command)
    handle = backend.launch(spec)
    sent = fake.calls_to("podFindAndDeployOnDemand")[-1].input
    assert sent is not None and sent["name"] == spec.name
    assert json.loads(sent["dockerArgs"]) == {"cmd": command[-1:], "entrypoint": command[:-1]}
    assert sent["env"] == [{"key": k, "value": v} for k, v in env.items()]
    container_env = fake.pod_env(handle.pod_id)
    assert {k: container_env[k] for k in env} == env


@pytest.mark.parametrize("field", ["name", "image", "docker_args", "ports", "env value"])
def test_a_nul_byte_anywhere_is_refused_before_sending(fake: FakeRunPod, backend: RunPodBackend, field: str) -> None:
    arguments: dict[str, object] = {"name": "n", "image": "img", "gpu_type": "A40"}
    if field == "env value":
        arguments["env"] = {"A": "x\x00y"}
    else:
        arguments[field] = "x\x00y"
    sent_before = deploys(fake)
    with pytest.raises(ConfigError, match="NUL"):
        backend.create_pod(**arguments)  # type: ignore[arg-type]
    assert deploys(fake) == sent_before


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"gpu_type": 'A40", gpuCount: 8, name: "x'}, ConfigError, "unknown gpu_type"),
        ({"gpu_type": "A40", "cloud_type": "SECURE } evil { "}, ValueError, "is not a valid CloudType"),
        ({"gpu_type": "A40", "cloud_type": "secure"}, ValueError, "is not a valid CloudType"),
    ],
)
def test_made_up_gpu_and_cloud_types_are_refused_before_sending(
    fake: FakeRunPod, backend: RunPodBackend, arguments: dict[str, str], error: type[Exception], message: str
) -> None:
    sent_before = deploys(fake)
    with pytest.raises(error, match=message):
        backend.create_pod(name="n", image="img", **arguments)  # type: ignore[arg-type]
    assert deploys(fake) == sent_before
