"""Reads: ``select=``/filters/order/range as the SELECT PostgREST builds, embeds resolved from foreign keys,
and the plan for ``GET``/``HEAD /<relation>`` (research §4.4).

A plan reads from a table, a view, or the ``pgrst_source`` CTE of a mutation or function call. Embeds follow
many-to-one keys (the parent holds the key) and one-to-many keys (the child holds it; one-to-one when the
child's key columns are unique), named by target table, constraint or key column, with ``!hint`` to choose
(none: PGRST200, several: PGRST201). To-one embeds become ``LEFT JOIN LATERAL (...) ON TRUE`` + ``row_to_json``,
to-many embeds a lateral ``json_agg`` capped at db-max-rows like every read node; ``!inner`` makes them inner
joins. Many-to-many through junction tables and relationships of views are not resolved. RLS applies to every
table read.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import partial

from .errors import ApiError, no_relationship
from .fragments import EmbedTests, Frag, condition, ident, join, limit_offset, order_by, qualified, select_field
from .query_params import QueryParams
from .responses import ResultRow, read_response
from .schema_cache import Catalog, ForeignKey, Table
from .statements import Context, Prepared, read_statement, singular_check
from .syntax import EmbedScope, Range, SelectEmbed, SelectField

SOURCE = '"pgrst_source"'
"""How plans over a mutation's or a function's result qualify its columns."""


@dataclass(frozen=True)
class Relationship:
    """How ``child`` rows join a ``parent`` row: ``child.child_columns = parent.parent_columns``."""

    child: Table
    parent_columns: tuple[str, ...]
    child_columns: tuple[str, ...]
    to_one: bool
    constraint: ForeignKey
    cardinality: str


def resolve(parent: Table, relation: str, hint: str | None, tables: dict[tuple[str, str], Table]) -> Relationship:
    """The one relationship ``parent`` -> ``relation`` (optionally disambiguated by ``hint``)."""
    candidates = [r for r in _candidates(parent, relation, tables) if hint is None or _matches_hint(r, hint)]
    if not candidates:
        raise no_relationship(parent.name, relation, parent.schema, hint)
    if len(candidates) > 1:
        raise _ambiguous(parent, relation, candidates)
    return candidates[0]


def _candidates(parent: Table, relation: str, tables: dict[tuple[str, str], Table]) -> list[Relationship]:
    found: list[Relationship] = []
    for fk in parent.foreign_keys:  # many-to-one: the parent references the child
        target = tables.get((parent.schema, fk.target))
        named = relation in (fk.target, fk.name) or (len(fk.columns) == 1 and relation == fk.columns[0])
        if target is not None and named:
            found.append(Relationship(target, fk.columns, fk.target_columns, True, fk, "many-to-one"))
    child = tables.get((parent.schema, relation))
    if child is None:
        return found
    for fk in child.foreign_keys:  # one-to-many: the child references the parent
        if fk.target == parent.name:
            one = child.is_unique(fk.columns)
            found.append(
                Relationship(child, fk.target_columns, fk.columns, one, fk, "one-to-one" if one else "one-to-many")
            )
    return found


def _matches_hint(relationship: Relationship, hint: str) -> bool:
    fk = relationship.constraint
    return hint == fk.name or hint in fk.columns or hint in fk.target_columns


def _ambiguous(parent: Table, relation: str, candidates: list[Relationship]) -> ApiError:
    details = [
        {
            "cardinality": r.cardinality,
            "embedding": f"{parent.name} with {r.child.name}",
            "relationship": f"{r.constraint.name} using {r.constraint.table}({', '.join(r.constraint.columns)}) and "
            f"{r.constraint.target}({', '.join(r.constraint.target_columns)})",
        }
        for r in candidates
    ]
    options = ", ".join(f"'{relation}!{r.constraint.name}'" for r in candidates)
    return ApiError(
        300,
        "PGRST201",
        f"Could not embed because more than one relationship was found for '{parent.name}' and '{relation}'",
        details=details,
        hint=f"Try changing '{relation}' to one of the following: {options}. Find the desired "
        "relationship in the 'details' key.",
    )


@dataclass
class ReadPlan:
    """One SELECT node: what to read, from where, and the embeds hanging off it."""

    source: str
    qualifier: str
    table: Table | None
    fields: list[SelectField]
    scope: EmbedScope
    embeds: list[EmbedPlan] = field(default_factory=list)
    join_conditions: list[str] = field(default_factory=list)


@dataclass
class EmbedPlan:
    name: str
    alias: str
    to_one: bool
    inner: bool
    child: ReadPlan
    parent_columns: tuple[str, ...]


@dataclass
class PlanContext:
    """What resolving a select tree needs: the catalog's tables, the query's embed scopes, max-rows."""

    tables: dict[tuple[str, str], Table]
    params: QueryParams
    max_rows: int | None
    aliases: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    used_paths: set[tuple[str, ...]] = field(default_factory=set)


def build_read_plan(context: PlanContext, table: Table | None, source: str, qualifier: str, range_: Range) -> ReadPlan:
    """The root node; ``range_`` is the top-level range (already intersected with the Range header)."""
    params = context.params
    scope = EmbedScope(params.root.conditions, params.root.order, range_.restricted(context.max_rows))
    plan = _node(context, table, source, qualifier, params.select, scope, ())
    unused = set(params.embeds) - context.used_paths
    if unused:
        name = ".".join(sorted(unused)[0])
        raise ApiError(
            400,
            "PGRST108",
            f"'{name}' is not an embedded resource in this request",
            hint=f"Verify that '{name}' is included in the 'select' query parameter.",
        )
    return plan


def _node(
    context: PlanContext,
    table: Table | None,
    source: str,
    qualifier: str,
    items: tuple[SelectField | SelectEmbed, ...],
    scope: EmbedScope,
    path: tuple[str, ...],
) -> ReadPlan:
    fields = [item for item in items if isinstance(item, SelectField)]
    if any(f.aggregate for f in fields):
        raise ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")
    plan = ReadPlan(source, qualifier, table, fields, scope)
    for item in items:
        if isinstance(item, SelectEmbed):
            plan.embeds.append(_embed(context, plan, item, path))
    return plan


def _embed(context: PlanContext, parent: ReadPlan, item: SelectEmbed, path: tuple[str, ...]) -> EmbedPlan:
    if item.spread:
        raise ApiError(400, "PGRST127", "Feature not implemented", details="Spread embeds are not supported")
    if parent.table is None:
        raise ApiError(
            400,
            "PGRST200",
            f"Could not find a relationship between the result and '{item.relation}' in the schema cache",
        )
    relation = resolve(parent.table, item.relation, item.hint, context.tables)
    alias = f"pgrst_{next(context.aliases)}"
    child_path = (*path, item.name)
    scope = _child_scope(context, path, item, relation.to_one)
    child_qualifier = ident(alias + "_t")
    child_source = f"{ident(relation.child.schema)}.{ident(relation.child.name)} AS {child_qualifier}"
    child = _node(context, relation.child, child_source, child_qualifier, item.items, scope, child_path)
    child.join_conditions = [
        f"{child_qualifier}.{ident(c)} = {parent.qualifier}.{ident(p)}"
        for c, p in zip(relation.child_columns, relation.parent_columns, strict=True)
    ]
    return EmbedPlan(item.name, alias, relation.to_one, item.inner, child, relation.parent_columns)


def _child_scope(context: PlanContext, path: tuple[str, ...], item: SelectEmbed, to_one: bool) -> EmbedScope:
    scope = EmbedScope()
    for key in {(*path, item.name), (*path, item.relation)}:
        if key in context.params.embeds:
            context.used_paths.add(key)
            found = context.params.embeds[key]
            scope.conditions += found.conditions
            scope.order = scope.order or found.order
            scope.range = found.range if not found.range.is_all else scope.range
    if not to_one:
        scope.range = scope.range.restricted(context.max_rows)
    return scope


# -- SQL --------------------------------------------------------------------------------------------------------


def compile_read(plan: ReadPlan, type_names: frozenset[tuple[str, str]]) -> Frag:
    """``SELECT items FROM source [joins] WHERE ... ORDER BY ... LIMIT ... OFFSET ...``."""
    items: list[Frag | str] = [select_field(plan.qualifier, f, type_names) for f in plan.fields]
    joins: list[Frag] = []
    for embed in plan.embeds:
        item, joined = _embed_sql(embed, type_names)
        items.append(item)
        joins.append(joined)
    if not items:
        items = [f"{plan.qualifier}.*"]
    tests = {e.name: _lateral_tests(e) for e in plan.embeds}
    sql = "SELECT " + join(", ", items) + f" FROM {plan.source}" + join("", joins)
    return sql + _where(plan, tests) + _tail(plan)


def _embed_sql(embed: EmbedPlan, type_names: frozenset[tuple[str, str]]) -> tuple[str, Frag]:
    alias = ident(embed.alias)
    kind = "INNER" if embed.inner else "LEFT"
    child = compile_read(embed.child, type_names)
    if embed.to_one:
        return (
            f"row_to_json({alias}.*)::jsonb AS {ident(embed.name)}",
            f" {kind} JOIN LATERAL (" + child + f") AS {alias} ON TRUE",
        )
    on = f"{alias} IS NOT NULL" if embed.inner else "TRUE"
    return (
        f"COALESCE({alias}.{alias}, '[]') AS {ident(embed.name)}",
        f" {kind} JOIN LATERAL (SELECT json_agg({alias})::jsonb AS {alias} FROM ("
        + child
        + f") AS {alias}) AS {alias} ON {on}",
    )


def _lateral_tests(embed: EmbedPlan) -> tuple[Frag, Frag]:
    alias = ident(embed.alias)
    return Frag(f"{alias} IS DISTINCT FROM NULL"), Frag(f"{alias} IS NOT DISTINCT FROM NULL")


def _where(plan: ReadPlan, tests: EmbedTests, extra: list[Frag] | None = None) -> Frag:
    conditions = [condition(plan.qualifier, c, tests) for c in plan.scope.conditions]
    conditions += [Frag(c) for c in plan.join_conditions] + (extra or [])
    return " WHERE " + join(" AND ", conditions) if conditions else Frag()


def _tail(plan: ReadPlan) -> Frag:
    order = order_by(plan.qualifier, plan.scope.order)
    paging = limit_offset(plan.scope.range.limit, plan.scope.range.offset)
    return (" " + order if order else Frag()) + (" " + paging if paging else Frag())


def compile_count(plan: ReadPlan) -> Frag:
    """``SELECT 1 FROM source WHERE ...`` without paging; ``!inner`` embeds become ``EXISTS`` tests."""
    tests = {e.name: _exists_tests(e) for e in plan.embeds}
    inner = [tests[e.name][0] for e in plan.embeds if e.inner]
    return f"SELECT 1 FROM {plan.source}" + _where(plan, tests, inner)


def _exists_tests(embed: EmbedPlan) -> tuple[Frag, Frag]:
    exists = "EXISTS (" + compile_count(embed.child) + ")"
    return exists, "NOT " + exists


def returning_columns(plan: ReadPlan, primary_key: tuple[str, ...]) -> list[str] | None:
    """Columns a mutation must RETURN for this select (``None`` = all): selected, join keys, primary key."""
    names = [f.field.name for f in plan.fields]
    if "*" in names:
        return None
    for embed in plan.embeds:
        names += embed.parent_columns
    return list(dict.fromkeys(names + list(primary_key)))


def plan_read(ctx: Context, catalog: Catalog, table: Table, params: QueryParams, top: Range) -> Prepared:
    name = qualified(table.schema, table.name)
    plan = build_read_plan(PlanContext(catalog.tables, params, ctx.max_rows), table, name, name, top)
    source = compile_read(plan, catalog.type_names)
    count_mode = ctx.prefs.count
    count = compile_count(plan) if count_mode in ("exact", "estimated") else None
    if count is not None and count_mode == "estimated":
        count = count + f" LIMIT {ctx.max_rows + 1}"
    respond = partial(
        read_response, top=top, content_type=ctx.media.content_type, head=ctx.head, applied=ctx.prefs.applied("count")
    )
    return Prepared(
        read_statement(source, count, ctx.media.rendering),
        True,
        ResultRow.from_read,
        respond,
        singular_check(ctx.media),
        planned_count=compile_count(plan) if count_mode in ("planned", "estimated") else None,
        estimate_above=ctx.max_rows if count_mode == "estimated" else None,
    )


__all__ = [
    "SOURCE",
    "EmbedPlan",
    "PlanContext",
    "ReadPlan",
    "Relationship",
    "build_read_plan",
    "compile_count",
    "compile_read",
    "plan_read",
    "resolve",
    "returning_columns",
]
