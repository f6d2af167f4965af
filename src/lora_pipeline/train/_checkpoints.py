"""Where a job's resumable checkpoints live, and which one a restarted run resumes from.

The Trainer writes ``checkpoint-<step>`` folders (adapter, optimizer, scheduler, RNG and trainer state);
``save_total_limit=1`` keeps only the latest, so the folder stays the size of one checkpoint. A restarted
container (or the next attempt) that finds one resumes from it: same optimizer state, same data order, the
step counter where it stopped.
"""

from __future__ import annotations

import os
from pathlib import Path

from transformers.trainer_utils import get_last_checkpoint

NETWORK_VOLUME = Path("/workspace")
"""Where RunPod mounts a pod's network volume; it outlives the container."""
CHECKPOINT_DIR_ENV = "LORA_CHECKPOINT_DIR"
"""Overrides where checkpoints are kept (the pod program sets it for tests and custom volumes)."""


def latest_checkpoint(checkpoint_dir: str | Path | None) -> Path | None:
    """The newest complete ``checkpoint-<step>`` folder under ``checkpoint_dir``, or ``None``."""
    if checkpoint_dir is None or not Path(checkpoint_dir).is_dir():
        return None
    found = get_last_checkpoint(str(checkpoint_dir))  # type: ignore[no-untyped-call]
    return Path(found) if found else None


def checkpoint_step(checkpoint: Path | None) -> int:
    """The optimizer step a checkpoint was saved at (0 for none)."""
    return int(checkpoint.name.rsplit("-", 1)[-1]) if checkpoint else 0


def job_checkpoint_dir(job_id: str, *, scratch: Path, volume: Path = NETWORK_VOLUME) -> Path:
    """``$LORA_CHECKPOINT_DIR/<job>``, else ``/workspace/lora-pipeline/checkpoints/<job>`` on a network volume,
    else ``scratch/checkpoints`` (which a restarted container has lost, so the run starts over)."""
    configured = os.environ.get(CHECKPOINT_DIR_ENV)
    if configured:
        return Path(configured) / job_id
    if volume.is_dir() and os.access(volume, os.W_OK):
        return volume / "lora-pipeline" / "checkpoints" / job_id
    return scratch / "checkpoints"


__all__ = ["CHECKPOINT_DIR_ENV", "NETWORK_VOLUME", "checkpoint_step", "job_checkpoint_dir", "latest_checkpoint"]
