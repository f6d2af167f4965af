"""The README's "same flow in your own code" block, run verbatim against the local stack as a signed-in user.

It trains a real (tiny) LoRA adapter on the CPU, so it needs the ``train`` extra."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def readme_sample() -> str:
    text = (ROOT / "README.md").read_text()
    after = text[text.index("The same flow in your own code") :]
    match = re.search(r"```python\n(.*?)```", after, re.S)
    assert match, "the README has the Python sample"
    return match.group(1)


def test_the_readme_sample_runs_as_written(local_supabase: Any, tmp_path: Path) -> None:
    pytest.importorskip("peft")
    local_supabase.create_user("me@example.com", "a long password 8")
    shutil.copy(ROOT / "examples" / "data" / "support_chat.jsonl", tmp_path / "chat.jsonl")
    (tmp_path / "sample.py").write_text(readme_sample())
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SUPABASE_", "LORA_PIPELINE_", "NEXT_PUBLIC_", "LORA_JOB_"))
    }
    env.update(
        SUPABASE_URL=local_supabase.url,
        SUPABASE_ANON_KEY=local_supabase.anon_key,
        LP_EMAIL="me@example.com",
        LP_PASSWORD="a long password 8",
        HF_HUB_OFFLINE="1",
    )
    done = subprocess.run(
        [sys.executable, "sample.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=280, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line for line in done.stdout.splitlines() if line.startswith("succeeded |")]
    assert printed == ["succeeded | warn: 0 of 1 conditions passed; warning: eval_loss delta (missing_baseline)"], (
        done.stdout
    )
    assert (tmp_path / "adapter" / "adapter_config.json").exists()
