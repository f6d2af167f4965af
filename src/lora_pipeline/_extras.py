"""Optional extras: which ``pip install 'lora-pipeline[extra]'`` provides a module, checked before work starts.

A missing optional dependency should be one line naming the extra, never a ``ModuleNotFoundError`` a second
into a job; :func:`require` checks a set of modules without importing them.
"""

from __future__ import annotations

import importlib.util

from ._exceptions import ConfigError

EXTRA_FOR_MODULE: dict[str, str] = {
    "psycopg": "local",
    "psycopg_pool": "local",
    "starlette": "local",
    "uvicorn": "local",
    "jwt": "local",
    "runpod": "runpod",
    "torch": "train",
    "transformers": "train",
    "peft": "train",
    "accelerate": "train",
    "safetensors": "train",
    "tokenizers": "train",
    "matplotlib": "plot",
    "pandas": "pandas",
    "graphql": "testing",
}
"""Top-level module name -> the extra that installs it (pyproject's optional-dependencies)."""


def install_hint(module: str) -> str | None:
    """``pip install 'lora-pipeline[<extra>]'`` for a module one of our extras provides, else ``None``."""
    extra = EXTRA_FOR_MODULE.get(module.split(".")[0])
    return f"pip install 'lora-pipeline[{extra}]'" if extra else None


def missing_modules(modules: tuple[str, ...]) -> list[str]:
    """The modules of ``modules`` that cannot be imported here (found without importing them)."""
    absent = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            absent.append(name)
    return absent


def require(modules: tuple[str, ...], extra: str, why: str) -> None:
    """Raise :class:`ConfigError` naming ``extra`` when any of ``modules`` is not installed.

    Example::

        require(("torch", "transformers", "peft"), "train", "LocalBackend runs the trainer in this machine")
    """
    absent = missing_modules(modules)
    if absent:
        raise ConfigError(
            f"{why}, which needs {', '.join(absent)}: install the extra with pip install 'lora-pipeline[{extra}]'",
            argument=extra,
        )


__all__ = ["EXTRA_FOR_MODULE", "install_hint", "missing_modules", "require"]
