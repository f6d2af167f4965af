"""Format detection and the per-format field checks, one behaviour per test."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lora_pipeline.datasets import DatasetFormat, DatasetReport, Finding

Validate = Callable[..., DatasetReport]


def turns(*pairs: tuple[str, Any], key: str = "messages", role: str = "role", content: str = "content") -> dict:
    return {key: [{role: r, content: c} for r, c in pairs]}


def chat(user: str = "What is LoRA?", assistant: str = "A low-rank adapter.") -> dict[str, Any]:
    return turns(("user", user), ("assistant", assistant))


def only(report: DatasetReport, code: str) -> Finding:
    (finding,) = report.findings_of(code)
    return finding


VALID: list[tuple[DatasetFormat, list[dict[str, Any]]]] = [
    (DatasetFormat.CHAT, [turns(("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello")), chat()]),
    (DatasetFormat.CHAT, [turns(("user", [{"type": "text", "text": "Hi"}]), ("assistant", ["Hello"]))]),
    (
        DatasetFormat.CHAT,
        [
            {
                "messages": [
                    {"role": "user", "content": "Weather?"},
                    {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]},
                    {"role": "tool", "content": "sunny", "tool_call_id": "1"},
                    {"role": "assistant", "content": "Sunny."},
                ],
                "id": 7,
            }
        ],
    ),
    (
        DatasetFormat.SHAREGPT,
        [
            turns(("human", "Hi"), ("gpt", "Hello"), key="conversations", role="from", content="value"),
            {
                "system": "Be brief.",
                **turns(("user", "Hi"), ("model", "Yo"), key="conversations", role="from", content="value"),
            },
        ],
    ),
    (
        DatasetFormat.ALPACA,
        [
            {"instruction": "Add", "input": "1 + 1", "output": "2"},
            {"instruction": "Say hi", "output": "hi"},
            {"instruction": "Say hi", "input": None, "output": "hi", "system": "Be nice."},
        ],
    ),
    (DatasetFormat.PROMPT_COMPLETION, [{"prompt": "2 + 2 =", "completion": " 4"}, {"prompt": "", "completion": "x"}]),
    (
        DatasetFormat.PROMPT_COMPLETION,
        [{"prompt": [{"role": "user", "content": "2 + 2?"}], "completion": [{"role": "assistant", "content": "4"}]}],
    ),
    (DatasetFormat.TEXT, [{"text": "Once upon a time."}, {"text": "Another.", "metadata": {"source": "web"}}]),
]


@pytest.mark.parametrize(("fmt", "records"), VALID)
def test_each_format_is_detected_and_its_valid_records_pass(
    validate: Validate, fmt: DatasetFormat, records: list[dict[str, Any]]
) -> None:
    report = validate(records)
    assert report.valid, report.findings
    assert report.counts_by_code == {}
    assert (report.format, report.format_source, report.format_confidence) == (fmt, "detected", 1.0)
    assert report.num_examples == len(records)


@pytest.mark.parametrize(
    ("fmt", "record", "code", "path"),
    [
        (DatasetFormat.CHAT, {"messages": "hi"}, "wrong_type", "messages"),
        (DatasetFormat.CHAT, {"messages": []}, "empty_field", "messages"),
        (
            DatasetFormat.CHAT,
            {"messages": [{"content": "x"}, {"role": "assistant", "content": "y"}]},
            "missing_field",
            "messages[0].role",
        ),
        (
            DatasetFormat.CHAT,
            {"messages": [{"role": 3, "content": "x"}, {"role": "assistant", "content": "y"}]},
            "wrong_type",
            "messages[0].role",
        ),
        (DatasetFormat.CHAT, turns(("user", "   "), ("assistant", "y")), "empty_field", "messages[0].content"),
        (DatasetFormat.CHAT, turns(("user", 42), ("assistant", "y")), "wrong_type", "messages[0].content"),
        (
            DatasetFormat.CHAT,
            {"messages": [{"role": "user"}, {"role": "assistant", "content": "y"}]},
            "missing_field",
            "messages[0].content",
        ),
        (DatasetFormat.CHAT, {"messages": ["hi", {"role": "assistant", "content": "y"}]}, "wrong_type", "messages[0]"),
        (
            DatasetFormat.CHAT,
            turns(("user", [{"type": "text", "text": 5}]), ("assistant", "y")),
            "wrong_type",
            "messages[0].content[0].text",
        ),
        (
            DatasetFormat.SHAREGPT,
            {"conversations": [{"from": "human", "value": "x"}, {"from": "gpt"}]},
            "empty_assistant_content",
            "conversations[1].value",
        ),
        (
            DatasetFormat.SHAREGPT,
            {"system": 5, **turns(("human", "x"), ("gpt", "y"), key="conversations", role="from", content="value")},
            "wrong_type",
            "system",
        ),
        (DatasetFormat.ALPACA, {"instruction": "", "output": "2"}, "empty_field", "instruction"),
        (DatasetFormat.ALPACA, {"instruction": "Add", "output": 2}, "wrong_type", "output"),
        (DatasetFormat.ALPACA, {"instruction": "Add", "input": ["1"], "output": "2"}, "wrong_type", "input"),
        (DatasetFormat.PROMPT_COMPLETION, {"prompt": "a", "completion": " "}, "empty_field", "completion"),
        (DatasetFormat.PROMPT_COMPLETION, {"prompt": 1, "completion": "b"}, "wrong_type", "prompt"),
        (DatasetFormat.PROMPT_COMPLETION, {"prompt": ["x"], "completion": "b"}, "wrong_type", "prompt[0]"),
        (DatasetFormat.TEXT, {"text": ""}, "empty_field", "text"),
        (DatasetFormat.TEXT, {"text": {"body": "x"}}, "wrong_type", "text"),
    ],
)
def test_each_format_reports_its_broken_fields_at_their_path(
    validate: Validate, fmt: DatasetFormat, record: dict, code: str, path: str
) -> None:
    report = validate([record], format=fmt)
    finding = only(report, code)
    assert (finding.path, finding.line, finding.severity) == (path, 1, "error")
    assert not report.valid and report.num_examples == 0


def test_wrong_type_quotes_the_value_truncated(validate: Validate) -> None:
    report = validate([{"text": ["x" * 500]}])
    message = only(report, "wrong_type").message
    assert message.startswith("expected a string, got array: [")
    assert len(message) < 130 and message.endswith("…")


def test_unrecognized_keys_are_warnings_at_top_level_and_in_turns(validate: Validate) -> None:
    record = {
        "messages": [{"role": "user", "content": "x", "lang": "en"}, {"role": "assistant", "content": "y"}],
        "source": "crawl",
    }
    report = validate([record])
    assert sorted(f.path for f in report.findings_of("unrecognized_key")) == ["messages[0].lang", "source"]
    assert report.valid and report.counts_by_severity["warning"] == 2


def test_unknown_roles_are_errors_but_aliases_are_mapped(validate: Validate) -> None:
    report = validate([turns(("Human", "x"), ("narrator", "y"), ("assistant", "z"))])
    finding = only(report, "unrecognized_role")
    assert finding.path == "messages[1].role" and '"narrator"' in finding.message


def test_no_assistant_turn_is_an_error(validate: Validate) -> None:
    report = validate([turns(("system", "s"), ("user", "x"))])
    assert only(report, "no_assistant_turn").path == "messages"
    assert not report.findings_of("last_turn_not_assistant")  # implied by the error; not repeated


def test_empty_assistant_content_is_an_error(validate: Validate) -> None:
    assert only(validate([chat(assistant="")]), "empty_assistant_content").path == "messages[1].content"


def test_role_order_warnings(validate: Validate) -> None:
    report = validate(
        [
            turns(("user", "a"), ("assistant", "b"), ("user", "c")),
            turns(("user", "a"), ("user", "b"), ("assistant", "c")),
            turns(("user", "a"), ("system", "b"), ("assistant", "c")),
        ]
    )
    assert only(report, "last_turn_not_assistant").path == "messages[2]"
    assert (only(report, "consecutive_same_role").line, only(report, "consecutive_same_role").path) == (
        2,
        "messages[1]",
    )
    assert only(report, "system_not_first").line == 3
    assert report.valid  # all three are warnings


def test_a_field_changing_type_between_lines_names_both_types_and_lines(validate: Validate) -> None:
    report = validate(
        [
            chat(),
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "q"}]},
                    {"role": "assistant", "content": "a"},
                ]
            },
            {"instruction": "x", "input": None, "output": "y"},
            chat(user="again"),
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "r"}]},
                    {"role": "assistant", "content": "b"},
                ]
            },
        ],
        format="chat",
    )
    first, second = report.findings_of("type_inconsistent")
    assert (first.line, first.path) == (2, "messages[0].content")
    assert first.message == "messages[0].content is an array here but a string on line 1"
    assert second.message == "messages[0].content is an array here but a string on line 1 (first array on line 2)"


def test_null_and_int_float_differences_are_not_type_changes(validate: Validate) -> None:
    report = validate(
        [
            {"instruction": "a", "input": "x", "output": "b", "metadata": {"score": 1}},
            {"instruction": "c", "input": None, "output": "d", "metadata": {"score": 0.5}},
        ]
    )
    assert "type_inconsistent" not in report.counts_by_code


def test_preference_data_is_refused_with_a_clear_error(validate: Validate) -> None:
    report = validate([{"prompt": "p", "chosen": "good", "rejected": "bad"}])
    assert only(report, "preference_data").severity == "error"
    assert report.format is None


def test_records_of_no_known_format_are_unknown_format(validate: Validate) -> None:
    report = validate([{"question": "q", "answer": "a"}])
    assert "question" in only(report, "unknown_format").message


def test_detected_format_is_the_majority_and_the_others_are_mixed(validate: Validate) -> None:
    records = [{"text": "first"}] + [chat(f"q{i}") for i in range(4)] + [{"text": "last"}]
    report = validate(records)
    assert report.format is DatasetFormat.CHAT and report.format_confidence == pytest.approx(4 / 6)
    assert [f.line for f in report.findings_of("mixed_formats")] == [1, 6]
    assert report.num_examples == 4 and report.formats_seen == {"text": 2, "chat": 4}


def test_a_given_format_reports_other_formats_and_missing_key_fields(validate: Validate) -> None:
    report = validate([chat(), {"text": "t"}, {"msgs": []}], format="chat")
    assert only(report, "mixed_formats").line == 2
    assert only(report, "missing_field").message == "missing 'messages', a list of turns"
    assert report.format_source == "given"


def test_an_unknown_format_argument_names_the_choices(validate: Validate) -> None:
    with pytest.raises(ValueError, match=r"format='openai'.*auto, chat, sharegpt"):
        validate([chat()], format="openai")


def test_huge_keys_are_quoted_truncated(validate: Validate) -> None:
    report = validate([{"text": "t", "k" * 1_000_000: 1}])
    finding = only(report, "unrecognized_key")
    assert len(finding.message) < 200 and len(finding.path) == 80
