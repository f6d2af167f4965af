"""``deploy`` refuses a QLoRA job on a backend without CUDA before the job moves; RunPod's GPU pods take it."""

from __future__ import annotations

from typing import Any

import pytest

from lora_pipeline import ConfigError
from lora_pipeline.backends.runpod import RunPodBackend, RunPodOffer
from lora_pipeline.types.jobs import JobStatus

torch = pytest.importorskip("torch")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: LocalBackend can run QLoRA")
def test_a_quantized_job_is_refused_on_a_local_backend_without_cuda(owner: Any, local_backend: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", hyperparameters={"quantization": "4bit"})

    with pytest.raises(ConfigError, match=r"needs a CUDA GPU.*deploy it to RunPod") as refused:
        lp.jobs.deploy(job.id, backend=local_backend)

    assert refused.value.argument == "hyperparameters.quantization"
    assert lp.jobs.retrieve(job.id).status is JobStatus.CREATED
    assert local_backend.list_pods() == []  # nothing was launched


def test_a_quantized_job_launches_on_runpod(owner: Any, fake_runpod: Any) -> None:
    _, lp, dataset = owner
    job = lp.jobs.create(dataset.id, base_model="tiny", gpu_type="A40", hyperparameters={"quantization": "4bit"})
    backend = RunPodBackend(
        fake_runpod.api_key, [RunPodOffer(gpu_type="A40")], sleep=lambda _: None, timeout=5, transport="graphql"
    )

    job = lp.jobs.deploy(job.id, backend=backend)

    assert job.status is JobStatus.PROVISIONING
    assert job.hyperparameters["quantization"] == "4bit"
