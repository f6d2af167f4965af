"""lora-pipeline: typed, Supabase-native LoRA fine-tuning pipelines on RunPod.

Public names load lazily so that ``import lora_pipeline.pod`` stays fast on a cold pod.

    from lora_pipeline import LoraPipeline
    lp = LoraPipeline.from_env()
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from . import _exceptions  # light (stdlib only): the one list of the public error names
from ._version import __version__

_EXPORTS: dict[str, str] = {
    "LoraPipeline": "._client",
    "AsyncLoraPipeline": "._client",
    "Settings": "._config",
    "ENV_NAMES": "._config",
    "Role": "._roles",
    "Hyperparameters": ".presets",
    "PRESETS": ".presets",
    "GPUS": ".gpus",
    "GpuConfig": ".gpus",
    "DatasetFormat": ".datasets.formats",
    **dict.fromkeys(_exceptions.__all__, "._exceptions"),
}

__all__ = [
    "ENV_NAMES",
    "GPUS",
    "PRESETS",
    "AsyncLoraPipeline",
    "DatasetFormat",
    "GpuConfig",
    "Hyperparameters",
    "LoraPipeline",
    "Role",
    "Settings",
    "__version__",
]
__all__ += _exceptions.__all__


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lora_pipeline' has no attribute {name!r}")
    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from ._client import AsyncLoraPipeline, LoraPipeline
    from ._config import ENV_NAMES, Settings
    from ._exceptions import *  # noqa: F403 - the names listed in _exceptions.__all__
    from ._roles import Role
    from .datasets.formats import DatasetFormat
    from .gpus import GPUS, GpuConfig
    from .presets import PRESETS, Hyperparameters
