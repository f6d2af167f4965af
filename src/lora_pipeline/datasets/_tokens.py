"""Token counts per example: a cheap estimate by default, exact with a tokenizer; percentiles in bounded memory.

The estimate must cost about as much as ``len``: it runs on every string of every example. It assumes ~4 ASCII
characters per token (the usual English BPE ratio), and charges each extra UTF-8 byte of non-ASCII text 3/8 of a
token, so CJK text (3 bytes per character) comes out near one token per character, as real tokenizers give.
``str.isascii`` settles the common case without encoding anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeAlias, runtime_checkable

TOKENS_PER_TURN = 4
"""Tokens a chat template typically adds per turn (role markers, separators) outside the exact path."""


def text_weight(text: str) -> int:
    """Cost units of ``text``: four per estimated token."""
    if text.isascii():
        return len(text)
    extra_bytes = len(text.encode("utf-8", "surrogatepass")) - len(text)
    return len(text) + (3 * extra_bytes) // 2


def weight_to_tokens(weight: int, turns: int) -> int:
    """Estimated tokens for an example whose strings weigh ``weight`` in ``turns`` turns."""
    return -(-weight // 4) + TOKENS_PER_TURN * turns


@runtime_checkable
class EncodingTokenizer(Protocol):
    """Anything with ``encode(text) -> token ids`` (tiktoken, sentencepiece wrappers, HF tokenizers)."""

    def encode(self, text: str, /) -> Sequence[int]: ...


@runtime_checkable
class ChatTemplateTokenizer(Protocol):
    """A Hugging Face tokenizer: counts what the trainer will really tokenise, template included."""

    def apply_chat_template(self, conversation: list[dict[str, str]], /, **kwargs: Any) -> Any: ...


Tokenizer: TypeAlias = EncodingTokenizer | ChatTemplateTokenizer


class TokenCounter:
    """Exact token counts through a tokenizer's chat template, or its ``encode`` plus a per-turn overhead."""

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._template: Callable[..., Any] | None = getattr(tokenizer, "apply_chat_template", None)
        self._encode: Callable[[str], Sequence[int]] | None = getattr(tokenizer, "encode", None)
        if self._template is None and self._encode is None:
            raise TypeError(f"tokenizer must have apply_chat_template() or encode(); got {type(tokenizer).__name__}")

    def count(self, messages: list[dict[str, str]]) -> tuple[int, str | None]:
        """Tokens in ``messages``, and why the chat template refused them (then ``encode`` counted them)."""
        failure = None
        if self._template is not None:
            try:
                return _token_length(self._template(messages, tokenize=True)), None
            except Exception as exc:  # a user's tokenizer may raise anything; the template's verdict is a finding
                if self._encode is None:
                    raise
                failure = f"{type(exc).__name__}: {exc}"
        return self._encoded_length(messages), failure

    def _encoded_length(self, messages: list[dict[str, str]]) -> int:
        encode = self._encode
        if encode is None:  # unreachable: count() re-raises the template error when there is no encode
            raise TypeError("tokenizer has no encode() to fall back on")
        return sum(len(encode(message["content"])) for message in messages) + TOKENS_PER_TURN * len(messages)


def _token_length(result: Any) -> int:
    # transformers returns a list of ids, or a BatchEncoding (a Mapping) when return_dict is on by default.
    if isinstance(result, Mapping):
        result = result["input_ids"]
    return len(result)


class TokenHistogram:
    """Counts of token lengths: exact below ``EXACT_BELOW``, 1 %-wide logarithmic buckets above.

    Memory is a few thousand buckets whatever the number of examples, and percentiles are exact for lengths
    under 4096 tokens and within 1 % above; min, max and mean are exact.
    """

    EXACT_BELOW = 4096
    RATIO = 1.01

    def __init__(self) -> None:
        self.count = 0
        self.total = 0
        self.minimum: int | None = None
        self.maximum: int | None = None
        self._buckets: dict[int, int] = {}

    def add(self, tokens: int) -> None:
        """Record one example's length."""
        self.count += 1
        self.total += tokens
        if self.minimum is None or tokens < self.minimum:
            self.minimum = tokens
        if self.maximum is None or tokens > self.maximum:
            self.maximum = tokens
        bucket = tokens if tokens < self.EXACT_BELOW else self._log_bucket(tokens)
        self._buckets[bucket] = self._buckets.get(bucket, 0) + 1

    def _log_bucket(self, tokens: int) -> int:
        return self.EXACT_BELOW + int(math.log(tokens / self.EXACT_BELOW, self.RATIO))

    def _bucket_value(self, bucket: int) -> int:
        if bucket < self.EXACT_BELOW:
            return bucket
        return round(self.EXACT_BELOW * self.RATIO ** (bucket - self.EXACT_BELOW))

    def percentile(self, percent: float) -> int | None:
        """Nearest-rank percentile: the smallest length with at least ``percent`` % of examples at or below."""
        if not self.count:
            return None
        rank = max(1, math.ceil(self.count * percent / 100))
        seen = 0
        for bucket in sorted(self._buckets):
            seen += self._buckets[bucket]
            if seen >= rank:
                value = self._bucket_value(bucket)
                return min(max(value, self.minimum or 0), self.maximum or value)
        return self.maximum


__all__ = [
    "TOKENS_PER_TURN",
    "ChatTemplateTokenizer",
    "EncodingTokenizer",
    "TokenCounter",
    "TokenHistogram",
    "Tokenizer",
    "text_weight",
    "weight_to_tokens",
]
