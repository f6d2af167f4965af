"""Where a pod keeps its job's checkpoints: the configured folder, a RunPod network volume, else scratch."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("transformers")

from lora_pipeline.train._checkpoints import (  # after the skip: it imports transformers
    CHECKPOINT_DIR_ENV,
    checkpoint_step,
    job_checkpoint_dir,
    latest_checkpoint,
)


def test_a_network_volume_outlives_the_container_so_checkpoints_go_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CHECKPOINT_DIR_ENV, raising=False)
    volume = tmp_path / "workspace"
    volume.mkdir()

    assert job_checkpoint_dir("j1", scratch=tmp_path / "work", volume=volume) == volume / "lora-pipeline/checkpoints/j1"
    assert (
        job_checkpoint_dir("j1", scratch=tmp_path / "work", volume=tmp_path / "none") == tmp_path / "work/checkpoints"
    )
    monkeypatch.setenv(CHECKPOINT_DIR_ENV, str(tmp_path / "mine"))
    assert job_checkpoint_dir("j1", scratch=tmp_path / "work", volume=volume) == tmp_path / "mine/j1"


def test_the_latest_checkpoint_is_the_highest_step(tmp_path: Path) -> None:
    assert latest_checkpoint(None) is None and latest_checkpoint(tmp_path / "missing") is None
    for step in (4, 12, 8):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-x").mkdir()

    latest = latest_checkpoint(tmp_path)

    assert latest == tmp_path / "checkpoint-12" and checkpoint_step(latest) == 12 and checkpoint_step(None) == 0
