"""Connecting to a database URL with errors that say what to fix (and never print the password)."""

from __future__ import annotations

import re
from typing import Any

from .._exceptions import ConfigError, DatabaseUnreachable

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")


def mask_dsn(dsn: str) -> str:
    """The URL with its password replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", dsn)


def connect(dsn: str, **kwargs: Any) -> Any:
    """A psycopg connection, or :class:`DatabaseUnreachable` naming the (masked) URL and the reason."""
    try:
        import psycopg
    except ImportError as error:
        raise ConfigError("database commands need the `local` extra: pip install 'lora-pipeline[local]'") from error
    if not dsn.startswith(("postgres://", "postgresql://")) and "=" not in dsn:
        raise ConfigError(
            f"--db-url {mask_dsn(dsn)!r} is not a PostgreSQL URL: use postgresql://user:password@host:5432/postgres "
            "(Supabase: Project Settings > Database > Connection string)",
            argument="db_url",
        )
    try:
        return psycopg.connect(dsn, connect_timeout=10, **kwargs)
    except psycopg.OperationalError as error:
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DatabaseUnreachable(
            f"cannot connect to {mask_dsn(dsn)}: {mask_dsn(reason)}; check the host, port, password and that "
            "the server accepts connections from here"
        ) from None


__all__ = ["connect", "mask_dsn"]
