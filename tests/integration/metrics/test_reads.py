"""``lp.metrics`` reads through PostgREST, as the job's owner (RLS) and as the service role."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lora_pipeline import ConfigError, LoraPipeline
from lora_pipeline.cli import app
from lora_pipeline.local_supabase import LocalSupabase
from lora_pipeline.pod import PodClient

from .conftest import PodJob


def ingest(stack: LocalSupabase, job: PodJob, points: list[dict[str, Any]]) -> None:
    with PodClient(stack.url, stack.anon_key, job.id, job.token, max_retries=0) as client:
        for start in range(0, len(points), 1000):
            client.ingest_metrics(points[start : start + 1000])


@pytest.fixture
def owner(user_factory: Any, pod_job: Any, local_supabase: LocalSupabase) -> tuple[PodJob, LoraPipeline]:
    """A signed-in user and a job of theirs with 2,500 points (a NaN and an infinity among them)."""
    user, client = user_factory()
    job = pod_job(user_id=user.id)
    points: list[dict[str, Any]] = [{"step": s, "train_loss": 3.0 - s / 1000, "epoch": s / 1000} for s in range(2500)]
    for point in points[::500]:
        point["eval_loss"] = 2.0 + point["step"] / 10_000
        point["extra"] = {"eval_accuracy": point["step"] / 2500}
    points[2400]["train_loss"] = "NaN"
    points[2450]["perplexity"] = "Infinity"
    ingest(local_supabase, job, points)
    return job, client


def test_history_pages_past_the_row_cap_in_step_order(owner: tuple[PodJob, LoraPipeline]) -> None:
    job, client = owner
    points = client.metrics.history(job.id)
    assert [p.step for p in points] == list(range(2500))
    assert math.isnan(points[2400].train_loss or 0.0) and points[2450].perplexity == math.inf
    assert points[500].extra == {"eval_accuracy": 0.2} and points[500].epoch == 0.5
    recent = client.metrics.history(job.id, columns=["eval_loss", "eval_accuracy"], since_step=2000)
    assert [p.step for p in recent] == list(range(2000, 2500))
    assert recent[0].eval_loss == 2.2 and recent[0].train_loss is None and recent[0].value("eval_accuracy") == 0.8


def test_latest_and_final_values_per_aggregation(owner: tuple[PodJob, LoraPipeline]) -> None:
    job, client = owner
    latest = client.metrics.latest(job.id)
    assert latest is not None and latest.step == 2499
    last = client.metrics.final(job.id)
    assert last["train_loss"] == pytest.approx(3.0 - 2499 / 1000)
    assert last["eval_loss"] == pytest.approx(2.2) and last["eval_accuracy"] == pytest.approx(0.8)
    assert last["perplexity"] == math.inf
    lowest = client.metrics.final(job.id, "min")
    assert lowest["train_loss"] == pytest.approx(3.0 - 2499 / 1000), "NaN is ignored by min"
    assert client.metrics.final(job.id, "max")["train_loss"] == 3.0
    with pytest.raises(ConfigError, match="aggregation"):
        client.metrics.final(job.id, "median")


def test_a_user_sees_only_their_own_jobs_metrics(
    owner: tuple[PodJob, LoraPipeline], user_factory: Any, service_client: LoraPipeline
) -> None:
    job, _ = owner
    _, stranger = user_factory()
    assert stranger.metrics.history(job.id) == [] and stranger.metrics.latest(job.id) is None
    assert len(service_client.metrics.history(job.id, columns=["train_loss"])) == 2500


def test_dataframe_and_plot(
    owner: tuple[PodJob, LoraPipeline], pod_job: Any, local_supabase: LocalSupabase, tmp_path: Path
) -> None:
    job, client = owner
    frame = client.metrics.dataframe(job.id)
    assert len(frame) == 2500 and frame.index.name == "step"
    assert frame.loc[500, "eval_accuracy"] == 0.2 and math.isnan(frame.loc[2400, "train_loss"])
    other = pod_job(user_id=job.user_id)
    ingest(local_supabase, other, [{"step": s, "train_loss": 2.0 - s / 100} for s in range(100)])
    figure = client.metrics.plot([job.id, other.id], path=tmp_path / "loss.png")
    assert (tmp_path / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [axis.get_title() for axis in figure.axes] == ["train_loss", "eval_loss"]
    assert len(figure.axes[0].get_lines()) == 3, "two jobs, plus the marks of the NaN"


def test_the_show_command_lists_final_values_and_writes_a_plot(
    owner: tuple[PodJob, LoraPipeline], local_supabase: LocalSupabase, tmp_path: Path
) -> None:
    job, _ = owner
    env = {
        "SUPABASE_URL": local_supabase.url,
        "SUPABASE_SERVICE_ROLE_KEY": local_supabase.service_role_key,
        "SUPABASE_ANON_KEY": "",
        "LORA_PIPELINE_ANON_KEY": "",
        "LORA_PIPELINE_ACCESS_TOKEN": "",
    }
    result = CliRunner().invoke(app, ["metrics", "show", job.id, "--plot", str(tmp_path / "p.png")], env=env)
    assert result.exit_code == 0, result.output
    assert "2500 points" in result.output and "eval_accuracy" in result.output
    assert (tmp_path / "p.png").exists()
