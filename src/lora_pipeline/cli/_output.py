"""How commands print objects: a table for people, ``--json`` for programs, ``-q`` for shell loops.

- ``--json``: one JSON document on stdout (an object, or a list for list commands).
- ``-q/--quiet``: ids only, one per line (``for id in $(lora-pipeline jobs list -q); do ...``).
- otherwise a table with a header. On a terminal it is a Rich table; when stdout is a pipe or a file it is
  plain, space-aligned text that is never wrapped or truncated, so ids survive ``grep`` and ``awk``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import typer

from ._common import console, echo_json, stdout_is_terminal

JsonOpt = typer.Option(False, "--json", help="print one JSON document instead of a table")
QuietOpt = typer.Option(False, "--quiet", "-q", help="print only ids, one per line")

Column = tuple[str, Callable[[Any], object]]
"""A table column: its header and how to read the cell from an object."""


def as_json(item: Any) -> Any:
    """A JSON-ready value for a pydantic model (or a plain value)."""
    dump = getattr(item, "model_dump", None)
    return dump(mode="json") if callable(dump) else item


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def render_table(columns: Sequence[Column], items: Iterable[Any], *, title: str | None = None) -> None:
    """Print ``items`` as a table with a header (see the module docstring for terminal vs pipe)."""
    headers = [name for name, _ in columns]
    cells = [[_cell(read(item)) for _, read in columns] for item in items]
    if stdout_is_terminal():
        from rich.table import Table
        from rich.text import Text

        table = Table(*headers, title=title, box=None, header_style="bold", pad_edge=False)
        for column in table.columns:
            column.no_wrap = True  # never wrap an id; Rich folds the widest free-text column instead
        if table.columns:
            table.columns[-1].no_wrap = False
        for row in cells:
            table.add_row(*(Text(value) for value in row))
        console.print(table)
        return
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    if title:
        typer.echo(f"# {title}")
    for row in [headers, *cells]:
        typer.echo("  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())


def key_values(pairs: Sequence[tuple[str, str]]) -> Any:
    """A two-column record: a Rich table on a terminal, plain ``label  value`` lines (never cut) in a pipe."""
    if stdout_is_terminal():
        from rich.table import Table
        from rich.text import Text

        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for label, value in pairs:
            table.add_row(Text(label), Text(value))
        return table
    width = max((len(label) for label, _ in pairs), default=0)
    return "\n".join(f"{label.ljust(width)}  {value}" for label, value in pairs)


def emit_list(
    items: Sequence[Any],
    columns: Sequence[Column],
    *,
    json_out: bool,
    quiet: bool,
    ids: Callable[[Any], str] = lambda item: str(item.id),
    empty: str = "nothing to list",
) -> None:
    """Print a list result in the form the options ask for."""
    if json_out:
        echo_json([as_json(item) for item in items])
    elif quiet:
        for item in items:
            typer.echo(ids(item))
    elif not items:
        console.print(f"# {empty}")
    else:
        render_table(columns, items)


def emit_one(
    item: Any,
    *,
    json_out: bool,
    quiet: bool,
    text: Callable[[Any], object],
    ident: Callable[[Any], str] = lambda item: str(item.id),
) -> None:
    """Print a single object: JSON, its id alone, or ``text(item)`` (a string or a Rich renderable)."""
    if json_out:
        echo_json(as_json(item))
    elif quiet:
        typer.echo(ident(item))
    else:
        shown = text(item)
        console.print(shown, markup=False) if isinstance(shown, str) else console.print(shown)


__all__ = ["Column", "JsonOpt", "QuietOpt", "as_json", "emit_list", "emit_one", "key_values", "render_table"]
