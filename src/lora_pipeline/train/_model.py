"""Loading the base model for LoRA: precision, QLoRA quantisation, the LoRA config TRL wraps it with."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer

from .._exceptions import ConfigError
from ..presets import Hyperparameters


@dataclass(frozen=True)
class Precision:
    """Where and in which dtype the model trains."""

    device: str
    dtype: torch.dtype
    bf16: bool = False
    fp16: bool = False


def precision() -> Precision:
    """bf16 on a CUDA GPU that has it, fp32 weights under fp16 autocast on older GPUs, fp32 on CPU."""
    if not torch.cuda.is_available():
        return Precision("cpu", torch.float32)
    if torch.cuda.is_bf16_supported():
        return Precision("cuda", torch.bfloat16, bf16=True)
    return Precision("cuda", torch.float32, fp16=True)


def load_tokenizer(base_model: str | Path) -> Any:
    tokenizer = AutoTokenizer.from_pretrained(str(existing(base_model)))
    if tokenizer.pad_token is None:
        # Many base models ship without a pad token; padded positions are masked out of loss and attention.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(base_model: str | Path, hyperparameters: Hyperparameters, where: Precision) -> Any:
    """The frozen base model; with ``quantization`` set, loaded through bitsandbytes and made k-bit trainable."""
    path = str(existing(base_model))
    if hyperparameters.quantization is None:
        return AutoModelForCausalLM.from_pretrained(path, dtype=where.dtype)
    refuse_quantization_without_cuda(hyperparameters)
    from peft import prepare_model_for_kbit_training

    model = AutoModelForCausalLM.from_pretrained(
        path,
        quantization_config=bits_and_bytes_config(hyperparameters.quantization, where.dtype),
        dtype=where.dtype,
        device_map={"": torch.cuda.current_device()},
    )
    prepare = prepare_model_for_kbit_training
    return prepare(model, use_gradient_checkpointing=hyperparameters.gradient_checkpointing)  # type: ignore[no-untyped-call]


def bits_and_bytes_config(quantization: str, compute_dtype: torch.dtype) -> Any:
    """QLoRA's recipe: NF4 weights with double quantisation and 16-bit compute, or LLM.int8."""
    try:
        import bitsandbytes  # type: ignore[import-not-found]  # noqa: F401  # fail early, with the fix
    except ImportError:
        raise ConfigError(
            f"quantization={quantization!r} needs bitsandbytes: install lora-pipeline[train,qlora]",
            argument="hyperparameters.quantization",
        ) from None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]
    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype if compute_dtype != torch.float32 else torch.float16,
    )


def refuse_quantization_without_cuda(hyperparameters: Hyperparameters) -> None:
    """bitsandbytes' k-bit kernels are CUDA kernels: say so before any weights are read."""
    if hyperparameters.quantization is not None and not torch.cuda.is_available():
        raise ConfigError(
            f"quantization={hyperparameters.quantization!r} (QLoRA) needs a CUDA GPU and this machine has none: "
            "run the job on a GPU pod, or set quantization to null to train in 16/32-bit here",
            argument="hyperparameters.quantization",
        )


TRACKER_PACKAGES = {"wandb": "wandb", "mlflow": "mlflow", "tensorboard": "tensorboard"}
"""The package each ``report_to`` integration needs in the pod (add it with ``deploy(requirement=...)`` or the
image); its credentials travel as pod secrets, e.g. ``secrets={"WANDB_API_KEY": "wandb_key"}``."""


def refuse_missing_trackers(hyperparameters: Hyperparameters) -> None:
    """A ``report_to`` integration whose package is absent fails here, naming it, before the model loads."""
    from transformers import integrations

    missing = [name for name in hyperparameters.report_to if not getattr(integrations, f"is_{name}_available")()]
    if missing:
        packages = " ".join(TRACKER_PACKAGES[name] for name in missing)
        raise ConfigError(
            f"report_to names {', '.join(missing)}, which this environment lacks: pip install {packages} "
            "(in a pod: an image that has it), or drop it from report_to",
            argument="hyperparameters.report_to",
        )


def lora_config(hyperparameters: Hyperparameters) -> LoraConfig:
    target, alpha = hyperparameters.target_modules, hyperparameters.alpha
    return LoraConfig(
        r=hyperparameters.rank,
        lora_alpha=int(alpha) if alpha.is_integer() else alpha,  # type: ignore[arg-type]  # peft takes floats
        lora_dropout=hyperparameters.dropout,
        target_modules=target if isinstance(target, str) else list(target),
        bias="none",
        task_type="CAUSAL_LM",
    )


def existing(base_model: str | Path) -> str | Path:
    if isinstance(base_model, Path) and not base_model.is_dir():
        raise ConfigError(
            f"base_model {str(base_model)!r} is not a directory: pass a model directory saved with "
            "save_pretrained, or a Hugging Face hub id as a string",
            argument="base_model",
        )
    return base_model
