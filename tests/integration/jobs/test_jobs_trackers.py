"""``report_to`` trackers' credentials reach a RunPod pod as secret references, never as plain values."""

from __future__ import annotations

from typing import Any

import pytest

from lora_pipeline import ConfigError
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.types.jobs import JobStatus


def _backend(fake: Any) -> RunPodBackend:
    return RunPodBackend(
        fake.api_key, [RunPodOffer(gpu_type="A40")], sleep=lambda _: None, timeout=5, transport="graphql"
    )


@pytest.mark.parametrize("name", ["WANDB_API_KEY", "MLFLOW_TRACKING_TOKEN"])
def test_a_tracker_credential_as_a_plain_value_is_refused_before_the_job_moves(
    owner: Any, fake_runpod: Any, name: str
) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40", hyperparameters={"report_to": ["wandb"]})

    with pytest.raises(ConfigError, match=rf"{name}.*secrets=") as refused:
        lp.jobs.deploy(job.id, backend=_backend(fake_runpod), env={name: "value-that-must-not-leak"})

    assert "value-that-must-not-leak" not in str(refused.value)
    assert lp.jobs.retrieve(job.id).status is JobStatus.CREATED
    assert fake_runpod.calls == []


def test_a_tracker_credential_as_a_secret_is_sent_as_a_reference(owner: Any, fake_runpod: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40", hyperparameters={"report_to": ["wandb"]})

    lp.jobs.deploy(job.id, backend=_backend(fake_runpod), secrets={"WANDB_API_KEY": "wandb_key"})

    [create] = fake_runpod.calls_to("podFindAndDeployOnDemand")
    sent = {e["key"]: e["value"] for e in create.input["env"]}
    assert sent["WANDB_API_KEY"] == "{{ RUNPOD_SECRET_wandb_key }}"
    assert lp.jobs.retrieve(job.id).hyperparameters["report_to"] == ["wandb"]
