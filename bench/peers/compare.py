"""Benchmark ``peers``: our metrics path against wandb (offline) and MLflow's tracking server, in one run.

    python -m bench --peers                  # 3 interleaved rounds
    python -m bench --peers --quick          # 1 round, small sizes

Every system runs the same loop in its own fresh process (:mod:`bench.peers.children`): a tight loop of
``log()`` calls of 6 floats each, each call timed on the calling thread, then the wait until the store
acknowledged everything. The systems take turns within each round (ours, wandb, MLflow default, MLflow
tuned), so that a machine shared with other work slows all of them alike; a ratio is the median over the rounds
of the two figures of one round, never figures of two runs.

- **ours**: ``MetricsReporter`` with its default settings, into ``LocalSupabase.start(durable=True)``;
  landed rows counted in ``metrics_points`` (one row per call, 6 values).
- **wandb offline**: ``run.log(values, step=step)`` with ``WANDB_MODE=offline`` (no server: the run file is
  its store; landed steps are the ``history`` records counted in the file after ``finish()``).
- **MLflow default**: ``mlflow.log_metrics(values, step=step)`` to ``mlflow server`` (default settings) on a
  durable PostgreSQL cluster started like ours; landed rows counted in its ``metrics`` table (one per value).
- **MLflow tuned**: the same with async logging and 1 s buffering (``MLFLOW_ENABLE_ASYNC_LOGGING``,
  ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS``), then ``flush_async_logging()``.

wandb and MLflow come from the ``bench-peers`` extra, run by ``LORA_BENCH_PEERS_PYTHON`` (default: this
interpreter); a peer that interpreter cannot import is skipped, and the output says why.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from .._durability import check, start_stack
from .._jobs import count_points, make_jobs
from .._report import REPO_ROOT, Figure, Result, load_average, percentile
from .._shape import VALUES_PER_STEP
from .table import side_by_side

NAME = "peers"
MLFLOW_BUFFERING_SECONDS = 1


@dataclass
class System:
    """One measured configuration: which child program, with which settings, counted how."""

    label: str
    kind: str
    calls: int
    values_per_row: int
    """Metric values in one row of the system's store (ours: 6 a row; MLflow: 1; wandb: 6 a history record)."""
    extra: dict[str, Any] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)


def peers_python() -> str:
    return os.environ.get("LORA_BENCH_PEERS_PYTHON") or sys.executable


def _child(python: str, kind: str, settings: dict[str, Any] | None = None) -> dict[str, Any]:
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(REPO_ROOT), str(REPO_ROOT / "src"), environment.get("PYTHONPATH")) if part
    )
    done = subprocess.run(
        [python, "-m", "bench.peers.children", kind],
        input=json.dumps(settings or {}) + "\n",
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=environment,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the {kind} process failed (status {done.returncode}): {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _systems(quick: bool, available: dict[str, str | None]) -> list[System]:
    calls, mlflow_sync, mlflow_async = (2000, 100, 1000) if quick else (20_000, 500, 5000)
    systems = [System("ours", "ours", calls, VALUES_PER_STEP)]
    if available.get("wandb"):
        systems.append(System("wandb offline", "wandb", calls, VALUES_PER_STEP))
    if available.get("mlflow"):
        systems.append(System("MLflow default", "mlflow", mlflow_sync, 1))
        tuned = f"MLflow tuned (async, {MLFLOW_BUFFERING_SECONDS} s buffering)"
        systems.append(System(tuned, "mlflow", mlflow_async, 1, {"async_buffering_seconds": MLFLOW_BUFFERING_SECONDS}))
    return systems


def _landed(system: System, outcome: dict[str, Any], stack: Any, job_id: str, server: Any, python: str) -> int:
    """Rows the system's store holds after the run, counted there (not what the client says it sent)."""
    if system.kind == "ours":
        return count_points(stack, [job_id])
    if system.kind == "mlflow":
        return int(server.count_metric_rows(outcome["run_id"]))
    if not outcome.get("run_file"):
        return 0
    done = subprocess.run(
        [python, "-m", "bench.peers.wandb_file", outcome["run_file"]],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=True,
    )
    return int(done.stdout.strip())


def _one_run(system: System, stack: Any, server: Any, python: str, round_index: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lora-bench-peer-") as directory:
        settings: dict[str, Any] = {"calls": system.calls, "directory": directory, **system.extra}
        job_id = ""
        if system.kind == "ours":
            _, [(job_id, token)] = make_jobs(stack)
            settings.update(url=stack.url, anon_key=stack.anon_key, job_id=job_id, token=token)
        elif system.kind == "mlflow":
            settings.update(url=server.url, experiment=f"bench-{system.label}-{round_index}")
        load_before = load_average()
        outcome = _child(sys.executable if system.kind == "ours" else python, system.kind, settings)
        landed = _landed(system, outcome, stack, job_id, server, python)
    durations = outcome.pop("durations_ns")
    expected_rows = system.calls * VALUES_PER_STEP // system.values_per_row
    seconds = outcome["seconds"]
    return {
        "p50_us": percentile(durations, 0.5) / 1000,
        "p99_us": percentile(durations, 0.99) / 1000,
        "p999_us": percentile(durations, 0.999) / 1000,
        "seconds": round(seconds, 3),
        "rows_landed": landed,
        "rows_expected": expected_rows,
        "rows_per_s": landed / seconds,
        "values_per_s": landed * system.values_per_row / seconds,
        "load_average_before": load_before,
        **{key: value for key, value in outcome.items() if key not in ("seconds",)},
    }


def measure(rounds: int, quick: bool) -> dict[str, Any]:
    python = peers_python()
    available = _child(python, "versions")
    systems = _systems(quick, available)
    with ExitStack() as resources:
        stack = resources.enter_context(start_stack(durable=True))
        ours_settings = check(stack, True)
        server = None
        if available.get("mlflow"):
            from .mlflow_server import MlflowServer

            server = resources.enter_context(MlflowServer(python))
        for round_index in range(rounds):
            for system in systems:
                system.runs.append(_one_run(system, stack, server, python, round_index))
    return {
        "python": sys.executable,
        "peers_python": python,
        "versions": available,
        "rounds": rounds,
        "settings": {"ours": ours_settings, "mlflow": server.settings if server else None},
        "systems": {
            system.label: {"calls": system.calls, "values_per_row": system.values_per_row, "runs": system.runs}
            for system in systems
        },
    }


def _ratio(runs: list[dict[str, Any]], ours: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(run[key] / base[key] for run, base in zip(runs, ours, strict=True) if base[key]))


def run(*, quick: bool = False) -> Result:
    measured = measure(1 if quick else 3, quick)
    systems = measured["systems"]
    ours = systems["ours"]["runs"]
    figures: list[Figure] = []
    for label, system in systems.items():
        runs = system["runs"]
        for key, words, unit in (
            ("p50_us", "log() p50", "µs"),
            ("p99_us", "log() p99", "µs"),
            ("p999_us", "log() p99.9", "µs"),
            ("values_per_s", "log() to landed, metric values/s", "values/s"),
        ):
            value = statistics.median(run[key] for run in runs)
            if label == "ours":
                figures.append(Figure(f"{label}: {words}", round(value, 3), unit))
            else:
                base = statistics.median(run[key] for run in ours)
                figures.append(
                    Figure(
                        f"{label}: {words}",
                        round(value, 3),
                        unit,
                        round(base, 3),
                        "ours",
                        ratio=_ratio(runs, ours, key),
                    )
                )
    landed = [run["rows_landed"] == run["rows_expected"] for system in systems.values() for run in system["runs"]]
    figures.append(
        Figure(
            "runs whose landed count matched what was logged (counted in each store)",
            sum(landed),
            "runs",
            len(landed),
            "runs",
            target="ratio = 1",
            passed=all(landed),
        )
    )
    notes = [
        "versions: "
        + ", ".join(f"{name} {version or 'not installed'}" for name, version in measured["versions"].items()),
        f"durability: ours {measured['settings']['ours']}; MLflow's PostgreSQL {measured['settings']['mlflow']}",
        "landed: ours and MLflow counted in their PostgreSQL tables; wandb offline has no server, so its count is "
        "the history records in its run file after finish()",
        "ratio = the peer's figure / ours in the same round, median over the rounds (latency: > 1 is slower than "
        "ours; values/s: < 1 is slower)",
    ]
    notes += [
        f"{name}: skipped, `{measured['peers_python']}` cannot import it (pip install 'lora-pipeline[bench-peers]' "
        "or set LORA_BENCH_PEERS_PYTHON to an interpreter that has it)"
        for name, version in measured["versions"].items()
        if not version
    ]
    return Result(figures, measured, notes, tables=[side_by_side(measured)])
