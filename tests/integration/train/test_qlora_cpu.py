"""QLoRA on a machine without CUDA is refused with the fix, before a weight is read."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lora_pipeline._exceptions import ConfigError
from lora_pipeline.presets import resolve_hyperparameters
from lora_pipeline.train import train_lora


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: QLoRA is allowed here")
@pytest.mark.parametrize("quantization", ["4bit", "8bit"])
def test_quantization_without_cuda_is_refused_before_loading(
    quantization: str, sample_dataset: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="needs a CUDA GPU") as refused:
        train_lora(
            base_model=tmp_path / "never-read",  # not even the missing model is looked at first
            dataset_path=sample_dataset,
            output_dir=tmp_path / "out",
            hyperparameters=resolve_hyperparameters("balanced", {"quantization": quantization}),
        )

    assert refused.value.argument == "hyperparameters.quantization"
    assert "quantization to null" in str(refused.value)
    assert not (tmp_path / "out").exists()
