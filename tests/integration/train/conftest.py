"""Fixtures for the trainer tests: offline Hugging Face, the sample dataset, a tiny base model built from it."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# huggingface_hub reads HF_HUB_OFFLINE once, when it is imported (test modules import it at collection), so
# a fixture would set it too late. Nothing here may be downloaded: the base model is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

SAMPLE_DATASET = Path(__file__).resolve().parents[3] / "examples" / "data" / "support_chat.jsonl"

# The trainer is the "train" extra: without it these tests are not collected rather than failing.
if any(importlib.util.find_spec(name) is None for name in ("torch", "transformers", "peft")):
    collect_ignore_glob = ["test_*.py"]


@pytest.fixture(scope="session")
def sample_dataset() -> Path:
    return SAMPLE_DATASET


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory: pytest.TempPathFactory, sample_dataset: Path) -> Path:
    from lora_pipeline.train import build_tiny_base_model

    return build_tiny_base_model(sample_dataset, tmp_path_factory.mktemp("tiny-base"), seed=0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_base_model: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base_model)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> Iterator[None]:
    """A model this small gains little from a second thread, and on a busy shared CPU two spinning threads
    can make a run several times slower; one keeps the suite's runtime predictable."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
