"""How records become training features: assistant-only labels, truncation, drops, the split, padding."""

from __future__ import annotations

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.datasets.formats import DatasetFormat
from lora_pipeline.train import TrainingDataError, prepare_dataset
from lora_pipeline.train._records import read_records
from lora_pipeline.train.data import IGNORE_INDEX, render_example, split_examples, tokenize_example

CHAT = {
    "messages": [
        {"role": "system", "content": "You are Sol from Lumio support."},
        {"role": "user", "content": "How do I reset my password?"},
        {"role": "assistant", "content": "Tap Forgot password on the sign-in screen."},
        {"role": "user", "content": "Thanks!"},
        {"role": "assistant", "content": "You're welcome!"},
    ]
}


def _features(record: dict[str, Any], tokenizer: Any, fmt: DatasetFormat = DatasetFormat.CHAT) -> dict[str, Any]:
    text, spans = render_example(record, fmt, tokenizer)
    return tokenize_example(text, spans, tokenizer)


def _trained_text(features: dict[str, Any], tokenizer: Any) -> str:
    return str(tokenizer.decode([label for label in features["labels"] if label != IGNORE_INDEX]))


def _with_template(tokenizer: Any, template: str | None) -> Any:
    templated = copy.deepcopy(tokenizer)
    templated.chat_template = template
    return templated


def test_only_assistant_turns_are_labelled(tiny_tokenizer: Any) -> None:
    features = _features(CHAT, tiny_tokenizer)

    eos = tiny_tokenizer.eos_token
    assert (
        _trained_text(features, tiny_tokenizer)
        == f"Tap Forgot password on the sign-in screen.{eos}You're welcome!{eos}"
    )
    assert len(features["input_ids"]) == len(features["labels"]) == len(features["attention_mask"])


def test_labels_equal_the_input_ids_where_trained(tiny_tokenizer: Any) -> None:
    features = _features(CHAT, tiny_tokenizer)

    pairs = zip(features["input_ids"], features["labels"], strict=True)
    assert all(label in (token, IGNORE_INDEX) for token, label in pairs)
    assert features["labels"][0] == IGNORE_INDEX  # BOS and the system prompt are context


def test_text_records_train_on_everything(tiny_tokenizer: Any) -> None:
    features = _features({"text": "Lumio lamps use 2.4 GHz Wi-Fi."}, tiny_tokenizer, DatasetFormat.TEXT)

    assert features["labels"][0] == IGNORE_INDEX  # BOS is never predicted
    assert features["labels"][1:] == features["input_ids"][1:]
    assert _trained_text(features, tiny_tokenizer) == f"Lumio lamps use 2.4 GHz Wi-Fi.{tiny_tokenizer.eos_token}"


@pytest.mark.parametrize(
    ("record", "fmt"),
    [
        ({"prompt": "Do you ship to Japan?", "completion": "Yes, we ship to Japan."}, DatasetFormat.PROMPT_COMPLETION),
        (
            {"instruction": "Do you ship to Japan?", "input": "", "output": "Yes, we ship to Japan."},
            DatasetFormat.ALPACA,
        ),
        (
            {
                "conversations": [
                    {"from": "human", "value": "Do you ship to Japan?"},
                    {"from": "gpt", "value": "Yes, we ship to Japan."},
                ]
            },
            DatasetFormat.SHAREGPT,
        ),
    ],
)
def test_every_conversation_format_trains_on_the_answer(tiny_tokenizer: Any, record: dict[str, Any], fmt: str) -> None:
    features = _features(record, tiny_tokenizer, DatasetFormat(fmt))

    assert _trained_text(features, tiny_tokenizer) == f"Yes, we ship to Japan.{tiny_tokenizer.eos_token}"


def test_without_a_chat_template_turns_are_joined_as_role_lines(tiny_tokenizer: Any) -> None:
    plain = _with_template(tiny_tokenizer, None)

    text, _ = render_example(CHAT, DatasetFormat.CHAT, plain)
    features = _features(CHAT, plain)

    assert "\nuser: How do I reset my password?\nassistant: Tap Forgot" in text
    eos = plain.eos_token
    assert (
        _trained_text(features, plain) == f" Tap Forgot password on the sign-in screen.{eos}\n You're welcome!{eos}\n"
    )


def test_a_template_that_adds_a_default_system_prompt_still_masks_exactly(tiny_tokenizer: Any) -> None:
    chatml = (
        "{% if messages[0]['role'] != 'system' %}<|im_start|>system\nBe helpful.<|im_end|>\n{% endif %}"
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokenizer = _with_template(tiny_tokenizer, chatml)
    record = {"messages": CHAT["messages"][1:]}  # no system turn: the template inserts one

    features = _features(record, tokenizer)

    expected = "Tap Forgot password on the sign-in screen.<|im_end|>\nYou're welcome!<|im_end|>\n"
    assert _trained_text(features, tokenizer) == expected


def test_turns_a_template_rewrites_later_are_left_out_not_mislabelled(tiny_tokenizer: Any) -> None:
    # Like templates that drop the reasoning of earlier answers: an earlier turn renders differently once
    # later turns follow, so only the last answer can be located exactly.
    rewriting = (
        "{% for m in messages %}[{{ m['role'] }}] "
        "{% if m['role'] == 'assistant' and not loop.last %}(earlier answer){% else %}{{ m['content'] }}{% endif %}"
        "\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}"
    )
    tokenizer = _with_template(tiny_tokenizer, rewriting)

    features = _features(CHAT, tokenizer)

    assert _trained_text(features, tokenizer) == " You're welcome!"


def test_prepare_dataset_counts_truncated_and_dropped_examples(tiny_tokenizer: Any) -> None:
    records = [
        CHAT,
        {"messages": [{"role": "user", "content": "Only a question, no answer."}]},
        {"unexpected": "shape"},
        {"messages": [{"role": "user", "content": "word " * 200}, {"role": "assistant", "content": "Late answer."}]},
    ]

    data = prepare_dataset(records, tiny_tokenizer, max_seq_len=24, eval_fraction=0.0, seed=1)

    assert data.records == 4
    assert len(data.train) == 1
    assert data.dropped == {"no_trainable_tokens": 1, "unrecognized_format": 1, "truncated_away": 1}
    assert data.dropped_examples == 3
    assert data.truncated == 1  # CHAT is longer than 24 tokens but its first answer survives
    assert len(data.train[0]["input_ids"]) == 24


def test_a_declared_format_that_does_not_fit_drops_the_record(tiny_tokenizer: Any) -> None:
    data = prepare_dataset([CHAT], tiny_tokenizer, max_seq_len=256, dataset_format="alpaca")

    assert data.train == []
    assert data.dropped == {"unrecognized_format": 1}


def test_split_is_seeded_disjoint_and_complete() -> None:
    items = list(range(100))

    train, held = split_examples(items, 0.1, seed=7)

    assert len(held) == 10
    assert sorted(train + held) == items
    assert split_examples(items, 0.1, seed=7) == (train, held)
    assert split_examples(items, 0.1, seed=8)[1] != held
    assert train == sorted(train)  # the training split keeps file order


@pytest.mark.parametrize(("count", "fraction", "held"), [(100, 0.0, 0), (1, 0.5, 0), (5, 0.01, 1), (2, 0.8, 1)])
def test_split_sizes_at_the_edges(count: int, fraction: float, held: int) -> None:
    train, eval_split = split_examples(list(range(count)), fraction, seed=0)

    assert (len(train), len(eval_split)) == (count - held, held)


def test_records_are_split_before_tokenizing(tiny_tokenizer: Any, sample_dataset: Path) -> None:
    _, held_records = split_examples(read_records(sample_dataset), 0.1, seed=3)

    data = prepare_dataset(sample_dataset, tiny_tokenizer, max_seq_len=512, eval_fraction=0.1, seed=3)

    assert data.eval == [_features(record, tiny_tokenizer) for record in held_records]
    assert (len(data.train), len(data.eval), data.dropped_examples) == (378, 42, 0)


def test_reads_json_lines_and_json_arrays(tmp_path: Path) -> None:
    lines = tmp_path / "data.jsonl"
    lines.write_text(json.dumps(CHAT) + "\n\n" + json.dumps({"text": "hi"}) + "\n", encoding="utf-8")
    array = tmp_path / "data.json"
    array.write_text(json.dumps([CHAT, {"text": "hi"}]), encoding="utf-8")

    assert read_records(lines) == read_records(array) == [CHAT, {"text": "hi"}]


def test_a_broken_line_names_its_number(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(CHAT) + "\n{not json\n", encoding="utf-8")

    with pytest.raises(TrainingDataError, match="line 2") as caught:
        read_records(path)
    assert caught.value.report["line"] == 2


def test_the_bundled_sample_dataset_is_generated_and_commit_sized(sample_dataset: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample_dataset", sample_dataset.with_name("make_sample_dataset.py")
    )
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)

    text = sample_dataset.read_text(encoding="utf-8")
    assert text == generator.render(), "support_chat.jsonl is stale: run examples/data/make_sample_dataset.py"
    assert len(text.encode()) < 300_000
    records = [json.loads(line) for line in text.splitlines()]
    assert 300 <= len(records) <= 500
    assert all(record["messages"][-1]["role"] == "assistant" for record in records)


def test_importing_the_sdk_does_not_import_the_training_stack() -> None:
    code = (
        "import sys, lora_pipeline, lora_pipeline.presets, lora_pipeline.datasets.formats\n"
        "heavy = [name for name in ('torch', 'transformers', 'peft') if name in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
