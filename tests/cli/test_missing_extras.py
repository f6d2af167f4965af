"""A missing optional dependency is one line naming its extra (``[local]`` survives Rich markup), checked in
a real child process where an import hook hides the package as a fresh install without the extra would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lora_pipeline._exceptions import ConfigError
from lora_pipeline._extras import missing_modules, require

HIDE = """
import importlib.abc, os, sys

HIDDEN = set(os.environ["LP_TEST_HIDE"].split(","))


class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Hide())
"""


@pytest.fixture
def without(tmp_path: Path, cli_process: Callable[..., Any]) -> Callable[..., Any]:
    """``without("matplotlib")("metrics", ...)``: the CLI in a process where those packages cannot be imported."""
    (tmp_path / "sitecustomize.py").write_text(HIDE)

    def hide(*modules: str, env: dict[str, str] | None = None) -> Callable[..., Any]:
        def run(*args: str) -> Any:
            hidden = {"PYTHONPATH": str(tmp_path), "LP_TEST_HIDE": ",".join(modules)}
            return cli_process(*args, env={**(env or {}), **hidden})

        return run

    return hide


def test_dev_up_without_the_local_extra_names_it(without: Callable[..., Any]) -> None:
    result = without("psycopg", "psycopg_pool")("dev", "up")
    assert result.code == 2
    assert "pip install 'lora-pipeline[local]'" in result.err and "Traceback" not in result.err


def test_metrics_plot_without_matplotlib_names_the_plot_extra(without: Callable[..., Any]) -> None:
    result = without("matplotlib")("metrics", "show", "abcd1234", "--plot", "loss.png")
    assert result.code == 2
    assert "pip install 'lora-pipeline[plot]'" in result.err and result.err.count("\n") == 1


def test_require_names_the_missing_modules_and_the_extra() -> None:
    assert missing_modules(("json", "surely_not_installed_xyz")) == ["surely_not_installed_xyz"]
    with pytest.raises(ConfigError) as raised:
        require(("json", "surely_not_installed_xyz"), "train", "the LoRA trainer runs here")
    assert "surely_not_installed_xyz" in str(raised.value) and "lora-pipeline[train]" in str(raised.value)
    require(("json",), "train", "nothing missing")


def test_a_local_job_without_the_train_extra_fails_before_launch_naming_it(
    without: Callable[..., Any], user_factory: Any, local_supabase: Any
) -> None:
    user, lp = user_factory()
    sample = Path(__file__).resolve().parents[2] / "examples" / "data" / "support_chat.jsonl"
    job = lp.jobs.create(lp.datasets.upload(sample, name="support", progress=None).id, base_model="tiny")
    shell = {
        "SUPABASE_URL": local_supabase.url,
        "SUPABASE_ANON_KEY": local_supabase.anon_key,
        "LORA_PIPELINE_ACCESS_TOKEN": user.access_token,
    }
    result = without("torch", "peft", env=shell)("jobs", "deploy", job.id, "--backend", "local")
    assert result.code == 2, result
    assert "pip install 'lora-pipeline[train]'" in result.err and "torch" in result.err
    failed = lp.jobs.retrieve(job.id)
    assert (failed.status, failed.status_reason) == ("failed", "deploy_error")
    assert failed.failure_message is not None and "lora-pipeline[train]" in failed.failure_message
