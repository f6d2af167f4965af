"""TRL's SFTTrainer trains on what ``data.py`` prepared: the batches it feeds the model mask every prompt
token, train every answer token, and cover the five dataset formats; packing trains too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from transformers import TrainerCallback

from lora_pipeline.presets import resolve_hyperparameters
from lora_pipeline.train import train_lora

ANSWERS = ["Amber glow.", "Ten hours.", "Yes, in blue.", "Two years.", "Lumio lamps are warm and bright."]
RECORDS = [
    {"messages": [{"role": "user", "content": "Colour?"}, {"role": "assistant", "content": ANSWERS[0]}]},
    {"conversations": [{"from": "human", "value": "Battery?"}, {"from": "gpt", "value": ANSWERS[1]}]},
    {"instruction": "Answer the customer.", "input": "Other colours?", "output": ANSWERS[2]},
    {"prompt": "Warranty?", "completion": ANSWERS[3]},
    {"text": ANSWERS[4]},
]
PROMPTS = ["Colour?", "Battery?", "Other colours?", "Warranty?"]


class FirstBatch(TrainerCallback):  # type: ignore[misc]
    """Reads the first batch the trainer's own dataloader yields: what the model really trains on."""

    def __init__(self) -> None:
        self.batch: dict[str, Any] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.batch = next(iter(kwargs["train_dataloader"]))


def _hyperparameters(**overrides: Any) -> Any:
    values = {"learning_rate": 2e-2, "batch_size": 5, "gradient_accumulation_steps": 1, "max_seq_len": 128}
    return resolve_hyperparameters("balanced", {**values, "eval_fraction": 0.0, "dropout": 0.0, **overrides})


@pytest.fixture
def five_formats(tmp_path: Path) -> Path:
    path = tmp_path / "five.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in RECORDS), encoding="utf-8")
    return path


def test_the_batches_mask_the_prompts_and_train_the_answers_of_all_five_formats(
    tiny_base_model: Path, tiny_tokenizer: Any, five_formats: Path, tmp_path: Path
) -> None:
    seen = FirstBatch()

    result = train_lora(
        base_model=tiny_base_model,
        dataset_path=five_formats,
        output_dir=tmp_path / "out",
        hyperparameters=_hyperparameters(max_steps=1),
        callbacks=[seen],
    )

    labels, input_ids = seen.batch["labels"], seen.batch["input_ids"]
    assert labels.shape[0] == len(RECORDS) and result.summary["versions"]["trl"]
    trained = [tiny_tokenizer.decode([t for t in row.tolist() if t != -100]) for row in labels]
    context = [
        tiny_tokenizer.decode([t for t, label in zip(ids.tolist(), row.tolist(), strict=True) if label == -100])
        for ids, row in zip(input_ids, labels, strict=True)
    ]
    for answer in ANSWERS:  # each answer is trained on, with the end-of-sequence token that teaches stopping
        assert any(text.strip().startswith(answer) and text.endswith("<|eos|>") for text in trained), answer
    for prompt in PROMPTS:  # and no prompt token is: every prompt sits in the masked context
        assert not any(prompt in text for text in trained), prompt
        assert any(prompt in text for text in context), prompt
    assert (labels != -100).sum() < (seen.batch["attention_mask"] == 1).sum()


def test_packing_trains_padding_free_rows_and_the_loss_falls(
    tiny_base_model: Path, sample_dataset: Path, tmp_path: Path
) -> None:
    seen = FirstBatch()

    result = train_lora(
        base_model=tiny_base_model,
        dataset_path=sample_dataset,
        output_dir=tmp_path / "out",
        hyperparameters=_hyperparameters(packing=True, batch_size=2, max_seq_len=256, max_steps=12),
        callbacks=[seen],
    )

    batch = seen.batch
    assert "attention_mask" not in batch and batch["input_ids"].shape[0] == 1  # one flat row, no padding
    starts = (batch["position_ids"][0] == 0).sum().item()
    assert starts > 2  # several examples share the row, each with its own positions
    losses = [loss for _, loss in result.train_loss_history]
    assert len(losses) == 12 and sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.5
