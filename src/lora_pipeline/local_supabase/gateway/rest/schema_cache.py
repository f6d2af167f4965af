"""The schema cache: what PostgREST knows about the exposed schemas, read from ``pg_catalog`` and kept fresh.

- Relations, columns (domain types resolved to their base types), primary/unique/foreign keys, functions
  (arguments, defaults, volatility, return shape) and type names, in three catalog queries.
- Reloaded on ``NOTIFY pgrst, 'reload schema'`` (Supabase's DDL event trigger sends it after every migration; our
  bootstrap installs the same trigger); ``'reload config'`` re-reads the API roles' ``ALTER ROLE ... SET``
  settings. A miss (unknown table, column or function) reloads once before PGRST204/205/202 is answered, so a
  test that creates a table and queries it at once never races the notification.

Type names and default expressions come from Postgres itself (``format_type``, ``pg_get_expr``), so putting them
into generated SQL never puts request text there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ...db import Database

_RELATIONS_SQL = """
select n.nspname, c.relname, c.relkind,
  coalesce((select json_agg(json_build_object(
      'name', a.attname,
      'type', format_type(case when t.typtype = 'd' then t.typbasetype else a.atttypid end,
                          case when t.typtype = 'd' then t.typtypmod else a.atttypmod end),
      'default', coalesce(pg_get_expr(d.adbin, d.adrelid), case when t.typtype = 'd' then t.typdefault end),
      'nullable', not a.attnotnull) order by a.attnum)
    from pg_attribute a
    join pg_type t on t.oid = a.atttypid
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]'),
  coalesce((select json_agg(json_build_object('name', con.conname, 'type', con.contype,
      'columns', (select json_agg(a.attname order by k.ord) from unnest(con.conkey) with ordinality k(num, ord)
                  join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.num),
      'target_schema', tn.nspname, 'target', tc.relname,
      'target_columns', (select json_agg(a.attname order by k.ord)
                         from unnest(con.confkey) with ordinality k(num, ord)
                         join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.num)))
    from pg_constraint con
    left join pg_class tc on tc.oid = con.confrelid
    left join pg_namespace tn on tn.oid = tc.relnamespace
    where con.conrelid = c.oid and con.contype in ('p', 'u', 'f')), '[]')
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = any(%s) and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

_ROUTINES_SQL = """
select n.nspname, p.proname, p.provolatile, p.proretset, p.pronargdefaults,
  format_type(p.prorettype, null), rt.typtype, rn.nspname, rc.relname,
  coalesce((select json_agg(json_build_object(
      'name', coalesce(p.proargnames[a.ord], ''),
      'type', format_type(a.typ, null),
      'mode', coalesce(p.proargmodes[a.ord], 'i')) order by a.ord)
    from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) with ordinality a(typ, ord)), '[]')
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
left join pg_class rc on rc.oid = rt.typrelid
left join pg_namespace rn on rn.oid = rc.relnamespace
where n.nspname = any(%s) and p.prokind = 'f'
  and p.prorettype not in ('trigger'::regtype, 'event_trigger'::regtype)
"""

_TYPES_SQL = """
select n.nspname, t.typname from pg_type t join pg_namespace n on n.oid = t.typnamespace
where n.nspname = any(%s) and t.typtype in ('b', 'c', 'd', 'e', 'r', 'm') and t.typname !~ '^_'
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    default: str | None
    nullable: bool


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` of ``table`` reference ``target_columns`` of ``target``."""

    name: str
    table: str
    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    kind: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    unique_keys: tuple[frozenset[str], ...]
    foreign_keys: tuple[ForeignKey, ...]

    def is_unique(self, columns: tuple[str, ...]) -> bool:
        return frozenset(columns) in self.unique_keys


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str
    has_default: bool
    variadic: bool = False


@dataclass(frozen=True)
class Routine:
    """A function callable at ``/rpc/<name>``; ``returns`` is ``void``, ``scalar`` or ``composite``."""

    schema: str
    name: str
    parameters: tuple[Parameter, ...]
    volatility: str
    returns_set: bool
    returns: str
    return_type: str
    return_table: tuple[str, str] | None = None
    out_columns: tuple[str, ...] = field(default=())

    @property
    def read_only(self) -> bool:
        return self.volatility in ("s", "i")

    @property
    def single_unnamed_json(self) -> bool:
        return (
            len(self.parameters) == 1 and not self.parameters[0].name and self.parameters[0].type in ("json", "jsonb")
        )

    def accepts(self, keys: frozenset[str]) -> bool:
        """PostgREST's overload rule: every required parameter given, every given key a parameter."""
        if any(not p.name for p in self.parameters):
            return False
        names = {p.name for p in self.parameters}
        required = {p.name for p in self.parameters if not p.has_default}
        return required <= keys <= names


@dataclass(frozen=True)
class Catalog:
    """One consistent snapshot of the exposed schemas."""

    tables: dict[tuple[str, str], Table]
    routines: dict[tuple[str, str], tuple[Routine, ...]]
    type_names: frozenset[tuple[str, str]]


async def read_catalog(conn: psycopg.AsyncConnection[Any], schemas: list[str]) -> Catalog:
    """Introspect ``schemas`` in three queries (run on the admin connection)."""
    relations = await (await conn.execute(_RELATIONS_SQL, (schemas,))).fetchall()
    routines = await (await conn.execute(_ROUTINES_SQL, (schemas,))).fetchall()
    types = await (await conn.execute(_TYPES_SQL, ([*schemas, "pg_catalog"],))).fetchall()
    tables = {(row[0], row[1]): _table(*row) for row in relations}
    grouped: dict[tuple[str, str], list[Routine]] = {}
    for row in routines:
        routine = _routine(*row)
        grouped.setdefault((routine.schema, routine.name), []).append(routine)
    return Catalog(tables, {k: tuple(v) for k, v in grouped.items()}, frozenset((s, n) for s, n in types))


def _table(
    schema: str, name: str, kind: str, columns: list[dict[str, Any]], constraints: list[dict[str, Any]]
) -> Table:
    cols = {c["name"]: Column(c["name"], c["type"], c["default"], c["nullable"]) for c in columns}
    primary: tuple[str, ...] = ()
    unique: list[frozenset[str]] = []
    foreign: list[ForeignKey] = []
    for con in constraints:
        names = tuple(con["columns"] or ())
        if con["type"] == "p":
            primary = names
            unique.append(frozenset(names))
        elif con["type"] == "u":
            unique.append(frozenset(names))
        elif con["target_schema"] == schema:
            foreign.append(ForeignKey(con["name"], name, names, con["target"], tuple(con["target_columns"])))
    return Table(schema, name, kind, cols, primary, tuple(unique), tuple(foreign))


def _routine(
    schema: str,
    name: str,
    volatility: str,
    returns_set: bool,
    default_count: int,
    return_type: str,
    return_kind: str,
    table_schema: str | None,
    table_name: str | None,
    arguments: list[dict[str, Any]],
) -> Routine:
    inputs = [a for a in arguments if a["mode"] in ("i", "b", "v")]
    outputs = tuple(a["name"] for a in arguments if a["mode"] in ("o", "b", "t"))
    first_default = len(inputs) - (default_count or 0)
    parameters = tuple(
        Parameter(a["name"], a["type"], i >= first_default, a["mode"] == "v") for i, a in enumerate(inputs)
    )
    if return_type == "void":
        returns = "void"
    elif return_kind == "c" or (return_type == "record" and outputs):
        returns = "composite"
    else:
        returns = "scalar"
    table = (schema, table_name) if table_name and table_schema == schema else None
    return Routine(schema, name, parameters, volatility, returns_set, returns, return_type, table, outputs)


log = logging.getLogger("lora_pipeline.gateway.rest")

EXPOSED_SCHEMAS = ("public",)


class SchemaCache:
    """The current :class:`Catalog` plus the machinery that keeps it fresh."""

    def __init__(self, db: Database, admin_dsn: str) -> None:
        self.db = db
        self.admin_dsn = admin_dsn
        self.catalog = Catalog({}, {}, frozenset())
        self.loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._dirty = asyncio.Event()
        self._listened_before = False

    # -- loading ------------------------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read a fresh catalog and the API roles' settings; ``loaded_at`` is when the read began."""
        started = time.monotonic()
        async with self.db.admin() as conn:
            catalog = await read_catalog(conn, list(EXPOSED_SCHEMAS))
        await self.db.load_role_settings()
        self.catalog, self.loaded_at = catalog, started

    async def refresh_if_older(self, since: float) -> bool:
        """Reload unless a reload began after ``since`` (one reload serves every concurrent miss)."""
        async with self._lock:
            if self.loaded_at >= since:
                return False
            await self.load()
            return True

    # -- LISTEN pgrst -------------------------------------------------------------------------------------------

    def start_listening(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="rest-schema-listener"),
            asyncio.create_task(self._reload_when_dirty(), name="rest-schema-reloader"),
        ]

    async def stop_listening(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []

    async def _listen_forever(self) -> None:
        delay = 0.1
        while True:
            attempt = time.monotonic()
            try:
                await self._listen_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # reconnect after a lost connection; never die
                log.warning("schema cache listener: %s; reconnecting", error)
            delay = 0.1 if time.monotonic() - attempt > 10 else min(delay * 2, 5.0)
            await asyncio.sleep(delay)

    async def _listen_once(self) -> None:
        conn: psycopg.AsyncConnection[Any] = await psycopg.AsyncConnection.connect(self.admin_dsn, autocommit=True)
        async with conn:
            await conn.execute("listen pgrst")
            if self._listened_before:
                self._dirty.set()  # changes made while the connection was down
            self._listened_before = True
            async for _ in conn.notifies():  # 'reload schema' and 'reload config' alike: load() reads both
                self._dirty.set()

    async def _reload_when_dirty(self) -> None:
        """One reload per burst: a migration's many DDL notifications coalesce while a reload runs."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.refresh_if_older(time.monotonic())
            except Exception as error:
                log.warning("schema cache reload failed: %s", error)


__all__ = [
    "EXPOSED_SCHEMAS",
    "Catalog",
    "Column",
    "ForeignKey",
    "Parameter",
    "Routine",
    "SchemaCache",
    "Table",
    "read_catalog",
]
