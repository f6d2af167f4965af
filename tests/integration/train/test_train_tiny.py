"""The tiny offline base model: loadable with the Auto classes, LoRA-ready, identical on every build."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from lora_pipeline._exceptions import ConfigError
from lora_pipeline.train import build_tiny_base_model


def test_it_loads_with_the_auto_classes_and_has_attention_projections(tiny_base_model: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_base_model)
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)

    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= names
    assert model.config.vocab_size == len(tokenizer) == 1024
    assert 500_000 < model.num_parameters() < 1_000_000
    assert (tokenizer.pad_token, tokenizer.eos_token) == ("<|pad|>", "<|eos|>")


def test_its_chat_template_renders_turns_and_a_generation_prompt(tiny_base_model: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    messages = [{"role": "user", "content": "Do you ship to Kenya?"}]

    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]

    assert text == "<|bos|><|user|>\nDo you ship to Kenya?<|eos|><|assistant|>\n"
    assert tokenizer.decode(ids) == text  # byte-level BPE: nothing is out of vocabulary


def test_the_same_arguments_build_the_same_files(sample_dataset: Path, tmp_path: Path) -> None:
    first = build_tiny_base_model(sample_dataset, tmp_path / "a", hidden_size=32, num_heads=2)
    second = build_tiny_base_model(sample_dataset, tmp_path / "b", hidden_size=32, num_heads=2)

    files = sorted(path.name for path in first.iterdir())
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in files)


def test_records_can_be_given_instead_of_a_file(tmp_path: Path) -> None:
    records = [{"text": "Lumio lamps glow."}, {"prompt": "Colour?", "completion": "Amber."}] * 20

    model_dir = build_tiny_base_model(records, tmp_path / "m", vocab_size=300, hidden_size=32, num_heads=2)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    assert len(tokenizer) <= 300
    assert tokenizer.decode(tokenizer("Amber glow")["input_ids"]) == "Amber glow"


def test_a_width_the_heads_do_not_divide_is_refused(sample_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="hidden_size"):
        build_tiny_base_model(sample_dataset, tmp_path / "m", hidden_size=32, num_heads=3)
