"""A tiny, randomly initialised causal LM with a tokenizer trained on a dataset: a base model for offline runs.

Tests and the demo cannot download a base model, and do not need a good one: they need the real code path
(``from_pretrained``, a chat template, LoRA on ``q_proj``/``k_proj``/``v_proj``/``o_proj``, the Trainer) on a
model small enough to train in seconds on a CPU. A Llama-architecture model of about 0.65 M parameters with
a byte-level BPE vocabulary learned from the dataset's own text fits: nothing is out of vocabulary, and
sequences stay short.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from .._exceptions import ConfigError
from ..datasets.formats import DatasetFormat, to_messages
from ._records import Record, load_records, record_format

SPECIAL_TOKENS = {
    "pad_token": "<|pad|>",
    "bos_token": "<|bos|>",
    "eos_token": "<|eos|>",
    "unk_token": "<|unk|>",
}
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|tool|>")

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}{{ eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""``<|bos|><|user|>\\nHi<|eos|><|assistant|>\\nHello!<|eos|>``: each turn a role token, its text and EOS."""


def build_tiny_base_model(
    dataset: str | Path | Iterable[Record],
    output_dir: str | Path,
    *,
    vocab_size: int = 1024,
    hidden_size: int = 128,
    num_layers: int = 2,
    num_heads: int = 4,
    max_position_embeddings: int = 2048,
    initializer_range: float = 0.1,
    seed: int = 0,
) -> Path:
    """Build and save a tiny random Llama-style model and a tokenizer trained on ``dataset``'s text.

    Args:
        dataset: a JSONL or JSON-array file, or its records (any accepted format).
        output_dir: where ``config.json``, ``model.safetensors`` and the tokenizer files go.
        vocab_size: target size of the byte-level BPE vocabulary (smaller when the text is too small).
        hidden_size: width of the model; must be divisible by ``num_heads``.
        num_layers: decoder layers.
        num_heads: attention heads.
        max_position_embeddings: longest sequence the model accepts.
        initializer_range: standard deviation of the random weights. Larger than the usual 0.02 so that,
            with tied embeddings this narrow, the logits can spread far enough for attention-only LoRA to
            bring the loss well below uniform within a few dozen steps.
        seed: seeds the weights; the same arguments give the same files.

    Returns:
        ``output_dir``, loadable offline with ``AutoModelForCausalLM.from_pretrained`` and
        ``AutoTokenizer.from_pretrained``.

    Raises:
        ConfigError: ``hidden_size`` is not a multiple of ``num_heads``.

    Example::

        base = build_tiny_base_model("examples/data/support_chat.jsonl", "/tmp/tiny-base")
        train_lora(base_model=base, ...)
    """
    if hidden_size % num_heads:
        raise ConfigError(
            f"hidden_size ({hidden_size}) must be a multiple of num_heads ({num_heads})", argument="hidden_size"
        )
    output_dir = Path(output_dir)
    tokenizer = build_tiny_tokenizer(dataset_texts(load_records(dataset)), vocab_size=vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 4,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=num_heads,
        max_position_embeddings=max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        initializer_range=initializer_range,
    )
    with torch.random.fork_rng(devices=[]):  # seed the weights without touching the caller's random state
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(output_dir)
    tokenizer.save_pretrained(output_dir)
    return output_dir


def build_tiny_tokenizer(texts: Iterable[str], *, vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``, with special tokens and a chat template.

    Byte-level means every string is encodable (no unknown tokens); training is deterministic for the same
    texts. Role markers are single special tokens so the template renders compactly.
    """
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS.values(), *ROLE_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        chat_template=CHAT_TEMPLATE,
        **SPECIAL_TOKENS,
    )


def dataset_texts(records: Iterable[Record]) -> Iterator[str]:
    """Every message text of every record whose format is recognised (the tokenizer's training corpus)."""
    for record in records:
        fmt = record_format(record, None)
        if fmt is DatasetFormat.TEXT:
            yield str(record["text"])
        elif fmt is not None:
            yield from (message["content"] for message in to_messages(record, fmt))


__all__ = ["CHAT_TEMPLATE", "build_tiny_base_model", "build_tiny_tokenizer", "dataset_texts"]
