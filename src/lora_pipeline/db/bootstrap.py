"""Install what hosted Supabase already has (roles, auth and storage schemas) into a bare PostgreSQL.

For the embedded stack and the test suite only; never run this against a real Supabase project.
"""

from __future__ import annotations

from typing import Any

from .paths import sql_root


def bootstrap_files() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted((sql_root() / "bootstrap").glob("*.sql"))]


def install_supabase_bootstrap(conn: Any, *, authenticator_password: str) -> None:
    """Apply ``sql/bootstrap/*.sql`` and set the authenticator's login password (superuser connection)."""
    with conn.transaction():
        for sql in bootstrap_files():
            conn.execute(sql)
        conn.execute(f"alter role authenticator password '{_quote(authenticator_password)}'")


def _quote(value: str) -> str:
    return value.replace("'", "''")


__all__ = ["bootstrap_files", "install_supabase_bootstrap"]
