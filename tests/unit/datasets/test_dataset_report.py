"""The report: example counts, tokens, duplicates, the finding cap, rendering, JSON and raising."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from lora_pipeline._exceptions import DatasetValidationError
from lora_pipeline.datasets import DatasetReport, Finding, FindingCode, validate_file
from lora_pipeline.datasets._dedup import SeenHashes
from lora_pipeline.datasets._findings import preview
from lora_pipeline.datasets._tokens import TokenHistogram

Validate = Callable[..., DatasetReport]


def chat(user: str = "What is LoRA?", assistant: str = "A low-rank adapter.", **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}], **extra}


def only(report: DatasetReport, code: str) -> Finding:
    (finding,) = report.findings_of(code)
    return finding


def distinct(count: int) -> list[dict[str, Any]]:
    return [chat(f"question {i}") for i in range(count)]


# --- example counts ---------------------------------------------------------------------------------------


def test_too_few_examples_is_an_error_below_the_minimum(validate: Validate) -> None:
    report = validate(distinct(3), min_examples=10, recommended_examples=50)
    finding = only(report, "too_few_examples")
    assert (finding.severity, finding.line) == ("error", None)
    assert not report.valid


def test_too_few_examples_is_a_warning_below_the_recommendation(validate: Validate) -> None:
    report = validate(distinct(12), min_examples=10, recommended_examples=50)
    assert only(report, "too_few_examples").severity == "warning"
    assert report.valid


def test_only_valid_examples_count_towards_the_minimum(validate: Validate) -> None:
    report = validate([*distinct(10), "not json"], min_examples=11, recommended_examples=11)
    assert report.num_records == 10 and report.num_examples == 10
    assert "10 valid examples" in only(report, "too_few_examples").message


# --- tokens -----------------------------------------------------------------------------------------------


def test_estimated_tokens_flag_examples_over_max_seq_len(validate: Validate) -> None:
    report = validate([chat("short"), chat("x" * 4000)], max_seq_len=512)
    finding = only(report, "too_long_tokens")
    assert finding.line == 2 and "estimated" in finding.message and "max_seq_len 512" in finding.message
    assert report.tokens.method == "estimate" and report.tokens.over_max_seq_len == 1
    assert report.valid  # a warning: the trainer drops or truncates it


def test_the_estimate_is_about_four_ascii_characters_per_token_and_more_for_cjk(validate: Validate) -> None:
    english = validate([chat("a" * 400, "b" * 400)]).tokens.max
    chinese = validate([chat("字" * 400, "词" * 400)]).tokens.max
    assert english == 200 + 2 * 4  # 800 characters / 4, plus 4 per turn
    assert chinese is not None and chinese >= 4 * english - 32


class WordTokenizer:
    """A tokenizer stand-in: one token per whitespace-separated word."""

    def encode(self, text: str) -> list[int]:
        return [len(word) for word in text.split()]


class TemplateTokenizer(WordTokenizer):
    """Adds a chat template: two marker tokens per turn, and refuses a conversation not starting with user."""

    def apply_chat_template(self, conversation: list[dict[str, str]], **kwargs: Any) -> dict[str, list[int]]:
        assert kwargs == {"tokenize": True}
        if conversation[0]["role"] != "user":
            raise ValueError("Conversation roles must alternate user/assistant/user/assistant/...")
        ids = [0, 0] * len(conversation) + [t for m in conversation for t in self.encode(m["content"])]
        return {"input_ids": ids}


def test_an_encode_tokenizer_counts_exactly_plus_a_per_turn_overhead(validate: Validate) -> None:
    report = validate([chat("one two three", "four five"), chat("six", "seven")], tokenizer=WordTokenizer())
    assert report.tokens.method == "tokenizer"
    assert (report.tokens.min, report.tokens.max) == (2 + 8, 5 + 8)


def test_a_chat_template_tokenizer_counts_the_template(validate: Validate) -> None:
    report = validate([chat("one two three", "four five")], tokenizer=TemplateTokenizer(), max_seq_len=8)
    assert report.tokens.max == 2 * 2 + 5
    assert only(report, "too_long_tokens").message.startswith("9 tokens (counted)")


def test_a_refusing_chat_template_is_a_warning_and_encode_counts_instead(validate: Validate) -> None:
    record = {"messages": [{"role": "system", "content": "s"}, *chat("a b", "c")["messages"]]}
    report = validate([record], tokenizer=TemplateTokenizer())
    assert "roles must alternate" in only(report, "chat_template_failed").message
    assert report.tokens.max == 4 + 3 * 4


def test_a_tokenizer_without_encode_or_template_is_refused(validate: Validate) -> None:
    with pytest.raises(TypeError, match="apply_chat_template"):
        validate([chat()], tokenizer=object())


def test_token_percentiles_are_nearest_rank_and_exact_below_4096() -> None:
    values = random.Random(3).choices(range(1, 4000), k=5000)
    histogram = TokenHistogram()
    for value in values:
        histogram.add(value)
    ordered = sorted(values)
    for percent in (50, 90, 95, 99):
        assert histogram.percentile(percent) == ordered[math.ceil(len(values) * percent / 100) - 1]
    assert (histogram.minimum, histogram.maximum, histogram.total) == (min(values), max(values), sum(values))


def test_token_percentiles_above_4096_are_within_one_percent() -> None:
    values = random.Random(4).choices(range(4096, 2_000_000), k=3000)
    histogram = TokenHistogram()
    for value in values:
        histogram.add(value)
    exact = sorted(values)[math.ceil(len(values) * 0.95) - 1]
    assert histogram.percentile(95) == pytest.approx(exact, rel=0.011)
    assert len(histogram._buckets) < 1500  # bounded, whatever the number of examples


# --- duplicates -------------------------------------------------------------------------------------------


def test_duplicates_ignore_key_order_ids_and_metadata(validate: Validate) -> None:
    first = chat("same", id=1)
    reordered = {"id": 2, "metadata": {"x": 1}, "messages": [dict(reversed(m.items())) for m in first["messages"]]}
    report = validate([first, chat("other"), reordered, chat("other")])
    assert [(f.line, f.message) for f in report.findings_of("duplicate_exact")] == [
        (3, "same training content as line 1"),
        (4, "same training content as line 2"),
    ]
    assert report.duplicates == 2
    assert [(p.line, p.first_line) for p in report.duplicate_pairs] == [(3, 1), (4, 2)]


def test_duplicates_with_content_parts_are_found_too(validate: Validate) -> None:
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]},
                          {"role": "assistant", "content": [{"type": "text", "text": "a"}]}]}  # fmt: skip
    report = validate([parts, parts])
    assert only(report, "duplicate_exact").line == 2


def test_different_examples_are_not_duplicates(validate: Validate) -> None:
    report = validate([chat("a", "b"), chat("b", "a"), {"messages": chat("a", "b")["messages"][:1]}])
    assert report.duplicates == 0


def test_duplicate_table_grows_and_keeps_first_lines() -> None:
    table = SeenHashes(initial_capacity=8)
    rng = random.Random(5)
    keys = [rng.getrandbits(64) | 1 for _ in range(2000)]
    assert all(table.add(key, line) == 0 for line, key in enumerate(keys, 1))
    assert all(table.add(key, 99_999) == line for line, key in enumerate(keys, 1))
    assert table.size == 2000 and table.nbytes <= 2000 * 12 * 2 / 0.75 + 1


def test_duplicate_tracking_stops_at_its_limit_and_says_so(validate: Validate) -> None:
    report = validate([*distinct(5), chat("question 1"), chat("question 4")], max_tracked_examples=3)
    assert only(report, "duplicate_exact").line == 6  # held before the limit
    assert only(report, "dedup_limit_reached").severity == "info"


# --- findings cap and severities --------------------------------------------------------------------------


def test_findings_are_all_counted_but_only_the_first_are_stored(validate: Validate) -> None:
    report = validate(["not json"] * 50 + [json.dumps(chat())], max_findings_per_code=20)
    assert report.counts_by_code["invalid_json"] == 50
    assert [f.line for f in report.findings_of("invalid_json")] == list(range(1, 21))
    assert report.counts_by_severity["error"] == 50 and report.findings_omitted == 30
    assert report.num_examples == 1


def test_warnings_and_info_leave_a_report_valid_but_errors_do_not(validate: Validate) -> None:
    warned = validate(["", json.dumps(chat(extra_key=1))])
    assert warned.valid and warned.ok and set(warned.counts_by_severity) >= {"warning", "info"}
    assert not validate(["{"]).valid


def test_preview_truncates_long_values_cheaply() -> None:
    assert preview("x" * 10_000) == '"' + "x" * 78 + "…"
    assert len(preview({"k": ["v" * 1000] * 1000})) == 80
    assert preview([1, 2]) == "[1, 2]"


# --- output -----------------------------------------------------------------------------------------------


@pytest.fixture
def broken(validate: Validate) -> DatasetReport:
    return validate([chat(), '{"text": "<b>&",, }', chat(assistant="")], min_examples=5, recommended_examples=5)


def test_raise_for_errors_names_the_first_errors(broken: DatasetReport, validate: Validate) -> None:
    with pytest.raises(DatasetValidationError) as raised:
        broken.raise_for_errors()
    message = str(raised.value)
    assert "3 error(s)" in message and "file: too_few_examples" in message
    assert "line 2: invalid_json" in message and "line 3, messages[1].content: empty_assistant_content" in message
    assert raised.value.report is broken
    good = validate([chat()])
    assert good.raise_for_errors() is good


def test_summary_is_one_line(broken: DatasetReport) -> None:
    summary = broken.summary()
    assert "\n" not in summary
    assert summary.startswith("✗ invalid") and "3 errors" in summary and "chat (100%)" in summary


def test_html_contains_the_findings_escaped(broken: DatasetReport) -> None:
    page = broken._repr_html_()
    for finding in broken.findings:
        assert str(finding.code) in page
    assert "&lt;b&gt;&amp;" in page and "<b>&" not in page


def test_rich_rendering_shows_status_and_findings(broken: DatasetReport) -> None:
    console = Console(record=True, width=120)
    console.print(broken)
    text = console.export_text()
    assert "invalid" in text and "empty_assistant_content" in text and "invalid_json" in text


def test_json_round_trips_and_carries_valid(broken: DatasetReport) -> None:
    data = json.loads(broken.to_json())
    assert data["valid"] is False and data["counts_by_code"]["invalid_json"] == 1
    again = DatasetReport.model_validate(data)
    assert again.findings == broken.findings and again.valid is False


def test_progress_is_reported_up_to_the_file_size(write: Callable[..., Path]) -> None:
    path = write([chat(f"q{i}") for i in range(100)])
    calls: list[tuple[int, int]] = []
    validate_file(path, on_progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (path.stat().st_size, path.stat().st_size)


def test_every_finding_code_is_asserted_somewhere_in_these_tests() -> None:
    sources = "".join(path.read_text() for path in Path(__file__).parent.glob("test_*.py"))
    assert [code.value for code in FindingCode if f'"{code.value}"' not in sources] == []
