"""Users and identities: real rows in ``auth.users`` / ``auth.identities``, so triggers on them fire.

Every function takes a connection already inside a transaction (``state.db.admin()``, the superuser Auth uses
as its own privileged database user). Passwords are hashed and checked by pgcrypto's bcrypt in Postgres, so
the event loop never spends tens of milliseconds per hash.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

_MAX_BIGINT = 2**63 - 1
NIL_INSTANCE = uuid.UUID(int=0)
"""GoTrue writes the nil UUID into ``instance_id``."""

_USER_COLUMNS = """id, aud, role, email, phone, encrypted_password, email_confirmed_at, phone_confirmed_at,
    confirmed_at, invited_at, confirmation_sent_at, recovery_sent_at, last_sign_in_at, raw_app_meta_data,
    raw_user_meta_data, created_at, updated_at, banned_until, deleted_at, is_anonymous"""
_IDENTITY_COLUMNS = "id, provider_id, user_id, identity_data, provider, last_sign_in_at, created_at, updated_at, email"


class _Now:
    """Marks a column :func:`update_user` sets to the transaction's ``now()``."""


NOW = _Now()
_UPDATABLE = frozenset(
    {
        "role",
        "email",
        "phone",
        "encrypted_password",
        "email_confirmed_at",
        "phone_confirmed_at",
        "banned_until",
        "raw_app_meta_data",
        "raw_user_meta_data",
        "last_sign_in_at",
        "deleted_at",
    }
)


@dataclass
class Identity:
    """A row of ``auth.identities`` (one per provider the user signs in with)."""

    id: uuid.UUID
    provider_id: str
    user_id: uuid.UUID
    identity_data: dict[str, Any]
    provider: str
    last_sign_in_at: datetime | None
    created_at: datetime
    updated_at: datetime
    email: str | None


@dataclass
class User:
    """A row of ``auth.users`` with its identities (``None`` where GoTrue does not load them)."""

    id: uuid.UUID
    aud: str
    role: str
    email: str | None
    phone: str | None
    encrypted_password: str | None
    email_confirmed_at: datetime | None
    phone_confirmed_at: datetime | None
    confirmed_at: datetime | None
    invited_at: datetime | None
    confirmation_sent_at: datetime | None
    recovery_sent_at: datetime | None
    last_sign_in_at: datetime | None
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    banned_until: datetime | None
    deleted_at: datetime | None
    is_anonymous: bool
    identities: list[Identity] | None = field(default=None)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> User:
        values = dict(row)
        values["app_metadata"] = values.pop("raw_app_meta_data") or {}
        values["user_metadata"] = values.pop("raw_user_meta_data") or {}
        values["aud"], values["role"] = values["aud"] or "", values["role"] or ""
        return cls(**values)

    @property
    def has_password(self) -> bool:
        return bool(self.encrypted_password)

    @property
    def is_banned(self) -> bool:
        return self.banned_until is not None and datetime.now(timezone.utc) < self.banned_until


@dataclass(frozen=True)
class NewUser:
    """What sign-up and the admin API insert; ``password_hash`` is already bcrypt."""

    email: str | None
    phone: str | None
    password_hash: str | None
    aud: str
    role: str
    app_metadata: dict[str, Any]
    user_metadata: dict[str, Any]
    email_confirmed: bool = False
    phone_confirmed: bool = False
    banned_until: datetime | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    identity_extras: dict[str, Any] = field(default_factory=dict)
    """Extra identity claims (sign-up copies its ``data`` into the identity)."""


async def hash_password(conn: AsyncConnection[Any], password: str, cost: int) -> str:
    """A ``$2a$`` bcrypt hash, as GoTrue stores it."""
    cursor = await conn.execute("select extensions.crypt(%s, extensions.gen_salt('bf', %s))", (password, cost))
    row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def password_matches(conn: AsyncConnection[Any], user: User, password: str) -> bool:
    if not user.encrypted_password or not user.encrypted_password.startswith("$2"):
        return False
    cursor = await conn.execute(
        "select extensions.crypt(%s, %s) = %s", (password, user.encrypted_password, user.encrypted_password)
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def find_user(
    conn: AsyncConnection[Any], condition: str, params: tuple[Any, ...], *, with_identities: bool = True
) -> User | None:
    """The user matching ``condition`` (an SQL fragment over ``auth.users``), identities loaded."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(f"select {_USER_COLUMNS} from auth.users where {condition} limit 1", params)
    row = await cursor.fetchone()
    if row is None:
        return None
    user = User.from_row(row)
    if with_identities:
        user.identities = await identities_of(conn, user.id)
    return user


async def find_by_id(conn: AsyncConnection[Any], user_id: uuid.UUID) -> User | None:
    return await find_user(conn, "id = %s", (user_id,))


async def find_by_email(conn: AsyncConnection[Any], email: str, aud: str) -> User | None:
    return await find_user(conn, "lower(email) = lower(%s) and aud = %s and not is_sso_user", (email, aud))


async def find_by_phone(conn: AsyncConnection[Any], phone: str, aud: str) -> User | None:
    return await find_user(conn, "phone = %s and aud = %s and not is_sso_user", (phone, aud))


async def email_taken(conn: AsyncConnection[Any], email: str, aud: str, *, other_than: uuid.UUID | None = None) -> bool:
    """Whether another user of ``aud`` owns ``email`` (through its row or an identity)."""
    cursor = await conn.execute(
        """select exists (select from auth.users u where u.aud = %(aud)s and u.id is distinct from %(me)s
                  and (lower(u.email) = lower(%(email)s) or exists (select from auth.identities i
                       where i.user_id = u.id and i.email = lower(%(email)s))))""",
        {"aud": aud, "email": email, "me": other_than},
    )
    row = await cursor.fetchone()
    return bool(row and row[0])


async def phone_taken(conn: AsyncConnection[Any], phone: str, aud: str) -> bool:
    cursor = await conn.execute("select exists (select from auth.users where phone = %s and aud = %s)", (phone, aud))
    row = await cursor.fetchone()
    return bool(row and row[0])


async def insert_user(conn: AsyncConnection[Any], new: NewUser) -> User:
    """INSERT the user row (triggers on auth.users fire here) and one identity per email/phone."""
    await conn.execute(
        """insert into auth.users (instance_id, id, aud, role, email, phone, encrypted_password, email_confirmed_at,
               phone_confirmed_at, raw_app_meta_data, raw_user_meta_data, banned_until, confirmation_token,
               recovery_token, created_at, updated_at)
           values (%s, %s, %s, %s, %s, %s, %s, case when %s then now() end, case when %s then now() end,
                   %s, %s, %s, '', '', now(), now())""",
        (
            NIL_INSTANCE,
            new.id,
            new.aud,
            new.role,
            new.email,
            new.phone,
            new.password_hash or "",
            new.email_confirmed,
            new.phone_confirmed,
            Jsonb(new.app_metadata),
            Jsonb(new.user_metadata),
            new.banned_until,
        ),
    )
    for provider, value in (("email", new.email), ("phone", new.phone)):
        if value:
            data = identity_data(new.id, provider, value, extras=new.identity_extras)
            await insert_identity(conn, new.id, provider, data)
    user = await find_by_id(conn, new.id)
    assert user is not None
    return user


def identity_data(
    user_id: uuid.UUID, provider: str, value: str, *, verified: bool = False, extras: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GoTrue's identity data for an email/phone identity; ``extras`` (sign-up ``data``) never override it."""
    data = {**(extras or {}), "sub": str(user_id), provider: value, "email_verified": False, "phone_verified": False}
    data[f"{provider}_verified"] = verified
    return data


async def insert_identity(conn: AsyncConnection[Any], user_id: uuid.UUID, provider: str, data: dict[str, Any]) -> None:
    await conn.execute(
        """insert into auth.identities (id, provider_id, user_id, identity_data, provider, last_sign_in_at,
               created_at, updated_at)
           values (gen_random_uuid(), %s, %s, %s, %s, now(), now(), now())""",
        (str(user_id), user_id, Jsonb(data), provider),
    )


async def set_contact(
    conn: AsyncConnection[Any], user_id: uuid.UUID, provider: str, value: str, *, verified: bool
) -> None:
    """Change the user's email or phone and its identity (created when the user had none)."""
    await update_user(conn, user_id, {provider: value})
    changes = {provider: value, f"{provider}_verified": verified}
    cursor = await conn.execute(
        """update auth.identities set identity_data = identity_data || %s, updated_at = now()
            where user_id = %s and provider = %s""",
        (Jsonb(changes), user_id, provider),
    )
    if cursor.rowcount == 0:
        await insert_identity(conn, user_id, provider, identity_data(user_id, provider, value, verified=verified))


async def identities_of(conn: AsyncConnection[Any], user_id: uuid.UUID) -> list[Identity]:
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"select {_IDENTITY_COLUMNS} from auth.identities where user_id = %s order by created_at", (user_id,)
    )
    return [Identity(**row) for row in await cursor.fetchall()]


async def update_user(conn: AsyncConnection[Any], user_id: uuid.UUID, changes: dict[str, Any]) -> None:
    """UPDATE the given columns (values bound, dicts as jsonb, :data:`NOW` as ``now()``)."""
    if not changes:
        return
    assigns = []
    params: list[Any] = []
    for column, value in changes.items():
        assert column in _UPDATABLE, column
        if value is NOW:
            assigns.append(sql.SQL("{} = now()").format(sql.Identifier(column)))
            continue
        assigns.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
        params.append(Jsonb(value) if isinstance(value, dict) else value)
    statement = sql.SQL("update auth.users set {}, updated_at = now() where id = %s").format(
        sql.SQL(", ").join(assigns)
    )
    await conn.execute(statement, [*params, user_id])


def merge_metadata(current: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """GoTrue's metadata update: keys are set, a ``null`` value removes its key."""
    merged = dict(current)
    for key, value in updates.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


async def list_users(conn: AsyncConnection[Any], aud: str, page: int, per_page: int) -> tuple[list[User], int]:
    """One page of the audience's users, newest first, and the total count (identities not loaded)."""
    cursor = conn.cursor(row_factory=dict_row)
    await cursor.execute(
        f"""select {_USER_COLUMNS}, count(*) over () as total from auth.users where aud = %s
             order by created_at desc, id desc limit %s offset %s""",
        (aud, min(per_page, _MAX_BIGINT), min((page - 1) * per_page, _MAX_BIGINT)),
    )
    rows = await cursor.fetchall()
    if rows:
        return [User.from_row({k: v for k, v in row.items() if k != "total"}) for row in rows], int(rows[0]["total"])
    count = await conn.execute("select count(*) from auth.users where aud = %s", (aud,))
    total = await count.fetchone()
    return [], int(total[0]) if total else 0


async def delete_user(conn: AsyncConnection[Any], user_id: uuid.UUID) -> None:
    """Hard delete; sessions, refresh tokens and identities go with it (ON DELETE CASCADE)."""
    await conn.execute("delete from auth.users where id = %s", (user_id,))


async def soft_delete_user(conn: AsyncConnection[Any], user: User) -> None:
    """GoTrue's soft delete: identifiers obfuscated, password and metadata cleared, sessions ended."""
    await conn.execute(
        """update auth.users set email = case when email is null then null
                                         else encode(extensions.digest(id::text || email, 'sha256'), 'hex') end,
                  phone = case when phone is null then null
                          else encode(extensions.digest(id::text || phone, 'sha256'), 'hex') end,
                  encrypted_password = '', raw_user_meta_data = '{}', raw_app_meta_data = '{}',
                  deleted_at = now(), updated_at = now()
            where id = %s""",
        (user.id,),
    )
    await conn.execute("delete from auth.identities where user_id = %s", (user.id,))
    await conn.execute("delete from auth.sessions where user_id = %s", (user.id,))


__all__ = [
    "NOW",
    "Identity",
    "NewUser",
    "User",
    "delete_user",
    "email_taken",
    "find_by_email",
    "find_by_id",
    "find_by_phone",
    "find_user",
    "hash_password",
    "identities_of",
    "identity_data",
    "insert_identity",
    "insert_user",
    "list_users",
    "merge_metadata",
    "password_matches",
    "phone_taken",
    "set_contact",
    "soft_delete_user",
    "update_user",
]
