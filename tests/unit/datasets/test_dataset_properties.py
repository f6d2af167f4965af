"""Properties: valid chat data always validates; any bytes at all give a consistent report, never an exception."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from lora_pipeline.datasets import DatasetReport, iter_records, validate_file

content = st.text(min_size=1, max_size=40).filter(lambda text: not text.isspace())


@st.composite
def chat_records(draw: st.DrawFn) -> dict[str, Any]:
    messages = [{"role": "system", "content": draw(content)}] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        messages += [{"role": "user", "content": draw(content)}, {"role": "assistant", "content": draw(content)}]
    return {"messages": messages, **({"id": draw(st.integers())} if draw(st.booleans()) else {})}


def _validate_bytes(data: bytes, **options: Any) -> DatasetReport:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.jsonl"
        path.write_bytes(data)
        return validate_file(path, min_examples=0, recommended_examples=0, **options)


def _assert_counts_add_up(report: DatasetReport) -> None:
    assert sum(report.counts_by_code.values()) == sum(report.counts_by_severity.values())
    assert len(report.findings) == sum(min(n, report.findings_per_code_cap) for n in report.counts_by_code.values())
    assert report.valid == (report.counts_by_severity.get("error", 0) == 0)


@settings(max_examples=60, deadline=None)
@given(records=st.lists(chat_records(), min_size=1, max_size=15), ascii_only=st.booleans())
def test_valid_chat_records_always_validate(records: list[dict[str, Any]], ascii_only: bool) -> None:
    data = "".join(json.dumps(record, ensure_ascii=ascii_only) + "\n" for record in records).encode()
    report = _validate_bytes(data)
    assert report.valid, report.findings
    assert set(report.counts_by_code) <= {"duplicate_exact"}
    assert report.num_examples == report.num_records == report.num_lines == len(records)
    assert report.format == "chat" and report.format_confidence == 1.0
    contents = [json.dumps(record["messages"], sort_keys=True) for record in records]
    assert report.duplicates == len(contents) - len(set(contents))
    assert report.tokens.count == len(records)
    assert report.tokens.min is not None and report.tokens.max is not None
    assert report.tokens.min <= (report.tokens.p50 or 0) <= (report.tokens.p95 or 0) <= report.tokens.max
    _assert_counts_add_up(report)


lines = st.one_of(
    st.binary(max_size=30),
    st.just(b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'),
    st.just(b'{"text": 1}'),
    st.just(b"["),
    st.just(b"\xef\xbb\xbf{}"),
)


@settings(max_examples=80, deadline=None)
@given(chunks=st.lists(lines, max_size=12), final_newline=st.booleans())
def test_any_bytes_give_a_consistent_report(chunks: list[bytes], final_newline: bool) -> None:
    data = b"\n".join(chunks) + (b"\n" if final_newline and chunks else b"")
    report = _validate_bytes(data, max_findings_per_code=3)
    _assert_counts_add_up(report)
    assert report.size_bytes == len(data) and report.sha256 == hashlib.sha256(data).hexdigest()
    if "binary_file" not in report.counts_by_code and report.container == "jsonl":
        expected_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        assert report.num_lines == expected_lines
        assert report.num_examples <= report.num_records <= report.num_lines - report.num_blank_lines


@settings(max_examples=40, deadline=None)
@given(records=st.lists(chat_records(), min_size=1, max_size=8), indent=st.sampled_from([None, 1]))
def test_iter_records_reads_back_what_was_written_as_a_json_array(
    records: list[dict[str, Any]], indent: int | None
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.json"
        path.write_text(json.dumps(records, indent=indent, ensure_ascii=False), encoding="utf-8")
        assert [record for _, record in iter_records(path)] == records
