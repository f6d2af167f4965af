"""The LoRA trainer run inside a training pod (extra ``train``: torch, transformers, peft, trl).

Importing this package imports torch and transformers; nothing else in ``lora_pipeline`` imports it.

- ``train_lora``: fine-tune a LoRA adapter on a dataset and save it with ``training_summary.json``.
- ``build_tiny_base_model``: a tiny random causal LM and tokenizer for offline tests and demos.
- ``prepare_dataset``: records to masked, split training features (used by ``train_lora``).
"""

from __future__ import annotations

from ._records import TrainingDataError
from .data import PreparedDataset, prepare_dataset
from .tiny import build_tiny_base_model
from .trainer import ADAPTER_FILES, SUMMARY_FILE, TrainResult, planned_steps, train_lora

__all__ = [
    "ADAPTER_FILES",
    "SUMMARY_FILE",
    "PreparedDataset",
    "TrainResult",
    "TrainingDataError",
    "build_tiny_base_model",
    "planned_steps",
    "prepare_dataset",
    "train_lora",
]
