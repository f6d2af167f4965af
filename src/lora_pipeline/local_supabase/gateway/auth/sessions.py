"""Sessions and refresh tokens: rows in ``auth.sessions`` / ``auth.refresh_tokens`` (GoTrue's legacy tokens).

A sign-in opens a session and its first refresh token (12 random letters and digits). A refresh revokes the
presented token and issues a child whose ``parent`` is the old token, so one session's tokens form a chain.
Reuse of a revoked token is tolerated when it is the parent of the session's active token (the client lost the
answer) or within :data:`REUSE_INTERVAL` of its revocation; later reuse revokes every token of the session and
is refused. Logging out deletes sessions; their refresh tokens go by ON DELETE CASCADE.
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row

REUSE_INTERVAL = timedelta(seconds=10)
"""GoTrue's default ``GOTRUE_SECURITY_REFRESH_TOKEN_REUSE_INTERVAL``."""
LogoutScope = Literal["global", "local", "others"]
_ALPHANUMERIC = string.ascii_letters + string.digits
_REFRESH_ROW_COLUMNS = "id, token, user_id, session_id, parent, revoked, updated_at"


@dataclass(frozen=True)
class Session:
    """A row of ``auth.sessions``; ``created_at`` is when the user authenticated (the ``amr`` timestamp)."""

    id: uuid.UUID
    user_id: uuid.UUID
    created_at: datetime
    aal: str
    not_after: datetime | None

    @property
    def expired(self) -> bool:
        return self.not_after is not None and datetime.now(timezone.utc) > self.not_after


@dataclass(frozen=True)
class RefreshToken:
    """A row of ``auth.refresh_tokens``."""

    id: int
    token: str
    user_id: str
    session_id: uuid.UUID | None
    parent: str | None
    revoked: bool
    updated_at: datetime


def new_refresh_token() -> str:
    """GoTrue's legacy refresh token: 12 characters from ``[A-Za-z0-9]``."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(12))


async def start_session(conn: AsyncConnection[Any], user_id: uuid.UUID) -> tuple[Session, RefreshToken]:
    """A new session with its first refresh token; the user's ``last_sign_in_at`` moves to now."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        """insert into auth.sessions (id, user_id, created_at, updated_at, aal)
           values (gen_random_uuid(), %s, now(), now(), 'aal1')
           returning id, user_id, created_at, aal, not_after""",
        (user_id,),
    )
    row = await cursor.fetchone()
    assert row is not None
    session = Session(**row)
    token = await _insert_token(conn, str(user_id), session.id, parent=None)
    await touch_sign_in(conn, user_id)
    return session, token


async def touch_sign_in(conn: AsyncConnection[Any], user_id: uuid.UUID) -> None:
    await conn.execute("update auth.users set last_sign_in_at = now(), updated_at = now() where id = %s", (user_id,))


async def find_session(conn: AsyncConnection[Any], session_id: uuid.UUID) -> Session | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        "select id, user_id, created_at, aal, not_after from auth.sessions where id = %s", (session_id,)
    )
    row = await cursor.fetchone()
    return Session(**row) if row else None


async def find_refresh_token(
    conn: AsyncConnection[Any], token: str, *, for_update: bool = False
) -> RefreshToken | None:
    """The row of ``token``; GoTrue does not even look up strings shorter than 12 characters."""
    if len(token) < 12:
        return None
    lock = " for update" if for_update else ""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(f"select {_REFRESH_ROW_COLUMNS} from auth.refresh_tokens where token = %s{lock}", (token,))
    row = await cursor.fetchone()
    return RefreshToken(**row) if row else None


async def rotate(conn: AsyncConnection[Any], presented: RefreshToken) -> str | None:
    """The refresh token to hand out for ``presented`` (locked), or ``None`` when it was reused too late.

    In the ``None`` case every token of the session has just been revoked; the caller must commit that before
    answering ``refresh_token_already_used``, as GoTrue does.
    """
    if not presented.revoked:
        return (await _swap(conn, presented)).token
    active = await _active_token(conn, presented.session_id)
    if active is not None and active.parent == presented.token:
        return active.token
    if datetime.now(timezone.utc) > presented.updated_at + REUSE_INTERVAL:
        await conn.execute(
            """update auth.refresh_tokens set revoked = true, updated_at = now()
                               where session_id = %s and not revoked""",
            (presented.session_id,),
        )
        return None
    return (await _swap(conn, presented)).token


async def _swap(conn: AsyncConnection[Any], old: RefreshToken) -> RefreshToken:
    await conn.execute("update auth.refresh_tokens set revoked = true, updated_at = now() where id = %s", (old.id,))
    token = await _insert_token(conn, old.user_id, old.session_id, parent=old.token)
    await conn.execute("update auth.sessions set updated_at = now() where id = %s", (old.session_id,))
    return token


async def _active_token(conn: AsyncConnection[Any], session_id: uuid.UUID | None) -> RefreshToken | None:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"""select {_REFRESH_ROW_COLUMNS} from auth.refresh_tokens
                              where session_id = %s and not revoked order by id desc limit 1""",
        (session_id,),
    )
    row = await cursor.fetchone()
    return RefreshToken(**row) if row else None


async def _insert_token(
    conn: AsyncConnection[Any], user_id: str, session_id: uuid.UUID | None, *, parent: str | None
) -> RefreshToken:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"""insert into auth.refresh_tokens (token, user_id, session_id, parent, revoked, created_at, updated_at)
            values (%s, %s, %s, %s, false, now(), now()) returning {_REFRESH_ROW_COLUMNS}""",
        (new_refresh_token(), user_id, session_id, parent),
    )
    row = await cursor.fetchone()
    assert row is not None
    return RefreshToken(**row)


async def log_out(
    conn: AsyncConnection[Any], user_id: uuid.UUID, session_id: uuid.UUID | None, scope: LogoutScope
) -> None:
    """Delete the current session (``local``), the others (``others``) or all of them (``global``).

    Without a session (a token with no ``session_id``) every scope logs out everywhere, as in GoTrue.
    """
    if session_id is not None and scope == "local":
        await conn.execute("delete from auth.sessions where id = %s", (session_id,))
    elif session_id is not None and scope == "others":
        await conn.execute("delete from auth.sessions where user_id = %s and id <> %s", (user_id, session_id))
    else:
        await conn.execute("delete from auth.sessions where user_id = %s", (user_id,))


__all__ = [
    "REUSE_INTERVAL",
    "LogoutScope",
    "RefreshToken",
    "Session",
    "find_refresh_token",
    "find_session",
    "log_out",
    "new_refresh_token",
    "rotate",
    "start_session",
    "touch_sign_in",
]
