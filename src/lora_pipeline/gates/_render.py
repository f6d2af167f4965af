"""How a :class:`GateReport` looks: a rich table for terminals and an HTML table for notebooks.

Colour follows each result's effect on the decision, not its raw status, so a failing ``info`` condition
reads as "recorded" rather than as a red alarm.
"""

from __future__ import annotations

import html
import io
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._enums import Decision

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ._report import ConditionResult, GateReport

_RICH_STYLE = {Decision.BLOCK: "bold red", Decision.WARN: "yellow", Decision.PASS: "green"}
_HTML_COLOUR = {Decision.BLOCK: "#c0392b", Decision.WARN: "#b9770e", Decision.PASS: "#1e8449"}
_RECORDED_STYLE, _RECORDED_COLOUR = "dim", "#7f8c8d"
_COLUMNS = ("condition", "status", "effect", "actual", "baseline", "delta", "ratio", "message")
_ALWAYS = frozenset({"condition", "status", "effect", "message"})


def cells(result: ConditionResult) -> tuple[str, ...]:
    """One result as the text of each column in ``_COLUMNS``."""
    baseline = _number(result.baseline)
    if result.baseline_source is not None and result.baseline is not None:
        baseline += f" ({result.baseline_source.value})"
    condition = f"{result.metric} {result.kind.value} [{result.severity.value}]"
    effect = "recorded" if result.recorded_only else result.effect.value
    return (
        condition,
        result.status.value,
        effect,
        _number(result.actual),
        baseline,
        _number(result.delta),
        _number(result.ratio),
        result.message,
    )


def rich_renderables(report: GateReport) -> Iterator[RenderableType]:
    """The table (when there are results) and the summary line, for ``__rich_console__``."""
    from rich.table import Table
    from rich.text import Text

    if report.results:
        rows = [cells(result) for result in report.results]
        # Columns empty in every row (no baseline, delta or ratio anywhere) are left out to save width.
        shown = [i for i, name in enumerate(_COLUMNS) if name in _ALWAYS or any(row[i] for row in rows)]
        table = Table(title="regression gate", title_justify="left", show_lines=False)
        for i in shown:
            table.add_column(
                _COLUMNS[i],
                overflow="fold",
                no_wrap=_COLUMNS[i] not in ("condition", "message"),  # these two give way on a narrow terminal
                min_width=24 if _COLUMNS[i] == "message" else None,
            )
        for result, row in zip(report.results, rows, strict=True):
            style = _RECORDED_STYLE if result.recorded_only else _RICH_STYLE[result.effect]
            # Text, not str: a metric or message with "[...]" must not be read as rich markup.
            table.add_row(*(Text(row[i]) for i in shown), style=style)
        yield table
    yield Text(report.summary, style=_RICH_STYLE[report.decision])


def render_text(report: GateReport, *, width: int) -> str:
    """The rich rendering as plain text (no colour codes), for logs and CLI output."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, highlight=False)
    for renderable in rich_renderables(report):
        console.print(renderable)
    return buffer.getvalue()


def render_html(report: GateReport) -> str:
    """An HTML table and summary for Jupyter's ``_repr_html_``; every value is escaped."""
    colour = _HTML_COLOUR[report.decision]
    summary = f'<p style="color:{colour};font-weight:bold">{html.escape(report.summary)}</p>'
    if not report.results:
        return f"<div>{summary}</div>"
    head = "".join(f"<th style='text-align:left'>{name}</th>" for name in _COLUMNS)
    rows = "".join(_html_row(result) for result in report.results)
    return f"<div>{summary}<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>"


def _html_row(result: ConditionResult) -> str:
    colour = _RECORDED_COLOUR if result.recorded_only else _HTML_COLOUR[result.effect]
    tds = "".join(f"<td>{html.escape(text)}</td>" for text in cells(result))
    return f'<tr style="color:{colour}">{tds}</tr>'


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


__all__ = ["cells", "render_html", "render_text", "rich_renderables"]
