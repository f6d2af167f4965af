"""The SQL the Storage API runs (storage/database/pg.ts), parameterised, on a connection opened as some role.

Which role runs each statement is the caller's business (``_context``); these functions only speak SQL.
Column names come from fixed tuples in this module, never from requests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ._validation import owner_uuid

Row = dict[str, Any]
Connection = psycopg.AsyncConnection[Any]

BUCKET_COLUMNS = ("id", "name", "owner", "public", "created_at", "updated_at", "file_size_limit", "allowed_mime_types")
BUCKET_LIMIT_COLUMNS = ("id", "public", "file_size_limit", "allowed_mime_types")
BUCKET_SORT_COLUMNS = ("id", "name", "created_at", "updated_at")
INFO_COLUMNS = ("id", "name", "version", "bucket_id", "metadata", "user_metadata", "updated_at", "created_at")
_DELETE_BATCH = 500


async def _rows(conn: Connection, query: sql.Composable | str, params: Iterable[Any] = ()) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cursor:
        await cursor.execute(query, list(params))  # type: ignore[arg-type]
        return await cursor.fetchall() if cursor.description else []


async def _one(conn: Connection, query: sql.Composable | str, params: Iterable[Any] = ()) -> Row | None:
    rows = await _rows(conn, query, params)
    return rows[0] if rows else None


def _columns(names: Iterable[str]) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(name) for name in names)


# -- buckets ---------------------------------------------------------------------------------------------


async def find_bucket(
    conn: Connection, bucket_id: str, columns: tuple[str, ...] = BUCKET_COLUMNS, *, for_update: bool = False
) -> Row | None:
    query = sql.SQL("select {} from storage.buckets where id = %s limit 1{}").format(
        _columns(columns), sql.SQL(" for update") if for_update else sql.SQL("")
    )
    return await _one(conn, query, [bucket_id])


async def list_buckets(
    conn: Connection,
    *,
    with_type: bool,
    limit: int | None = None,
    offset: int | None = None,
    sort_column: str | None = None,
    sort_order: str = "asc",
    search: str | None = None,
) -> list[Row]:
    columns = (*BUCKET_COLUMNS, "type") if with_type else BUCKET_COLUMNS
    parts: list[sql.Composable] = [sql.SQL("select {} from storage.buckets").format(_columns(columns))]
    params: list[Any] = []
    if search:
        parts.append(sql.SQL("where name ilike %s"))
        params.append("%" + _escape_like(search) + "%")
    if sort_column in BUCKET_SORT_COLUMNS:
        direction = sql.SQL("desc" if sort_order == "desc" else "asc")
        parts.append(sql.SQL("order by {} {}").format(sql.Identifier(sort_column), direction))
    if limit is not None:
        parts.append(sql.SQL("limit %s"))
        params.append(limit)
    if offset is not None:
        parts.append(sql.SQL("offset %s"))
        params.append(offset)
    return await _rows(conn, sql.SQL(" ").join(parts), params)


async def insert_bucket(conn: Connection, values: Mapping[str, Any]) -> None:
    """``INSERT`` without ``RETURNING``: needs an INSERT policy only."""
    query = sql.SQL("insert into storage.buckets ({}) values ({})").format(
        _columns(values), sql.SQL(", ").join(sql.Placeholder() for _ in values)
    )
    await conn.execute(query, list(values.values()))


async def update_bucket(conn: Connection, bucket_id: str, fields: Mapping[str, Any]) -> int:
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in fields)
    query = sql.SQL("update storage.buckets set {} where id = %s returning id").format(assignments)
    return len(await _rows(conn, query, [*fields.values(), bucket_id]))


async def delete_bucket(conn: Connection, bucket_id: str) -> int:
    cursor = await conn.execute("delete from storage.buckets where id = any(%s::text[])", [[bucket_id]])
    return cursor.rowcount


async def has_objects(conn: Connection, bucket_id: str) -> bool:
    return bool(await _rows(conn, "select 1 from storage.objects where bucket_id = %s limit 1", [bucket_id]))


async def delete_all_objects(conn: Connection, bucket_id: str) -> list[str]:
    """Empty a bucket (the real service queues this); returns the deleted versions."""
    rows = await _rows(conn, "delete from storage.objects where bucket_id = %s returning version", [bucket_id])
    return [row["version"] for row in rows if row["version"]]


# -- objects ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectDraft:
    """The columns Storage writes for an object (owner only when the JWT ``sub`` is a UUID)."""

    bucket_id: str
    name: str
    owner: str | None
    metadata: Mapping[str, Any] | None
    user_metadata: Mapping[str, Any] | None
    version: str

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"bucket_id": self.bucket_id, "name": self.name}
        values.update(self.update_values())
        return values

    def update_values(self) -> dict[str, Any]:
        """What an upsert overwrites: undefined values leave the existing column alone."""
        values: dict[str, Any] = {}
        if self.metadata is not None:
            values["metadata"] = Jsonb(dict(self.metadata))
        if self.user_metadata is not None:
            values["user_metadata"] = Jsonb(dict(self.user_metadata))
        values["version"] = self.version
        if owner_uuid(self.owner):
            values["owner"] = owner_uuid(self.owner)
        if self.owner:
            values["owner_id"] = self.owner
        return values


async def insert_object(conn: Connection, draft: ObjectDraft) -> None:
    """The plain upload's statement: ``INSERT`` (INSERT policy only)."""
    values = draft.values()
    query = sql.SQL("insert into storage.objects ({}) values ({})").format(
        _columns(values), sql.SQL(", ").join(sql.Placeholder() for _ in values)
    )
    await conn.execute(query, list(values.values()))


async def upsert_object(conn: Connection, draft: ObjectDraft) -> Row:
    """The upsert's statement: ``ON CONFLICT DO UPDATE ... RETURNING *`` (INSERT + SELECT [+ UPDATE])."""
    values = draft.values()
    updates = sql.SQL(", ").join(
        sql.SQL("{0} = excluded.{0}").format(sql.Identifier(name)) for name in draft.update_values()
    )
    query = sql.SQL(
        "insert into storage.objects ({}) values ({}) on conflict (name, bucket_id) do update set {} returning *"
    ).format(_columns(values), sql.SQL(", ").join(sql.Placeholder() for _ in values), updates)
    row = await _one(conn, query, list(values.values()))
    assert row is not None  # DO UPDATE always returns the row (or raises)
    return row


async def find_object(
    conn: Connection,
    bucket_id: str,
    name: str,
    columns: tuple[str, ...] = ("id", "version", "metadata"),
    *,
    for_update: bool = False,
) -> Row | None:
    query = sql.SQL("select {} from storage.objects where name = %s and bucket_id = %s limit 1{}").format(
        _columns(columns), sql.SQL(" for update") if for_update else sql.SQL("")
    )
    return await _one(conn, query, [name, bucket_id])


async def visible_names(conn: Connection, bucket_id: str, names: list[str]) -> set[str]:
    rows = await _rows(
        conn, "select name from storage.objects where bucket_id = %s and name = any(%s::text[])", [bucket_id, names]
    )
    return {row["name"] for row in rows}


async def update_object(conn: Connection, bucket_id: str, name: str, fields: Mapping[str, Any]) -> Row | None:
    assignments = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in fields)
    query = sql.SQL("update storage.objects set {} where bucket_id = %s and name = %s returning *").format(assignments)
    return await _one(conn, query, [*fields.values(), bucket_id, name])


async def delete_objects(conn: Connection, bucket_id: str, names: list[str]) -> list[Row]:
    """Exact names, never prefixes; rows the role cannot see are silently skipped."""
    deleted: list[Row] = []
    for start in range(0, len(names), _DELETE_BATCH):
        batch = names[start : start + _DELETE_BATCH]
        deleted += await _rows(
            conn,
            "delete from storage.objects where bucket_id = %s and name = any(%s::text[]) returning *",
            [bucket_id, batch],
        )
    return deleted


async def lock_object(conn: Connection, bucket_id: str, name: str) -> None:
    """Serialise writers of one key for the rest of the transaction."""
    await conn.execute("select pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"{bucket_id}/{name}"])


async def search(
    conn: Connection,
    bucket_id: str,
    prefix: str,
    *,
    limit: int,
    offset: int,
    search: str,
    sort_column: str,
    sort_order: str,
) -> list[Row]:
    """``storage.search`` is SECURITY INVOKER: RLS decides what is listed."""
    levels = len((prefix + search).split("/"))
    return await _rows(
        conn,
        "select * from storage.search(%s, %s, %s, %s, %s, %s, %s, %s)",
        [prefix, bucket_id, limit, levels, offset, search, sort_column, sort_order],
    )


def escape_like(value: str) -> str:
    """``value`` as a literal inside a ``LIKE ... ESCAPE '\\'`` pattern."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


_escape_like = escape_like


__all__ = [
    "BUCKET_COLUMNS",
    "BUCKET_LIMIT_COLUMNS",
    "INFO_COLUMNS",
    "Connection",
    "ObjectDraft",
    "Row",
    "delete_all_objects",
    "delete_bucket",
    "delete_objects",
    "escape_like",
    "find_bucket",
    "find_object",
    "has_objects",
    "insert_bucket",
    "insert_object",
    "list_buckets",
    "lock_object",
    "search",
    "update_bucket",
    "update_object",
    "upsert_object",
    "visible_names",
]
