"""Jobs fixtures: a user with an uploaded dataset, a local backend running the selftest trainer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lora_pipeline.backends.local import LocalBackend

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data" / "support_chat.jsonl"


@pytest.fixture
def owner(user_factory: Any) -> tuple[Any, Any, Any]:
    """(LocalUser, user client, ready dataset)."""
    user, lp = user_factory()
    return user, lp, lp.datasets.upload(SAMPLE, name="support", progress=None)


@pytest.fixture
def local_backend(tmp_path: Path) -> LocalBackend:
    return LocalBackend(
        work_dir=tmp_path / "pods", extra_env={"LORA_TRAINER": "selftest", "LORA_HEARTBEAT_SECONDS": "0.5"}
    )


@pytest.fixture
def slow_backend(tmp_path: Path) -> LocalBackend:
    """Each selftest step takes half a second, so there is a running job to cancel or stop."""
    return LocalBackend(
        work_dir=tmp_path / "slow",
        price_per_hour=3600.0,
        extra_env={"LORA_TRAINER": "selftest", "LORA_HEARTBEAT_SECONDS": "0.3", "LORA_SELFTEST_STEP_SECONDS": "0.5"},
    )
