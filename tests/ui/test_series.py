"""Chart data shaping, pure: the downsample keeps real points and spikes, the cache reads only what is new."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

from lora_pipeline.types.jobs import TrainingJob
from lora_pipeline.types.metrics import MetricPoint
from lora_pipeline.ui._series import Series, SeriesCache, downsample_indices
from lora_pipeline.ui._views import age, champions, config_table, cost_so_far


def series(count: int) -> Series:
    made = Series()
    made.extend([MetricPoint(step=s, train_loss=1 + math.sin(s / 50), learning_rate=1e-4) for s in range(1, count + 1)])
    return made


def test_a_long_history_is_cut_to_real_points_and_a_spike_survives() -> None:
    long = series(100_000)
    long.values["train_loss"][61_234] = 50.0  # one diverged step among 100,000
    columns = long.columns(max_points=2000)
    assert len(columns["steps"]) <= 2000 and columns["total"] == 100_000 and not columns["exact"]
    assert columns["steps"][0] == 1 and columns["steps"][-1] == 100_000
    assert 61_235 in columns["steps"] and max(columns["train_loss"]) == 50.0
    for step, value in zip(columns["steps"], columns["train_loss"], strict=True):
        assert value == long.values["train_loss"][step - 1]  # every drawn point is one that was logged


def test_a_short_history_is_sent_whole() -> None:
    columns = series(500).columns(max_points=2000)
    assert columns["exact"] and columns["steps"] == list(range(1, 501))


def test_gaps_and_non_finite_values_are_nulls() -> None:
    made = Series()
    made.extend([MetricPoint(step=1, train_loss=math.nan), MetricPoint(step=2, eval_loss=math.inf)])
    assert made.values["train_loss"] == [None, None] and made.values["eval_loss"] == [None, None]
    assert downsample_indices(made.steps, made.values, 1) == [0, 1]


def test_extend_ignores_points_already_held_and_window_bounds_are_inclusive() -> None:
    made = series(100)
    made.extend([MetricPoint(step=50, train_loss=9.0), MetricPoint(step=101, train_loss=0.5)])
    assert made.last_step == 101 and made.steps.count(50) == 1
    assert made.window(10, 12).steps == [10, 11, 12]


def test_the_cache_is_per_viewer_and_bounded() -> None:
    cache = SeriesCache(capacity=2)
    cache.get("ann", "job-1").extend([MetricPoint(step=1)])
    assert cache.get("bob", "job-1").last_step == -1  # bob never sees ann's points
    cache.get("ann", "job-2")
    cache.get("ann", "job-3")
    assert cache.get("ann", "job-1").last_step == -1  # evicted, read again next time
    cache.forget("ann")


def job(**fields: object) -> TrainingJob:
    base = {"id": "j", "user_id": "u", "dataset_id": "d", "base_model": "m", "status": "succeeded"}
    return TrainingJob.model_validate({**base, **fields})


def test_config_table_puts_differences_first() -> None:
    rows = config_table([job(hyperparameters={"lora_r": 8, "epochs": 1}), job(hyperparameters={"lora_r": 16})])
    assert rows[0]["differs"] and {r["name"] for r in rows if r["differs"]} == {"hp.lora_r", "hp.epochs"}
    assert not next(r for r in rows if r["name"] == "base_model")["differs"]


def test_cost_age_and_champion() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    running = job(status="running", cost_per_hour=0.5, started_at=now - timedelta(hours=2))
    assert cost_so_far(running, now) == 1.0 and age(now - timedelta(minutes=5), now) == "5 min"
    old = job(id="a", created_at=now - timedelta(days=2))
    new = job(id="b", created_at=now - timedelta(days=1))
    blocked = job(id="c", created_at=now)
    assert champions([old, new, blocked], {"a": "pass", "b": "warn", "c": "block"})["m"].id == "b"
