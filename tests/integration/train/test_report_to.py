"""``report_to`` names a tracker the environment lacks: refused with the package to install, before loading."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from lora_pipeline._exceptions import ConfigError
from lora_pipeline.presets import resolve_hyperparameters
from lora_pipeline.train import train_lora


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_a_missing_tracker_is_named_with_its_package(sample_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="pip install wandb") as refused:
        train_lora(
            base_model=tmp_path / "never-read",
            dataset_path=sample_dataset,
            output_dir=tmp_path / "out",
            hyperparameters=resolve_hyperparameters("balanced", {"report_to": ["wandb"]}),
        )

    assert refused.value.argument == "hyperparameters.report_to"
