"""The Transformers callback owning a run: TRL's ``SFTTrainer`` and the plain ``Trainer`` on the tiny offline
model end ``succeeded`` with the configuration that really ran (the LoRA config, not the preset's)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded: the base model is built locally
pytest.importorskip("torch")
pytest.importorskip("peft")
trl = pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402
from peft import LoraConfig  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from lora_pipeline.integrations.transformers import LoraPipelineCallback  # noqa: E402
from lora_pipeline.types.jobs import JobStatus  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[3] / "examples" / "data" / "support_chat.jsonl"


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from lora_pipeline.train import build_tiny_base_model

    torch.set_num_threads(1)
    return build_tiny_base_model(SAMPLE, tmp_path_factory.mktemp("tiny-base"), seed=0)


def _chats(count: int) -> Dataset:
    records = [json.loads(line) for line in SAMPLE.read_text().splitlines()[:count]]
    return Dataset.from_list([{"messages": r["messages"]} for r in records])


def test_sft_trainer_with_the_callback_ends_succeeded_with_its_lora_config(
    owner: Any, run_options: dict[str, Any], tiny_model: Path, tmp_path: Path
) -> None:
    _, lp, dataset = owner
    lora = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    args = trl.SFTConfig(
        output_dir=str(tmp_path / "sft"),
        max_steps=4,
        per_device_train_batch_size=4,
        logging_steps=1,
        learning_rate=1e-3,
        max_length=128,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        hub_token="hf_not_a_real_token_0123456789",
    )
    with LoraPipelineCallback.start(
        lp, dataset_id=dataset.id, name="sft-r8", base_model=str(tiny_model), **run_options
    ) as callback:
        trainer = trl.SFTTrainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_model),
            args=args,
            train_dataset=_chats(32),
            processing_class=AutoTokenizer.from_pretrained(tiny_model),
            peft_config=lora,
            callbacks=[callback],
        )
        trainer.train()
        assert callback.run is not None and callback.run.finished  # on_train_end finished it
    job = lp.jobs.retrieve(callback.run.job_id)
    assert job.status is JobStatus.SUCCEEDED and job.backend == "external"
    config = job.hyperparameters
    assert config["lora"]["r"] == 8 and config["lora"]["lora_alpha"] == 16
    assert sorted(config["lora"]["target_modules"]) == ["q_proj", "v_proj"]
    assert config["training_arguments"]["max_steps"] == 4 and config["training_arguments"]["learning_rate"] == 1e-3
    assert config["trainer_arguments_class"] == "SFTConfig" and config["world_size"] == 1
    assert config["model_name"] == str(tiny_model) and config["dataset_size"] == 32
    assert "hf_not_a_real_token" not in json.dumps(config)
    assert [p.step for p in lp.metrics.history(job.id) if p.train_loss is not None] == [1, 2, 3, 4]


def test_a_trainer_that_raises_fails_the_run_the_callback_owns(
    owner: Any, run_options: dict[str, Any], tiny_model: Path, tmp_path: Path
) -> None:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class Explode(TrainerCallback):  # type: ignore[misc]
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 2:
                raise RuntimeError("CUDA error: device-side assert triggered")

    _, lp, dataset = owner
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    texts = _chats(16).map(lambda r: tokenizer(r["messages"][1]["content"], truncation=True, max_length=64))
    args = TrainingArguments(
        output_dir=str(tmp_path / "hf"),
        max_steps=4,
        per_device_train_batch_size=4,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        remove_unused_columns=True,
    )
    from transformers import DataCollatorForLanguageModeling

    with (
        pytest.raises(RuntimeError, match="device-side assert"),
        LoraPipelineCallback.start(lp, dataset_id=dataset.id, base_model=str(tiny_model), **run_options) as callback,
    ):
        Trainer(
            model=AutoModelForCausalLM.from_pretrained(tiny_model),
            args=args,
            train_dataset=texts.remove_columns(["messages"]),
            data_collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
            callbacks=[callback, Explode()],
        ).train()
    assert callback.run is not None
    job = lp.jobs.retrieve(callback.run.job_id)
    assert (job.status, job.status_reason) == (JobStatus.FAILED, "training_error")
    assert job.error["message"] == "RuntimeError: CUDA error: device-side assert triggered"
    assert job.hyperparameters["training_arguments"]["max_steps"] == 4 and "lora" not in job.hyperparameters
