"""lora-pipeline: typed, Supabase-native LoRA fine-tuning pipelines on RunPod.

Public names load lazily so that ``import lora_pipeline.pod`` stays fast on a cold pod.

    from lora_pipeline import LoraPipeline
    lp = LoraPipeline.from_env()
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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
    **{
        name: "._exceptions"
        for name in (
            "APIConnectionError",
            "APIError",
            "APIRetired",
            "ArtifactIntegrityError",
            "AuthenticationError",
            "BadRequest",
            "CapacityError",
            "ConfigError",
            "Conflict",
            "DatabaseUnreachable",
            "DatasetValidationError",
            "DownloadTokenError",
            "GateBlocked",
            "InsufficientFunds",
            "InvalidTransition",
            "LoraPipelineError",
            "MigrationChecksumMismatch",
            "MigrationError",
            "MigrationGap",
            "NotFound",
            "NotNullViolation",
            "PayloadTooLarge",
            "PermissionDenied",
            "RateLimited",
            "ServiceUnavailable",
            "Timeout",
            "TokenAlreadyUsed",
            "TokenExpired",
            "TokenNotFound",
            "TokenRevoked",
            "UnsupportedMediaType",
            "WaitTimeout",
        )
    },
}

__all__ = [
    "ENV_NAMES",
    "GPUS",
    "PRESETS",
    "APIConnectionError",
    "APIError",
    "APIRetired",
    "ArtifactIntegrityError",
    "AsyncLoraPipeline",
    "AuthenticationError",
    "BadRequest",
    "CapacityError",
    "ConfigError",
    "Conflict",
    "DatabaseUnreachable",
    "DatasetFormat",
    "DatasetValidationError",
    "DownloadTokenError",
    "GateBlocked",
    "GpuConfig",
    "Hyperparameters",
    "InsufficientFunds",
    "InvalidTransition",
    "LoraPipeline",
    "LoraPipelineError",
    "MigrationChecksumMismatch",
    "MigrationError",
    "MigrationGap",
    "NotFound",
    "NotNullViolation",
    "PayloadTooLarge",
    "PermissionDenied",
    "RateLimited",
    "Role",
    "ServiceUnavailable",
    "Settings",
    "Timeout",
    "TokenAlreadyUsed",
    "TokenExpired",
    "TokenNotFound",
    "TokenRevoked",
    "UnsupportedMediaType",
    "WaitTimeout",
    "__version__",
]


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
    from ._exceptions import (
        APIConnectionError,
        APIError,
        APIRetired,
        ArtifactIntegrityError,
        AuthenticationError,
        BadRequest,
        CapacityError,
        ConfigError,
        Conflict,
        DatabaseUnreachable,
        DatasetValidationError,
        DownloadTokenError,
        GateBlocked,
        InsufficientFunds,
        InvalidTransition,
        LoraPipelineError,
        MigrationChecksumMismatch,
        MigrationError,
        MigrationGap,
        NotFound,
        NotNullViolation,
        PayloadTooLarge,
        PermissionDenied,
        RateLimited,
        ServiceUnavailable,
        Timeout,
        TokenAlreadyUsed,
        TokenExpired,
        TokenNotFound,
        TokenRevoked,
        UnsupportedMediaType,
        WaitTimeout,
    )
    from ._roles import Role
    from .datasets.formats import DatasetFormat
    from .gpus import GPUS, GpuConfig
    from .presets import PRESETS, Hyperparameters
