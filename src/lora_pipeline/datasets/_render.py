"""How a DatasetReport looks in a terminal (rich) and in a notebook (HTML).

Both show the same two things: a compact summary (status, format, counts, tokens, duplicates, file identity)
and the first findings with their location, code, severity and message, most useful first.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table
from rich.text import Text

from lora_pipeline.datasets._findings import Finding, Severity

if TYPE_CHECKING:
    from rich.console import RenderableType

    from lora_pipeline.datasets._report import DatasetReport

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "dim"}
_COLOR = {Severity.ERROR: "#c62828", Severity.WARNING: "#b26a00", Severity.INFO: "#666"}
_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
_PLURAL = {Severity.ERROR: "errors", Severity.WARNING: "warnings", Severity.INFO: "info"}


def summary_rows(report: DatasetReport) -> list[tuple[str, str]]:
    """The summary as (label, value) pairs, shared by both renderings."""
    fmt = "unknown"
    if report.format:
        fmt = f"{report.format} ({report.format_source}, {report.format_confidence:.0%} of records)"
    counts = ", ".join(f"{report.counts_by_severity.get(s, 0):,} {_PLURAL[s]}" for s in Severity)
    rows = [
        ("status", "valid" if report.valid else "invalid"),
        ("file", f"{report.path} ({report.container})"),
        ("format", fmt),
        ("examples", f"{report.num_examples:,} of {report.num_records:,} records, {report.num_lines:,} lines"),
        ("findings", counts),
        ("tokens", _tokens_row(report)),
        ("duplicates", f"{report.duplicates:,}"),
        ("size", f"{report.size_bytes:,} bytes, sha256 {report.sha256[:16]}…"),
    ]
    if report.counts_by_code:
        by_code = sorted(report.counts_by_code.items(), key=lambda item: -item[1])
        rows.append(("by code", ", ".join(f"{code} {count:,}" for code, count in by_code)))
    return rows


def _tokens_row(report: DatasetReport) -> str:
    tokens = report.tokens
    if not tokens.count:
        return "none measured"
    text = (
        f"min {tokens.min:,} · mean {tokens.mean or 0:,.0f} · p50 {tokens.p50:,} · p95 {tokens.p95:,} · "
        f"max {tokens.max:,} ({tokens.method})"
    )
    if tokens.max_seq_len:
        text += f"; {tokens.over_max_seq_len:,} over max_seq_len {tokens.max_seq_len:,}"
    return text


def first_findings(report: DatasetReport, limit: int, *, per_code: int | None = None) -> list[Finding]:
    """Errors before warnings before info, each in file order; at most ``per_code`` of a code come first.

    With ``per_code``, a short list shows many kinds of problem rather than twenty lines of the same one; the
    remaining room is then filled in order.
    """
    ordered = sorted(report.findings, key=lambda f: _ORDER.get(Severity(f.severity), 3))
    if per_code is None:
        return ordered[:limit]
    seen: dict[str, int] = {}
    first_pass: list[int] = []
    rest: list[int] = []
    for index, finding in enumerate(ordered):
        count = seen.get(finding.code, 0)
        seen[finding.code] = count + 1
        (first_pass if count < per_code else rest).append(index)
    return [ordered[index] for index in sorted((first_pass + rest)[:limit])]


def render_rich(report: DatasetReport, *, max_findings: int = 10) -> RenderableType:
    """A summary grid and a findings table."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in summary_rows(report):
        style = ("green" if report.valid else "bold red") if label == "status" else ""
        summary.add_row(label, Text(value, style=style))
    parts: list[RenderableType] = [summary]
    shown = first_findings(report, max_findings, per_code=2)
    if shown:
        parts.append(_findings_table(shown))
    hidden = sum(report.counts_by_code.values()) - len(shown)
    if hidden > 0:
        parts.append(Text(f"… and {hidden:,} more findings (report.findings, report.counts_by_code)", style="dim"))
    return Group(*parts)


def _findings_table(findings: list[Finding]) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False)
    for column in ("line", "path", "code", "severity", "message"):
        table.add_column(column, overflow="fold")
    hinted: set[str] = set()
    for finding in findings:
        severity = Severity(finding.severity)
        message = finding.message
        if finding.hint and finding.code not in hinted:  # a code's hint once is enough
            hinted.add(finding.code)
            message += f"\n→ {finding.hint}"
        line = "file" if finding.line is None else str(finding.line)
        table.add_row(line, finding.path, str(finding.code), Text(severity, style=_STYLE[severity]), message)
    return table


def render_html(report: DatasetReport) -> str:
    """A self-contained HTML fragment for notebooks: summary, then every stored finding."""
    esc = html.escape
    rows = "".join(
        f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in summary_rows(report)
    )
    parts = [f"<div class='lora-dataset-report'><table>{rows}</table>"]
    findings = first_findings(report, len(report.findings))
    if findings:
        head = "".join(f"<th>{c}</th>" for c in ("line", "offset", "path", "code", "severity", "message", "hint"))
        body = "".join(_html_row(finding) for finding in findings)
        parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    if report.findings_omitted > 0:
        parts.append(f"<p><em>{report.findings_omitted:,} more findings counted, not stored.</em></p>")
    parts.append("</div>")
    return "".join(parts)


def _html_row(finding: Finding) -> str:
    esc = html.escape
    severity = Severity(finding.severity)
    cells = [
        "file" if finding.line is None else str(finding.line),
        "" if finding.offset is None else str(finding.offset),
        finding.path,
        str(finding.code),
    ]
    tds = "".join(f"<td>{esc(cell)}</td>" for cell in cells)
    tds += f"<td style='color:{_COLOR[severity]}'>{esc(severity)}</td>"
    tds += f"<td>{esc(finding.message)}</td><td>{esc(finding.hint or '')}</td>"
    return f"<tr>{tds}</tr>"


__all__ = ["first_findings", "render_html", "render_rich", "summary_rows"]
