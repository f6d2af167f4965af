"""GPU configurations, and whether a preset fits a GPU for a given base model.

Prices are RunPod's on-demand list prices per GPU-hour (secure cloud, late 2026) used only as a fallback
when no live price is available; ``relative_speed`` is training throughput relative to an A100 80GB. Both
feed estimates, which are shown as ranges, never as promises.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ._exceptions import ConfigError
from .presets import Hyperparameters


class GpuConfig(BaseModel):
    """One GPU type a job can run on."""

    model_config = ConfigDict(frozen=True)

    key: str
    """Short name used in the API (``A40``)."""
    name: str
    """Display name."""
    runpod_id: str
    """RunPod ``gpuTypeId``."""
    vram_gb: int
    price_per_hour: float
    """Fallback on-demand price in USD per hour."""
    relative_speed: float
    """Throughput relative to an A100 80GB."""
    supports_bf16: bool = True


GPUS: dict[str, GpuConfig] = {
    g.key: g
    for g in (
        GpuConfig(
            key="RTX_4090",
            name="RTX 4090 24GB",
            runpod_id="NVIDIA GeForce RTX 4090",
            vram_gb=24,
            price_per_hour=0.69,
            relative_speed=0.55,
        ),
        GpuConfig(
            key="A40", name="A40 48GB", runpod_id="NVIDIA A40", vram_gb=48, price_per_hour=0.44, relative_speed=0.45
        ),
        GpuConfig(
            key="L40S", name="L40S 48GB", runpod_id="NVIDIA L40S", vram_gb=48, price_per_hour=0.86, relative_speed=0.75
        ),
        GpuConfig(
            key="A100_80GB",
            name="A100 80GB PCIe",
            runpod_id="NVIDIA A100 80GB PCIe",
            vram_gb=80,
            price_per_hour=1.64,
            relative_speed=1.0,
        ),
        GpuConfig(
            key="H100_80GB",
            name="H100 80GB SXM",
            runpod_id="NVIDIA H100 80GB HBM3",
            vram_gb=80,
            price_per_hour=2.99,
            relative_speed=2.0,
        ),
        GpuConfig(
            key="H200", name="H200 141GB", runpod_id="NVIDIA H200", vram_gb=141, price_per_hour=3.99, relative_speed=2.3
        ),
    )
}
"""Supported GPU types by key."""

DEFAULT_GPU = "A40"

# (max parameters in billions, hidden size, layers): rough shapes of decoder-only models by size.
_SHAPES = (
    (0.2, 768, 12),
    (1.5, 2048, 24),
    (4, 3072, 28),
    (9, 4096, 32),
    (15, 5120, 40),
    (35, 6656, 60),
    (75, 8192, 80),
    (float("inf"), 12288, 96),
)
_SIZE_IN_NAME = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([bBmM])(?![a-zA-Z])")


def get_gpu(key: str) -> GpuConfig:
    """The configuration for a GPU key or RunPod id, or a :class:`ConfigError` listing the choices."""
    for gpu in GPUS.values():
        if key in (gpu.key, gpu.runpod_id):
            return gpu
    raise ConfigError(f"unknown gpu_type {key!r}: choose one of {', '.join(GPUS)}", argument="gpu_type")


def model_size_billions(base_model: str) -> float | None:
    """Parameter count in billions from a local model's config or a hub name like ``Llama-3.1-8B``."""
    path = Path(base_model)
    if (path / "config.json").is_file():
        return _params_from_config(json.loads((path / "config.json").read_text()))
    matches = _SIZE_IN_NAME.findall(base_model)
    if not matches:
        return None
    number, unit = matches[-1]
    return float(number) / (1000 if unit.lower() == "m" else 1)


def _params_from_config(config: dict[str, object]) -> float | None:
    hidden = config.get("hidden_size") or config.get("n_embd") or config.get("d_model")
    layers = config.get("num_hidden_layers") or config.get("n_layer")
    vocab = config.get("vocab_size")
    intermediate = config.get("intermediate_size")
    if not isinstance(hidden, int) or not isinstance(layers, int):
        return None
    ffn = intermediate if isinstance(intermediate, int) else 4 * hidden
    per_layer = 4 * hidden * hidden + 3 * hidden * ffn
    return (layers * per_layer + 2 * hidden * (vocab if isinstance(vocab, int) else 0)) / 1e9


WEIGHT_BYTES: dict[str | None, float] = {None: 2.0, "8bit": 1.0, "4bit": 0.53}
"""Bytes per frozen base weight: 16-bit, LLM.int8, or NF4 with double-quantised scales (4 bits plus about
0.127 bits of constants, per Dettmers et al. 2023, and a little for the layers bitsandbytes leaves 16-bit)."""


def estimate_memory_gb(params_billions: float, hp: Hyperparameters, *, bytes_per_param: float | None = None) -> float:
    """Peak GPU memory for LoRA training: frozen weights, the adapter with Adam state, activations, overhead.

    The weights take ``WEIGHT_BYTES[hp.quantization]`` each unless ``bytes_per_param`` says otherwise.
    Activations follow Korthikanti et al. (2022): about 34 x hidden bytes per token per layer without
    recomputation, about 2 x hidden with gradient checkpointing.
    """
    _, hidden, layers = next(shape for shape in _SHAPES if params_billions <= shape[0])
    per_weight = WEIGHT_BYTES[hp.quantization] if bytes_per_param is None else bytes_per_param
    weights = params_billions * 1e9 * per_weight
    adapter = 7 * layers * hp.rank * 2 * hidden * 16  # ~7 wrapped matrices per layer; weights+grads+Adam in fp32
    per_token = layers * hidden * (2 if hp.gradient_checkpointing else 34)
    activations = hp.batch_size * hp.max_seq_len * per_token
    return (weights + adapter + activations) * 1.1 / 1e9 + 1.0


def check_fit(gpu: GpuConfig, base_model: str, hp: Hyperparameters) -> float | None:
    """The estimated peak memory in GB, or a :class:`ConfigError` when the preset cannot fit the GPU.

    Returns ``None`` when the model's size cannot be told (nothing is refused then).
    """
    size = model_size_billions(base_model)
    if size is None:
        return None
    needed = estimate_memory_gb(size, hp)
    if needed > gpu.vram_gb:
        smaller = max(1, hp.batch_size // max(2, math.ceil(needed / gpu.vram_gb)))
        raise ConfigError(
            f"{base_model} (~{size:g}B parameters) with batch_size={hp.batch_size}, max_seq_len={hp.max_seq_len}"
            f"{', gradient checkpointing' if hp.gradient_checkpointing else ''}"
            f"{f', {hp.quantization} weights' if hp.quantization else ''} needs about {needed:.0f} GB, "
            f"more than the {gpu.vram_gb} GB of {gpu.name}: choose a larger GPU, enable gradient_checkpointing, "
            f"or lower batch_size (e.g. {smaller}) or max_seq_len{'' if hp.quantization else ', or quantization=4bit'}",
            argument="gpu_type",
        )
    return needed


__all__ = [
    "DEFAULT_GPU",
    "GPUS",
    "WEIGHT_BYTES",
    "GpuConfig",
    "check_fit",
    "estimate_memory_gb",
    "get_gpu",
    "model_size_billions",
]
