"""From dataset records to the tokenized examples TRL trains on: rendering, label masking, the split.

Supervised fine-tuning teaches the model to answer, not to echo its prompt, so only assistant turns carry
labels; system, user and tool turns are context and get ``-100`` (ignored by the loss). ``text`` records
have no prompt, so every token is trained.

The assistant turns are located in characters, not tokens: the conversation is rendered once with the
tokenizer's chat template, and each assistant turn spans from the end of the rendered prefix that asks for
it (``add_generation_prompt=True``) to the end of the rendered prefix that contains it. The offsets the
tokenizer returns then map those character spans to tokens, which is exact however the tokenizer merges
text across turn boundaries. A template whose prefixes are not prefixes of the full rendering (some
templates rewrite earlier turns) gives no span for that turn rather than a wrong one.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jinja2.exceptions import TemplateError

from ..datasets.formats import DatasetFormat, to_messages
from ._records import Record, load_records, record_format

IGNORE_INDEX = -100
"""The label value the causal-LM loss ignores."""

Span = tuple[int, int]
"""A half-open character range ``[start, end)`` of rendered text."""
Features = dict[str, list[int]]
"""One training example: ``input_ids``, ``attention_mask`` and ``labels`` of equal length."""
T = TypeVar("T")


@dataclass(frozen=True)
class PreparedDataset:
    """A dataset turned into training features, split into train and eval."""

    train: list[Features]
    eval: list[Features]
    records: int
    """Records read from the source."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Examples left out, by reason: ``unrecognized_format``, ``no_trainable_tokens``, ``truncated_away``."""
    truncated: int = 0
    """Examples cut to ``max_seq_len`` (and kept)."""

    @property
    def dropped_examples(self) -> int:
        return sum(self.dropped.values())


def prepare_dataset(
    source: str | Path | Iterable[Record],
    tokenizer: Any,
    *,
    max_seq_len: int,
    eval_fraction: float = 0.0,
    seed: int = 42,
    dataset_format: DatasetFormat | str | None = None,
) -> PreparedDataset:
    """Read, render, tokenize, mask and split a dataset.

    The split is made on records before tokenizing, so which records are held out depends only on the
    file, ``eval_fraction`` and ``seed``: adapters trained from different base models are evaluated on the
    same conversations.

    Args:
        source: a JSONL or JSON-array file, or the records themselves.
        tokenizer: a Hugging Face fast tokenizer (offsets are needed for masking).
        max_seq_len: longer examples are truncated to this many tokens.
        eval_fraction: share of records held out for evaluation.
        seed: seeds the split.
        dataset_format: read every record as this format; detected per record when ``None``.

    Example::

        data = prepare_dataset("support_chat.jsonl", tokenizer, max_seq_len=512, eval_fraction=0.1)
    """
    records = load_records(source)
    train_records, eval_records = split_examples(records, eval_fraction, seed)
    tally = _Tally()
    train = _featurize(train_records, tokenizer, max_seq_len, dataset_format, tally)
    held_out = _featurize(eval_records, tokenizer, max_seq_len, dataset_format, tally)
    return PreparedDataset(train, held_out, len(records), dict(tally.dropped), tally.truncated)


def split_examples(items: Sequence[T], eval_fraction: float, seed: int) -> tuple[list[T], list[T]]:
    """``(train, eval)``: a seeded, shuffled hold-out of ``round(len * eval_fraction)`` items, in input order.

    At least one item is held out when ``eval_fraction > 0`` and at least one is kept for training.
    """
    count = len(items)
    held = 0 if eval_fraction <= 0 or count < 2 else min(max(1, round(count * eval_fraction)), count - 1)
    order = list(range(count))
    random.Random(seed).shuffle(order)
    held_out = set(order[:held])
    train = [item for index, item in enumerate(items) if index not in held_out]
    return train, [items[index] for index in sorted(held_out)]


def render_example(record: Record, fmt: DatasetFormat, tokenizer: Any) -> tuple[str, list[Span]]:
    """The text of one example and the character spans trained on (assistant turns; everything for text)."""
    if fmt is DatasetFormat.TEXT:
        return _render_text(str(record["text"]), tokenizer)
    messages = to_messages(record, fmt)
    if getattr(tokenizer, "chat_template", None):
        return _render_with_template(messages, tokenizer)
    return _render_plain(messages, tokenizer)


def tokenize_example(text: str, spans: Sequence[Span], tokenizer: Any) -> Features:
    """Token ids, attention mask and labels for ``text``: tokens outside ``spans`` are labelled ``-100``.

    A token is trained on when its characters overlap a span: a word token that carries the space before
    an answer still belongs to the answer.
    """
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    input_ids = list(encoding["input_ids"])
    labels = [
        token if any(start < span_end and end > span_start for span_start, span_end in spans) else IGNORE_INDEX
        for token, (start, end) in zip(input_ids, encoding["offset_mapping"], strict=True)
    ]
    return {"input_ids": input_ids, "attention_mask": [1] * len(input_ids), "labels": labels}


def truncate_example(example: Features, max_seq_len: int) -> Features:
    """The first ``max_seq_len`` tokens of an example (the end of a long conversation is cut)."""
    return {key: values[:max_seq_len] for key, values in example.items()}


@dataclass
class _Tally:
    dropped: Counter[str] = field(default_factory=Counter)
    truncated: int = 0


def _featurize(
    records: Sequence[Record],
    tokenizer: Any,
    max_seq_len: int,
    dataset_format: DatasetFormat | str | None,
    tally: _Tally,
) -> list[Features]:
    features = []
    for record in records:
        outcome = _example(record, tokenizer, max_seq_len, dataset_format)
        if isinstance(outcome, str):
            tally.dropped[outcome] += 1
            continue
        example, was_truncated = outcome
        tally.truncated += was_truncated
        features.append(example)
    return features


def _example(
    record: Record, tokenizer: Any, max_seq_len: int, dataset_format: DatasetFormat | str | None
) -> tuple[Features, bool] | str:
    """The record's features and whether they were cut, or the reason the record is dropped."""
    fmt = record_format(record, dataset_format)
    if fmt is None:
        return "unrecognized_format"
    text, spans = render_example(record, fmt, tokenizer)
    full = tokenize_example(text, spans, tokenizer)
    if not _trainable(full):
        return "no_trainable_tokens"
    example = truncate_example(full, max_seq_len)
    if not _trainable(example):
        return "truncated_away"
    return example, len(full["input_ids"]) > max_seq_len


def _trainable(example: Features) -> bool:
    return any(label != IGNORE_INDEX for label in example["labels"])


def _render_text(text: str, tokenizer: Any) -> tuple[str, list[Span]]:
    """Plain text between BOS and EOS; all of it (and the EOS, so the model learns to stop) is trained."""
    bos, eos = tokenizer.bos_token or "", tokenizer.eos_token or ""
    rendered = bos + text + eos
    return rendered, [(len(bos), len(rendered))] if text else []


def _render_with_template(messages: list[dict[str, str]], tokenizer: Any) -> tuple[str, list[Span]]:
    full = _apply_template(tokenizer, messages, add_generation_prompt=False)
    spans = [_assistant_span(tokenizer, messages, index, full) for index in range(len(messages))]
    return full, [span for span in spans if span is not None]


def _assistant_span(tokenizer: Any, messages: list[dict[str, str]], index: int, full: str) -> Span | None:
    if messages[index]["role"] != "assistant":
        return None
    try:
        before = _apply_template(tokenizer, messages[:index], add_generation_prompt=True)
        through = _apply_template(tokenizer, messages[: index + 1], add_generation_prompt=False)
    except (TemplateError, ValueError, IndexError):
        # Templates may refuse partial conversations (e.g. one that must start with a user turn).
        return None
    if not (full.startswith(before) and full.startswith(through)) or len(through) <= len(before):
        return None
    return len(before), len(through)


def _apply_template(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    return str(text)


def _render_plain(messages: list[dict[str, str]], tokenizer: Any) -> tuple[str, list[Span]]:
    """``role: content`` lines for tokenizers without a chat template; answers end with EOS."""
    eos = tokenizer.eos_token or ""
    text, spans = tokenizer.bos_token or "", []
    for message in messages:
        text += f"{message['role']}: "
        body = message["content"] + (eos if message["role"] == "assistant" else "") + "\n"
        if message["role"] == "assistant":
            spans.append((len(text), len(text) + len(body)))
        text += body
    return text, spans


__all__ = [
    "IGNORE_INDEX",
    "Features",
    "PreparedDataset",
    "prepare_dataset",
    "render_example",
    "split_examples",
    "tokenize_example",
    "truncate_example",
]
