"""Runs fixtures: a signed-in user with a ready dataset; runs spool into the test's own folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data" / "support_chat.jsonl"


@pytest.fixture
def owner(user_factory: Any) -> tuple[Any, Any, Any]:
    """(LocalUser, user client, ready dataset)."""
    user, lp = user_factory()
    return user, lp, lp.datasets.upload(SAMPLE, name="support", progress=None)


@pytest.fixture
def run_options(tmp_path: Path) -> dict[str, Any]:
    """Fast heartbeats and sends, a spool of the test's own, and a short finish."""
    return {"heartbeat_interval": 0.3, "finish_timeout": 10.0, "spool_dir": tmp_path / "spool", "flush_interval": 0.2}
