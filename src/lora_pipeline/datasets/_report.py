"""The result of validating a dataset file: counts, token statistics, duplicates and findings.

It is what ``lp.datasets.validate`` returns, what the upload stores in ``datasets.validation_report``, and what
the CLI prints (``--json`` dumps it). The file's size and SHA-256 were computed while validating, so the upload
need not read the file a second time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field, computed_field

from lora_pipeline._exceptions import DatasetValidationError
from lora_pipeline.datasets._findings import Finding, Severity
from lora_pipeline.datasets.formats import DatasetFormat

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult


class TokenStats(BaseModel):
    """Token lengths of the valid examples."""

    method: Literal["estimate", "tokenizer"] = Field(
        description="`estimate`: ~4 characters per token plus 4 per turn; `tokenizer`: counted by the tokenizer."
    )
    count: int = Field(0, description="Examples measured.")
    min: int | None = None
    mean: float | None = None
    p50: int | None = None
    p90: int | None = None
    p95: int | None = None
    p99: int | None = None
    max: int | None = None
    max_seq_len: int | None = Field(None, description="The limit examples were compared with, if any.")
    over_max_seq_len: int = Field(0, description="Examples longer than max_seq_len (dropped or truncated).")


class DuplicatePair(BaseModel):
    """An example whose training content repeats an earlier one."""

    line: int
    first_line: int


class DatasetReport(BaseModel):
    """What validating one dataset file found. ``valid`` when there is no error finding.

    Example::

        report = validate_file("train.jsonl", max_seq_len=2048)
        print(report.summary())
        report.raise_for_errors()
    """

    path: str = Field(description="The file validated.")
    format: DatasetFormat | None = Field(description="The file's format; None when none could be told.")
    format_source: Literal["given", "detected"] = "detected"
    format_confidence: float = Field(0.0, description="Share of records whose own keys match `format` (0-1).")
    formats_seen: dict[str, int] = Field(default_factory=dict, description="Records per format their keys match.")
    container: Literal["jsonl", "json_array"] = "jsonl"
    size_bytes: int = 0
    sha256: str = Field("", description="Hex SHA-256 of the file's bytes, computed while validating.")
    num_lines: int = Field(0, description="Physical lines in the file.")
    num_blank_lines: int = 0
    num_records: int = Field(0, description="JSON values read (objects or not).")
    num_examples: int = Field(0, description="Records of the file's format with no error: what would train.")
    counts_by_severity: dict[Severity, int] = Field(default_factory=dict)
    counts_by_code: dict[str, int] = Field(default_factory=dict, description="Every finding counted, stored or not.")
    tokens: TokenStats
    duplicates: int = Field(0, description="Examples repeating the training content of an earlier one.")
    duplicate_pairs: list[DuplicatePair] = Field(default_factory=list, description="The first few duplicates.")
    findings: list[Finding] = Field(default_factory=list, description="The first findings of each code.")
    findings_per_code_cap: int = 20
    min_examples: int = 10
    recommended_examples: int = 50
    elapsed_seconds: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def valid(self) -> bool:
        """No error findings: the file can be uploaded and trained on."""
        return self.error_count == 0

    @property
    def ok(self) -> bool:
        """Alias of ``valid``."""
        return self.valid

    @property
    def error_count(self) -> int:
        """Error findings, stored or not."""
        return self.counts_by_severity.get(Severity.ERROR, 0)

    @property
    def warning_count(self) -> int:
        """Warning findings, stored or not."""
        return self.counts_by_severity.get(Severity.WARNING, 0)

    @property
    def findings_omitted(self) -> int:
        """Findings counted but not stored (over the per-code cap)."""
        return sum(self.counts_by_code.values()) - len(self.findings)

    def errors(self) -> list[Finding]:
        """The stored error findings."""
        return [finding for finding in self.findings if finding.severity is Severity.ERROR]

    def findings_of(self, code: str) -> list[Finding]:
        """The stored findings of one code (``report.counts_by_code[code]`` counts them all)."""
        return [finding for finding in self.findings if finding.code == code]

    def summary(self) -> str:
        """One line: status, format, examples, error and warning counts, token percentiles, size."""
        status = "✓ valid" if self.valid else "✗ invalid"
        fmt = f"{self.format} ({self.format_confidence:.0%})" if self.format else "unknown format"
        parts = [
            f"{status}: {self.path}",
            fmt,
            f"{self.num_examples:,} examples",
            f"{self.error_count:,} errors",
            f"{self.warning_count:,} warnings",
        ]
        if self.tokens.count:
            parts.append(f"tokens p50 {self.tokens.p50:,} / p95 {self.tokens.p95:,} / max {self.tokens.max:,}")
        if self.duplicates:
            parts.append(f"{self.duplicates:,} duplicate{'s' if self.duplicates > 1 else ''}")
        size = self.size_bytes
        parts.append(f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size:,} bytes")
        return ", ".join(parts)

    def raise_for_errors(self) -> DatasetReport:
        """Raise :class:`DatasetValidationError` naming the first errors; return the report when valid.

        Raises:
            DatasetValidationError: the report has error findings; ``.report`` is this report.
        """
        if self.valid:
            return self
        shown = self.errors()[:5]
        listed = "; ".join(f"{f.location()}: {f.code} ({f.message})" for f in shown)
        more = self.error_count - len(shown)
        tail = f"; and {more:,} more" if more > 0 else ""
        message = f"{self.path} failed validation with {self.error_count:,} error(s): {listed}{tail}"
        raise DatasetValidationError(message, report=self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The report as JSON (what ``--json`` prints and ``datasets.validation_report`` stores)."""
        return self.model_dump_json(indent=indent)

    def render(self, *, max_findings: int = 10) -> RenderableType:
        """A rich renderable: a summary table, then the first ``max_findings`` findings."""
        from lora_pipeline.datasets._render import render_rich

        return render_rich(self, max_findings=max_findings)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.render()

    def _repr_html_(self) -> str:
        from lora_pipeline.datasets._render import render_html

        return render_html(self)

    def __str__(self) -> str:
        return self.summary()


__all__ = ["DatasetReport", "DuplicatePair", "TokenStats"]
