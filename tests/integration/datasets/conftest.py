"""Dataset fixtures: small valid files and a generator for large ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data" / "support_chat.jsonl"


def chat_line(i: int) -> str:
    return json.dumps(
        {
            "messages": [
                {"role": "user", "content": f"question {i}: how do I reset lamp {i % 97}?"},
                {"role": "assistant", "content": f"Hold the button for {i % 9 + 2} seconds."},
            ]
        }
    )


@pytest.fixture
def small_dataset(tmp_path: Path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(chat_line(i) for i in range(40)) + "\n")
    return path


def write_large(path: Path, size_bytes: int) -> Path:
    with open(path, "w") as out:
        i = 0
        while out.tell() < size_bytes:
            out.write(chat_line(i) + "\n")
            i += 1
    return path
