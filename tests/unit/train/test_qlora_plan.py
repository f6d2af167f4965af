"""QLoRA in planning: the fit check and ``jobs estimate`` count 4- and 8-bit base weights, and the
``quantization`` field takes only what bitsandbytes offers."""

from __future__ import annotations

import pytest

from lora_pipeline._exceptions import ConfigError
from lora_pipeline.gpus import WEIGHT_BYTES, check_fit, estimate_memory_gb, get_gpu
from lora_pipeline.presets import resolve_hyperparameters

SMALL_BATCH = {"batch_size": 1, "max_seq_len": 1024, "gradient_checkpointing": True}


def test_a_13b_model_is_refused_on_a_24gb_gpu_in_16_bit_and_fits_in_4_bit() -> None:
    gpu = get_gpu("RTX_4090")

    with pytest.raises(ConfigError, match=r"quantization=4bit") as refused:
        check_fit(gpu, "Llama-2-13B", resolve_hyperparameters("balanced", SMALL_BATCH))
    fits = check_fit(gpu, "Llama-2-13B", resolve_hyperparameters("balanced", {**SMALL_BATCH, "quantization": "4bit"}))

    assert "24 GB" in str(refused.value)
    assert fits is not None and fits < gpu.vram_gb


def test_the_weights_shrink_by_the_bytes_each_quantised_weight_takes() -> None:
    sizes = {
        q: estimate_memory_gb(13, resolve_hyperparameters("balanced", {**SMALL_BATCH, "quantization": q}))
        for q in (None, "8bit", "4bit")
    }

    assert sizes[None] > sizes["8bit"] > sizes["4bit"]
    assert sizes[None] - sizes["8bit"] == pytest.approx(13 * 1.0 * 1.1, rel=1e-6)  # 1 byte less per weight
    assert sizes[None] - sizes["4bit"] == pytest.approx(13 * (2 - WEIGHT_BYTES["4bit"]) * 1.1, rel=1e-6)


def test_an_unknown_quantization_is_a_config_error_naming_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"quantization.*'4bit' or '8bit'"):
        resolve_hyperparameters("balanced", {"quantization": "2bit"})


def test_report_to_takes_the_supported_trackers_once_each() -> None:
    hp = resolve_hyperparameters("balanced", {"report_to": ["wandb", "tensorboard"]})

    assert hp.report_to == ("wandb", "tensorboard")
    with pytest.raises(ConfigError, match="report_to"):
        resolve_hyperparameters("balanced", {"report_to": ["comet"]})
    with pytest.raises(ConfigError, match="twice"):
        resolve_hyperparameters("balanced", {"report_to": ["wandb", "wandb"]})
