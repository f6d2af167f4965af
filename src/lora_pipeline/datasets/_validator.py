"""``validate_file``: one streaming pass over a dataset file that reports everything wrong with it.

The pass reads each record once and runs, in order: format detection, the format's field checks (which also
estimate tokens), the type-consistency check, then, for records without errors, token statistics and duplicate
detection. Memory is bounded by the finding cap, the type table, the token histogram and the duplicate table
(research/tracking.md §3.6), never by the file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lora_pipeline.datasets._consistency import TypeTracker
from lora_pipeline.datasets._dedup import DEFAULT_MAX_ENTRIES, SeenHashes, training_key
from lora_pipeline.datasets._findings import FindingCode, FindingCollector, Severity
from lora_pipeline.datasets._reader import RecordReader
from lora_pipeline.datasets._report import DatasetReport, DuplicatePair, TokenStats
from lora_pipeline.datasets._schema import RecordContext, check_record, json_kind
from lora_pipeline.datasets._tokens import TokenCounter, TokenHistogram, Tokenizer
from lora_pipeline.datasets.formats import DatasetFormat, detect_format, to_messages

DEFAULT_MAX_LINE_BYTES = 10 * 1024 * 1024
PROGRESS_EVERY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ValidationOptions:
    """The knobs of one validation run (see :func:`validate_file`)."""

    format: DatasetFormat | None = None
    max_seq_len: int | None = None
    tokenizer: Tokenizer | None = None
    min_examples: int = 10
    recommended_examples: int = 50
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_findings_per_code: int = 20
    check_duplicates: bool = True
    max_tracked_examples: int = DEFAULT_MAX_ENTRIES
    on_progress: Callable[[int, int], None] | None = None


def validate_file(
    path: str | os.PathLike[str],
    *,
    format: DatasetFormat | str = "auto",
    max_seq_len: int | None = None,
    tokenizer: Tokenizer | None = None,
    min_examples: int = 10,
    recommended_examples: int = 50,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    max_findings_per_code: int = 20,
    check_duplicates: bool = True,
    max_tracked_examples: int = DEFAULT_MAX_ENTRIES,
    on_progress: Callable[[int, int], None] | None = None,
) -> DatasetReport:
    """Validate a JSONL or JSON-array dataset file in one streaming pass, in constant memory.

    Every problem becomes a finding with its line, byte offset and JSON path; the pass never stops at the first
    error. Needs no client and no network.

    Args:
        path: the file.
        format: ``"auto"`` to detect it (the format most records match), or one of ``DatasetFormat``.
        max_seq_len: warn about examples longer than this many tokens.
        tokenizer: count tokens exactly with this (a Hugging Face tokenizer's chat template, or any ``encode``);
            without one, tokens are estimated at ~4 characters each.
        min_examples: fewer valid examples is an error; ``recommended_examples``: fewer is a warning.
        max_line_bytes: longer lines (or array elements) are errors and are skipped unread.
        max_findings_per_code: findings stored per code; all are counted.
        check_duplicates: look for examples with the same training content.
        max_tracked_examples: stop adding to the duplicate table past this many (bounds its memory).
        on_progress: called as ``on_progress(bytes_read, total_bytes)`` every few MB.

    Returns:
        The :class:`DatasetReport`; ``report.valid`` is False when there is any error finding.

    Raises:
        FileNotFoundError: no such file. ValueError: an unknown ``format``.

    Example::

        report = validate_file("train.jsonl", max_seq_len=2048)
        print(report.summary())
    """
    options = ValidationOptions(
        format=_parse_format(format),
        max_seq_len=max_seq_len,
        tokenizer=tokenizer,
        min_examples=min_examples,
        recommended_examples=recommended_examples,
        max_line_bytes=max_line_bytes,
        max_findings_per_code=max_findings_per_code,
        check_duplicates=check_duplicates,
        max_tracked_examples=max_tracked_examples,
        on_progress=on_progress,
    )
    return Validation(path, options).run()


def _parse_format(value: DatasetFormat | str) -> DatasetFormat | None:
    if value == "auto":
        return None
    try:
        return DatasetFormat(value)
    except ValueError:
        allowed = ", ".join(["auto", *DatasetFormat])
        raise ValueError(f"format={value!r} is not a dataset format; use one of: {allowed}") from None


class Validation:
    """The state of one pass: the reader, the checks' memories and the counters they fill."""

    def __init__(self, path: str | os.PathLike[str], options: ValidationOptions) -> None:
        self.path = os.fspath(path)
        self.options = options
        self.total_bytes = os.stat(self.path).st_size
        self.collector = FindingCollector(options.max_findings_per_code)
        self.ctx = RecordContext(self.collector)
        self.reader = RecordReader(self.path, max_line_bytes=options.max_line_bytes, sink=self.collector.add)
        self.types = TypeTracker()
        self.seen = SeenHashes(options.max_tracked_examples) if options.check_duplicates else None
        self.histogram = TokenHistogram()
        self.counter = TokenCounter(options.tokenizer) if options.tokenizer is not None else None
        self.expected = options.format
        self.format_counts: dict[DatasetFormat, int] = {}
        self.format_lines: dict[DatasetFormat, list[tuple[int, int]]] = {}
        self.examples_by_format: dict[DatasetFormat, int] = {}
        self.num_records = 0
        self.over_max_seq_len = 0
        self.duplicate_pairs: list[DuplicatePair] = []
        self.duplicates = 0

    def run(self) -> DatasetReport:
        """Read the whole file, then settle the format and the file-level findings."""
        started = time.perf_counter()
        on_progress, next_tick = self.options.on_progress, PROGRESS_EVERY_BYTES
        for line, offset, value in self.reader:
            self.record(line, offset, value)
            if on_progress is not None and offset >= next_tick:
                on_progress(offset, self.total_bytes)
                next_tick = offset + PROGRESS_EVERY_BYTES
        if on_progress is not None:
            on_progress(self.reader.size_bytes, self.total_bytes)
        fmt = self._settle_format()
        self._check_file_level(fmt)
        return self._report(fmt, time.perf_counter() - started)

    def record(self, line: int, offset: int, value: Any) -> None:
        """Check one JSON value read from the file."""
        ctx = self.ctx
        ctx.line, ctx.offset = line, offset
        self.num_records += 1
        if type(value) is not dict:
            self._not_an_object(value)
            return
        errors_before = self.collector.errors
        fmt = self._record_format(value)
        estimate = check_record(value, fmt, ctx) if fmt is not None else 0
        self.types.observe(value, ctx)
        if fmt is None or self.collector.errors != errors_before:
            return
        self.examples_by_format[fmt] = self.examples_by_format.get(fmt, 0) + 1
        self._measure(value, fmt, estimate)
        if self.seen is not None:
            self._deduplicate(self.seen, value, line)

    def _not_an_object(self, value: Any) -> None:
        is_turns = type(value) is list and bool(value) and type(value[0]) is dict and "role" in value[0]
        hint = 'this looks like a list of turns: wrap it as {"messages": [...]}' if is_turns else None
        message = f"expected a JSON object, got {json_kind(value)}: {{value}}"
        self.ctx.emit(FindingCode.NOT_AN_OBJECT, "", message, value, hint=hint)

    def _record_format(self, record: dict[str, Any]) -> DatasetFormat | None:
        """The format to check ``record`` against, or None (after reporting why there is none)."""
        if "chosen" in record and "rejected" in record:
            message = "chosen/rejected pair: preference data, not supervised fine-tuning examples"
            self.ctx.emit(FindingCode.PREFERENCE_DATA, "", message)
            return None
        own = DatasetFormat.CHAT if "messages" in record else detect_format(record)
        if own is None:
            if self.expected is None:
                message = "no known format has these keys: {value}"
                self.ctx.emit(FindingCode.UNKNOWN_FORMAT, "", message, sorted(record)[:8])
            return self.expected  # checking against it reports the missing key fields
        self._count_format(own)
        if self.options.format is not None and own is not self.options.format:
            message = f"this record is {own}, but the file's format is {self.options.format}"
            self.ctx.emit(FindingCode.MIXED_FORMATS, "", message)
            return None
        if self.expected is None:
            self.expected = own
        return own

    def _count_format(self, fmt: DatasetFormat) -> None:
        self.format_counts[fmt] = self.format_counts.get(fmt, 0) + 1
        lines = self.format_lines.setdefault(fmt, [])
        if len(lines) < self.collector.cap_per_code:
            lines.append((self.ctx.line, self.ctx.offset))

    def _measure(self, record: dict[str, Any], fmt: DatasetFormat, estimate: int) -> None:
        tokens = estimate
        if self.counter is not None:
            tokens, failure = self.counter.count(to_messages(record, fmt))
            if failure:
                self.ctx.emit(FindingCode.CHAT_TEMPLATE_FAILED, "", "chat template failed: {value}", failure)
        self.histogram.add(tokens)
        limit = self.options.max_seq_len
        if limit is not None and tokens > limit:
            self.over_max_seq_len += 1
            how = "estimated" if self.counter is None else "counted"
            message = f"{tokens:,} tokens ({how}) is over max_seq_len {limit:,}"
            self.ctx.emit(FindingCode.TOO_LONG_TOKENS, "", message)

    def _deduplicate(self, seen: SeenHashes, record: dict[str, Any], line: int) -> None:
        first_line = seen.add(training_key(record), line)
        if first_line:
            self.duplicates += 1
            if len(self.duplicate_pairs) < self.collector.cap_per_code:
                self.duplicate_pairs.append(DuplicatePair(line=line, first_line=first_line))
            message = f"same training content as line {first_line}"
            self.ctx.emit(FindingCode.DUPLICATE_EXACT, "", message)

    def _settle_format(self) -> DatasetFormat | None:
        """The given format, or the one most records match; records of other formats are mixed_formats."""
        if self.options.format is not None or not self.format_counts:
            return self.options.format
        majority = max(self.format_counts, key=lambda fmt: self.format_counts[fmt])
        for fmt, count in self.format_counts.items():
            if fmt is majority:
                continue
            message = f"this record is {fmt}, but most of the file ({self.format_counts[majority]:,}) is {majority}"
            for line, offset in self.format_lines[fmt]:
                self.collector.add(FindingCode.MIXED_FORMATS, message, line=line, offset=offset)
            self.collector.add_uncounted_copies(
                FindingCode.MIXED_FORMATS, Severity.ERROR, count - len(self.format_lines[fmt])
            )
        return majority

    def _check_file_level(self, fmt: DatasetFormat | None) -> None:
        if self.reader.binary:
            return
        if self.num_records == 0 and self.collector.errors == 0:
            what = "empty" if self.reader.size_bytes == 0 else "without any example (blank lines or [])"
            self.collector.add(FindingCode.EMPTY_FILE, f"the file is {what}")
            return
        count, options = self.num_examples(fmt), self.options
        if count < options.recommended_examples:
            severity = Severity.ERROR if count < options.min_examples else Severity.WARNING
            message = (
                f"{count:,} valid examples; fine-tuning needs at least {options.min_examples:,} and does better "
                f"with {options.recommended_examples:,} or more"
            )
            self.collector.add(FindingCode.TOO_FEW_EXAMPLES, message, severity=severity)
        if self.seen is not None and self.seen.full:
            message = f"duplicates were tracked for the first {self.seen.max_entries:,} examples only"
            self.collector.add(FindingCode.DEDUP_LIMIT_REACHED, message)

    def num_examples(self, fmt: DatasetFormat | None) -> int:
        """Valid examples of the file's format."""
        return self.examples_by_format.get(fmt, 0) if fmt is not None else 0

    def _token_stats(self) -> TokenStats:
        histogram = self.histogram
        return TokenStats(
            method="estimate" if self.counter is None else "tokenizer",
            count=histogram.count,
            min=histogram.minimum,
            mean=histogram.total / histogram.count if histogram.count else None,
            p50=histogram.percentile(50),
            p90=histogram.percentile(90),
            p95=histogram.percentile(95),
            p99=histogram.percentile(99),
            max=histogram.maximum,
            max_seq_len=self.options.max_seq_len,
            over_max_seq_len=self.over_max_seq_len,
        )

    def _report(self, fmt: DatasetFormat | None, elapsed: float) -> DatasetReport:
        counted = sum(self.format_counts.values())
        return DatasetReport(
            path=self.path,
            format=fmt,
            format_source="detected" if self.options.format is None else "given",
            format_confidence=self.format_counts.get(fmt, 0) / counted if fmt is not None and counted else 0.0,
            formats_seen={str(k): v for k, v in self.format_counts.items()},
            container=self.reader.container,
            size_bytes=self.reader.size_bytes,
            sha256=self.reader.sha256,
            num_lines=self.reader.num_lines,
            num_blank_lines=self.reader.num_blank_lines,
            num_records=self.num_records,
            num_examples=self.num_examples(fmt),
            counts_by_severity=dict(self.collector.severity_counts),
            counts_by_code=dict(self.collector.counts),
            tokens=self._token_stats(),
            duplicates=self.duplicates,
            duplicate_pairs=self.duplicate_pairs,
            findings=self.collector.findings(),
            findings_per_code_cap=self.options.max_findings_per_code,
            min_examples=self.options.min_examples,
            recommended_examples=self.options.recommended_examples,
            elapsed_seconds=round(elapsed, 4),
        )


__all__ = ["DEFAULT_MAX_LINE_BYTES", "Validation", "ValidationOptions", "validate_file"]
