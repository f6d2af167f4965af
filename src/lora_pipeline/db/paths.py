"""Where the SQL files live: inside the wheel (``lora_pipeline/_sql``) or in a source checkout (``sql/``)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def sql_root() -> Path:
    """The folder holding ``migrations/``, ``bootstrap/`` and ``schema.lock.json``."""
    for candidate in (_PACKAGE / "_sql", _PACKAGE.parent.parent / "sql"):
        if (candidate / "migrations").is_dir():
            return candidate
    raise FileNotFoundError(
        "lora-pipeline's SQL files are missing from this installation (expected lora_pipeline/_sql)"
    )


__all__ = ["sql_root"]
