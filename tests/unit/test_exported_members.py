"""The public surface is exactly what __all__ says, and every name resolves."""

import lora_pipeline


def test_all_names_resolve_without_duplicates() -> None:
    assert len(lora_pipeline.__all__) == len(set(lora_pipeline.__all__))
    for name in lora_pipeline.__all__:
        assert getattr(lora_pipeline, name) is not None, name


def test_public_names_are_pinned() -> None:
    expected = {
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
        "ENV_NAMES",
        "GPUS",
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
        "PRESETS",
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
    }
    assert set(lora_pipeline.__all__) == expected


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        lora_pipeline.NoSuchThing  # noqa: B018
    except AttributeError as error:
        assert "NoSuchThing" in str(error)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_pulls_in_no_heavy_dependency() -> None:
    import subprocess
    import sys

    heavy = "('supabase', 'pydantic', 'httpx', 'torch')"
    code = f"import sys, lora_pipeline; print(','.join(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_lazy_export_table_and_all_agree() -> None:
    assert set(lora_pipeline._EXPORTS) | {"__version__"} == set(lora_pipeline.__all__)
