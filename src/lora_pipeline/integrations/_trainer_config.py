"""What a ``Trainer`` run really is, read at ``on_train_begin``: its arguments, the LoRA configuration of the
model, the model's name, the dataset's size and the world size, as JSON with no secrets (issue 17)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..types._run_config import json_config


def trainer_config(args: Any, model: Any = None, train_dataloader: Any = None) -> dict[str, Any]:
    """The configuration of the run the ``Trainer`` is starting; every part is optional (a custom model or
    dataloader leaves its part out). ``training_arguments`` is ``TrainingArguments.to_dict()`` (which already
    masks the hub token) passed through :func:`json_config` (which drops anything named like a credential)."""
    config: dict[str, Any] = {}
    to_dict = getattr(args, "to_dict", None)
    if callable(to_dict):
        config["training_arguments"] = json_config(to_dict(), what="training arguments")
    config["trainer_arguments_class"] = type(args).__name__
    world_size = getattr(args, "world_size", None)
    if isinstance(world_size, int):
        config["world_size"] = world_size
    lora = lora_config(model)
    if lora is not None:
        config["lora"] = lora
    name = model_name(model)
    if name:
        config["model_name"] = name
    size = dataset_size(train_dataloader)
    if size is not None:
        config["dataset_size"] = size
    return config


def lora_config(model: Any) -> dict[str, Any] | None:
    """The PEFT configuration of ``model`` (its only adapter's, or ``{adapter name: config}``), or ``None``."""
    configs = getattr(model, "peft_config", None)
    if not isinstance(configs, Mapping) or not configs:
        return None
    converted = {
        str(name): json_config(config.to_dict() if hasattr(config, "to_dict") else config, what="LoRA config")
        for name, config in configs.items()
    }
    return next(iter(converted.values())) if len(converted) == 1 else converted


def model_name(model: Any) -> str | None:
    """The Hub id or path the model was loaded from (through a PEFT wrapper too)."""
    for candidate in (
        model,
        getattr(model, "base_model", None),
        getattr(getattr(model, "base_model", None), "model", None),
    ):
        config = getattr(candidate, "config", None)
        name = getattr(config, "_name_or_path", None) or getattr(candidate, "name_or_path", None)
        if isinstance(name, str) and name:
            return name
    return None


def dataset_size(train_dataloader: Any) -> int | None:
    """Examples in the training set, when its dataloader's dataset has a length."""
    dataset = getattr(train_dataloader, "dataset", None)
    try:
        return len(dataset) if dataset is not None else None
    except TypeError:  # an iterable dataset
        return None


__all__ = ["dataset_size", "lora_config", "model_name", "trainer_config"]
