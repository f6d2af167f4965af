"""Reading dataset files: encodings, line endings, broken lines, JSON arrays, binary files, file identity."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline._exceptions import DatasetValidationError
from lora_pipeline.datasets import DatasetReport, Finding, _json_array, iter_records, validate_file

Validate = Callable[..., DatasetReport]
Write = Callable[..., Path]


def chat(user: str = "What is LoRA?", assistant: str = "A low-rank adapter.") -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]}


def encode(records: list[Any]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


def only(report: DatasetReport, code: str) -> Finding:
    (finding,) = report.findings_of(code)
    return finding


def codes(report: DatasetReport) -> set[str]:
    return set(report.counts_by_code)


GOOD = json.dumps(chat())


def test_a_clean_jsonl_file_has_no_findings(validate: Validate) -> None:
    report = validate([chat(f"q{i}") for i in range(3)])
    assert report.valid
    assert report.counts_by_code == {}
    assert (report.num_lines, report.num_records, report.num_examples) == (3, 3, 3)


def test_invalid_utf8_fails_only_its_line_and_points_at_the_byte(validate: Validate) -> None:
    bad = b'{"text": "caf\xe9"}\n'
    report = validate(GOOD.encode() + b"\n" + bad + GOOD.encode() + b"\n")
    finding = only(report, "invalid_utf8")
    assert (finding.line, finding.severity) == (2, "error")
    assert finding.offset == len(GOOD) + 1 + bad.index(b"\xe9")
    assert report.num_records == 2


def test_bom_is_stripped_and_warned(validate: Validate) -> None:
    report = validate(b"\xef\xbb\xbf" + encode([chat(), chat("other")]))
    assert only(report, "bom_present").severity == "warning"
    assert report.valid and report.num_examples == 2


def test_nul_byte_is_an_error_with_its_offset(validate: Validate) -> None:
    report = validate(GOOD.encode() + b'\n{"text": "a\x00b"}\n')
    finding = only(report, "nul_byte")
    assert finding.line == 2
    assert finding.offset == len(GOOD) + 1 + len('{"text": "a')


def test_invalid_json_names_the_decoder_message_and_column(validate: Validate) -> None:
    report = validate(GOOD + '\n{"text": "a",, "b": 1}\n')
    finding = only(report, "invalid_json")
    assert finding.line == 2
    assert "column 14" in finding.message and "Expecting property name" in finding.message


def test_nan_is_not_json(validate: Validate) -> None:
    assert only(validate('{"text": NaN}\n'), "invalid_json").message == "NaN is not valid JSON"


def test_a_line_holding_an_array_is_not_an_object_with_a_wrapping_hint(validate: Validate) -> None:
    turns = chat()["messages"]
    report = validate([turns, chat()])
    finding = only(report, "not_an_object")
    assert finding.line == 1
    assert finding.hint is not None and '{"messages": [...]}' in finding.hint


def test_pretty_printed_json_is_reported_as_multiline_not_as_many_invalid_lines(validate: Validate) -> None:
    pretty = json.dumps(chat(), indent=2)
    report = validate(pretty + "\n" + GOOD + "\n" + "{broken\n")
    first, *rest = report.findings_of("multiline_json_suspected")
    assert first.line == 1 and "does not end on this line" in first.message
    assert [f.line for f in rest] == list(range(2, pretty.count("\n") + 2))
    assert "from line 1" in rest[0].message
    assert report.num_examples == 1  # the next one-line object parses and ends the block
    assert only(report, "invalid_json").line == pretty.count("\n") + 3


def test_blank_lines_are_counted_and_skipped(validate: Validate) -> None:
    report = validate(f"{GOOD}\n\n   \n{GOOD.replace('LoRA', 'QLoRA')}\n")
    assert report.counts_by_code["blank_line"] == 2
    assert report.num_blank_lines == 2 and report.num_examples == 2
    assert report.valid


def test_crlf_line_endings_are_accepted(validate: Validate) -> None:
    report = validate(f"{GOOD}\r\n{json.dumps(chat('other'))}\r\n".encode())
    assert report.valid and report.counts_by_code == {}
    assert report.num_lines == 2


def test_a_line_over_max_line_bytes_is_skipped_unread(validate: Validate) -> None:
    huge = json.dumps(chat("x" * 5000))
    report = validate([chat(), huge, chat("after")], max_line_bytes=1000)
    finding = only(report, "line_too_long")
    assert finding.line == 2 and finding.offset == len(GOOD) + 1
    assert report.num_examples == 2  # the line after it is read normally
    assert report.num_lines == 3


def test_a_megabyte_long_line_is_fine_under_the_default_limit(validate: Validate) -> None:
    report = validate([chat("y" * 1_000_000)])
    assert report.valid and report.num_examples == 1
    assert report.tokens.max is not None and report.tokens.max > 200_000


def test_deep_nesting_is_a_finding_not_a_crash(validate: Validate) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    report = validate(f"{GOOD}\n{deep}\n{GOOD.replace('LoRA', 'DoRA')}\n")
    assert only(report, "nesting_too_deep").line == 2
    assert report.num_examples == 2


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", b"[]", b"[\n]\n"])
def test_a_file_without_examples_is_empty(validate: Validate, content: bytes) -> None:
    report = validate(content, min_examples=10)
    assert only(report, "empty_file").line is None
    assert not report.valid
    assert "too_few_examples" not in codes(report)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (gzip.compress(encode([chat()] * 50)), "gzip"),
        (bytes(range(256)) * 8, "not text"),
        (GOOD.encode("utf-16"), "UTF-16"),
    ],
)
def test_a_binary_file_is_refused_early(validate: Validate, content: bytes, words: str) -> None:
    report = validate(content)
    assert words in only(report, "binary_file").message
    assert report.num_records == 0 and set(report.counts_by_code) == {"binary_file"}
    assert report.sha256 == hashlib.sha256(content).hexdigest()


def test_size_and_sha256_cover_the_whole_file(write: Write) -> None:
    data = encode([chat(f"q{i}") for i in range(100)]) + b"not json\n"
    report = validate_file(write(data))
    assert report.size_bytes == len(data)
    assert report.sha256 == hashlib.sha256(data).hexdigest()


# --- JSON arrays ------------------------------------------------------------------------------------------


def test_a_pretty_printed_json_array_is_streamed_with_element_lines(validate: Validate) -> None:
    records = [chat(f"q{i}") for i in range(3)]
    text = json.dumps(records, indent=2)
    report = validate(text + "\n")
    assert report.container == "json_array" and report.valid and report.num_examples == 3
    assert report.num_lines == text.count("\n") + 1


def test_array_elements_across_chunk_boundaries_keep_exact_lines_and_offsets(
    write: Write, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_json_array, "READ_CHUNK", 64)  # every element straddles several reads
    records = [chat(f"question é {i}", "ответ " * i) for i in range(20)]
    text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n"
    path = write(text)
    data = path.read_bytes()
    from lora_pipeline.datasets._reader import RecordReader

    seen: list[Any] = []
    reader = RecordReader(path, max_line_bytes=10_000, sink=lambda *a, **k: seen.append((a, k)))
    items = list(reader)
    assert [value for _, _, value in items] == records and seen == []
    for index, (line, offset, value) in enumerate(items):
        assert line == index + 2
        assert data[offset:].startswith(json.dumps(value, ensure_ascii=False).encode())


def test_a_single_line_array_of_non_objects_reports_each(validate: Validate) -> None:
    report = validate('[1, "two", ' + GOOD + "]")
    assert report.container == "json_array"
    assert report.counts_by_code["not_an_object"] == 2 and report.num_examples == 1


def test_a_syntax_error_inside_an_array_stops_there_with_a_finding(validate: Validate) -> None:
    report = validate("[\n" + GOOD + ',\n{"text": oops},\n' + GOOD + "\n]")
    finding = only(report, "invalid_json")
    assert finding.line == 3 and "rest was not read" in finding.message
    assert report.num_records == 1


def test_array_elements_with_nan_are_skipped_and_reading_goes_on(validate: Validate) -> None:
    report = validate('[{"text": NaN}, {"text": "fine"}]')
    assert only(report, "invalid_json").message == "NaN is not valid JSON"
    assert report.num_examples == 1


def test_array_bom_trailing_data_and_bad_utf8_are_reported(validate: Validate) -> None:
    report = validate(b"\xef\xbb\xbf[" + GOOD.encode() + b"] extra")
    assert {"bom_present", "invalid_json"} <= codes(report) and report.num_examples == 1
    broken = validate(b"[" + GOOD.encode() + b', {"text": "\xff"}]')
    assert only(broken, "invalid_utf8").line == 1 and broken.num_examples == 1


def test_array_deep_nesting_is_a_finding(validate: Validate) -> None:
    assert "nesting_too_deep" in codes(validate("[" + "[" * 50_000 + "]" * 50_000 + "]"))


def test_an_oversized_array_element_is_skipped_when_read_whole(validate: Validate) -> None:
    report = validate("[" + json.dumps(chat("z" * 3000)) + ",\n" + GOOD + "]", max_line_bytes=1000)
    assert only(report, "line_too_long").line == 1
    assert report.num_examples == 1


def test_an_array_element_outgrowing_the_limit_stops_reading(
    validate: Validate, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_json_array, "READ_CHUNK", 256)  # the element never fits in what may be buffered
    report = validate("[" + json.dumps(chat("z" * 3000)) + ",\n" + GOOD + "]", max_line_bytes=1000)
    assert "rest was not read" in only(report, "line_too_long").message
    assert report.num_examples == 0


# --- iter_records -----------------------------------------------------------------------------------------


def test_iter_records_yields_lines_and_objects_from_jsonl_and_arrays(write: Write) -> None:
    records = [chat("a"), {"text": "b"}]
    jsonl = write(b"\xef\xbb\xbf" + encode(records).replace(b"\n", b"\r\n\n", 1), "a.jsonl")
    assert list(iter_records(jsonl)) == [(1, records[0]), (3, records[1])]
    array = write(json.dumps(records, indent=1), "a.json")
    assert [record for _, record in iter_records(array)] == records


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        (GOOD + "\n{broken\n", "invalid_json", 2),
        (GOOD + "\n[1]\n", "not_an_object", 2),
        (b'{"text": "\xff"}\n', "invalid_utf8", 1),
    ],
)
def test_iter_records_raises_at_the_first_broken_line(write: Write, content: Any, code: str, line: int) -> None:
    with pytest.raises(DatasetValidationError, match=rf"line {line}: {code}") as raised:
        list(iter_records(write(content)))
    assert raised.value.report is None
