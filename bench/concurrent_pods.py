"""Benchmark: 50 pods reporting metrics at once into one embedded stack, against 1 pod alone.

Each pod is its own process (``python -m bench.concurrent_pods --child``), with its own job, job token, spool
directory and :class:`~lora_pipeline.pod.MetricsReporter` with default settings (500-point batches, two
requests in flight), as 50 training pods would be. The parent starts them all, waits until each has built its
reporter, then tells them all to go: each logs its points as fast as it can (4 values a step), then calls
``flush()`` and ``finish()``. Figures:

- **total points/s**: all points over the seconds from "go" until the last pod reported that every point was
  acknowledged;
- **p99 batch latency**: the time of each ``rpc/ingest_metrics`` request as a pod saw it, over all pods;
- **rows stored** against points logged (nothing lost, nothing doubled).

That burst saturates this machine (50 processes logging flat out, the gateway and PostgreSQL on 2 cores), so its
latencies are queueing under saturation. A second, **paced** run shows what a pod sees at a training pace: each
of the 50 pods starts within half a second of the others, logs a step every 10 ms for 8 seconds and sends every
half second.

Baseline: the same program with 1 pod, in the same run (3 times for the burst; the median run by points/s).

    python -m bench.concurrent_pods
    python -m bench.concurrent_pods --pods 20 --points 10000
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._durability import LABELS, start_stack, switch
from ._jobs import count_points, make_jobs
from ._report import REPO_ROOT, Figure, Result, percentile
from ._shape import VALUES_PER_STEP, step_values
from ._suite import run_standalone, standalone

NAME = "concurrent_pods"
PACE = {"step_seconds": 0.01, "flush_interval": 0.5, "start_jitter": 0.5}
"""The paced run: a step every 10 ms (a fast small-model loop), batches sent every 0.5 s, pods starting within
half a second of each other."""

# --- one pod (the child process) ---------------------------------------------------------------------------


def pod_main() -> None:
    """Read the settings from stdin, build the reporter, say ``ready``, wait for ``go``, log, finish, report."""
    from lora_pipeline.pod import MetricsReporter, PodClient

    settings = json.loads(sys.stdin.readline())
    latencies: list[float] = []

    class TimedPodClient(PodClient):
        """Times each ingest request as the sender sees it (retries are separate requests)."""

        def post(self, name: str, content: bytes, **options: Any) -> Any:
            began = time.perf_counter()
            try:
                return super().post(name, content, **options)
            finally:
                if name == "ingest_metrics":
                    latencies.append(time.perf_counter() - began)

    url, anon_key, job_id, token = settings["url"], settings["anon_key"], settings["job_id"], settings["token"]
    client = TimedPodClient(url, anon_key, job_id, token, timeout=10.0, max_retries=0)
    options = {"flush_interval": settings["flush_interval"]} if settings.get("flush_interval") else {}
    reporter = MetricsReporter(
        job_id,
        token,
        url,
        anon_key,
        spool_dir=settings["spool_dir"],
        rank=0,
        handle_signals=False,
        client=client,
        **options,
    )
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("expected 'go'")
    step_seconds = settings.get("step_seconds") or 0.0
    if settings.get("start_jitter"):  # pods of a real fleet do not start in the same millisecond
        time.sleep(random.uniform(0, settings["start_jitter"]))
    values = [step_values(step) for step in range(settings["points"])]
    began = time.perf_counter()
    for step in range(settings["points"]):
        reporter.log(step, **values[step])
        if step_seconds:
            time.sleep(max(0.0, began + (step + 1) * step_seconds - time.perf_counter()))
    logged = time.perf_counter() - began
    # flush(timeout) waits until every logged call is acknowledged; finish() alone may return while the spool
    # writer is still encoding a large pass (a race in finish(), reported separately), leaving points unsent.
    reporter.flush(timeout=300)
    stats = reporter.finish(timeout=300)
    result = {
        "points": settings["points"],
        "log_seconds": round(logged, 4),
        "seconds": round(time.perf_counter() - began, 4),
        "sent": stats.sent,
        "pending": stats.pending,
        "retries": stats.retries,
        "last_error": stats.last_error,
        "latencies_ms": [round(value * 1000, 3) for value in latencies],
    }
    print(json.dumps(result), flush=True)
    sys.stdin.readline()  # stay alive until every pod is done: 50 interpreters exiting at once would load the CPU


# --- the parent --------------------------------------------------------------------------------------------


def _spawn(settings: dict[str, Any]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    src = str(REPO_ROOT / "src")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), src, env.get("PYTHONPATH")) if p)
    child = subprocess.Popen(
        [sys.executable, "-m", "bench.concurrent_pods", "--child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    assert child.stdin is not None
    child.stdin.write(json.dumps(settings) + "\n")
    child.stdin.flush()
    return child


def run_pods(stack: Any, pods: int, points: int, spool_root: Path, **pace: float) -> dict[str, Any]:
    """Start ``pods`` pod processes, release them at once, and gather what each measured.

    ``pace``: ``step_seconds`` between two ``log()`` calls (default: as fast as possible) and the reporter's
    ``flush_interval`` (default: the reporter's).
    """
    _, jobs = make_jobs(stack, pods)
    began_spawn = time.perf_counter()
    children = []
    try:
        for index, (job_id, token) in enumerate(jobs):
            spool = spool_root / f"pods{pods}-{index}"
            settings = {"url": stack.url, "anon_key": stack.anon_key, "job_id": job_id, "token": token}
            children.append(_spawn({**settings, **pace, "points": points, "spool_dir": str(spool)}))
        for child in children:
            assert child.stdout is not None
            if child.stdout.readline().strip() != "ready":
                raise RuntimeError(f"a pod process did not start (exit status {child.wait()})")
        ready = time.perf_counter() - began_spawn
        began = time.perf_counter()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = []
        for child in children:
            assert child.stdout is not None
            line = child.stdout.readline()
            if not line.strip():
                raise RuntimeError(f"a pod process failed with exit status {child.wait()}")
            results.append(json.loads(line))
        seconds = time.perf_counter() - began
        for child in children:
            child.communicate("exit\n", timeout=60)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    return _summarise(stack, jobs, results, seconds, ready)


def _summarise(
    stack: Any, jobs: list[tuple[str, str]], results: list[dict[str, Any]], seconds: float, ready: float
) -> dict[str, Any]:
    latencies = sorted(value for result in results for value in result["latencies_ms"])
    logged = sum(result["points"] for result in results)
    return {
        "pods": len(results),
        "points_per_pod": results[0]["points"],
        "points": logged,
        "seconds": round(seconds, 3),
        "points_per_s": round(logged / seconds),
        "values_per_s": round(logged * VALUES_PER_STEP / seconds),
        "slowest_pod_seconds": max(result["seconds"] for result in results),
        "fastest_pod_seconds": min(result["seconds"] for result in results),
        "batches": len(latencies),
        "batch_ms": {
            "median": round(percentile(latencies, 0.5), 2),
            "p90": round(percentile(latencies, 0.9), 2),
            "p99": round(percentile(latencies, 0.99), 2),
            "max": round(latencies[-1], 2),
        },
        "stored": count_points(stack, [job_id for job_id, _ in jobs]),
        "pending": sum(result["pending"] for result in results),
        "retries": sum(result["retries"] for result in results),
        "errors": sorted({result["last_error"] for result in results if result["last_error"]}),
        "spawn_to_ready_seconds": round(ready, 2),
    }


def measure(pods: int, points: int, baseline_runs: int, paced_seconds: float) -> dict[str, Any]:
    paced_points = int(paced_seconds / PACE["step_seconds"])
    with start_stack(durable=True) as stack, tempfile.TemporaryDirectory(prefix="lora-bench-") as directory:
        spools = Path(directory)
        run_pods(stack, 1, min(points, 2000), spools / "warmup")  # warm the gateway's pool and caches
        alone = [run_pods(stack, 1, points, spools / f"alone{index}") for index in range(baseline_runs)]
        together = run_pods(stack, pods, points, spools / "together")
        paced_alone = run_pods(stack, 1, paced_points, spools / "paced-alone", **PACE)
        paced_together = run_pods(stack, pods, paced_points, spools / "paced-together", **PACE)
        fast_settings = switch(stack, False)  # in place (ALTER SYSTEM + reload): no second stack to warm up
        fast_together = run_pods(stack, pods, points, spools / "fast-together")
    alone.sort(key=lambda run: run["points_per_s"])
    return {
        "together": together,
        "alone": alone[len(alone) // 2],
        "alone_runs": alone,
        "paced": {"pace": PACE, "together": paced_together, "alone": paced_alone},
        "fast_settings": {"settings": fast_settings, "together": fast_together},
    }


def run(*, quick: bool = False, pods: int | None = None, points: int | None = None) -> Result:
    measured = measure(
        pods or (5 if quick else 50), points or (2000 if quick else 20_000), 1 if quick else 3, 2.0 if quick else 8.0
    )
    together, alone = measured["together"], measured["alone"]
    paced_together, paced_alone = measured["paced"]["together"], measured["paced"]["alone"]
    fast_together = measured["fast_settings"]["together"]
    count = together["pods"]
    figures = [
        Figure(
            f"{count} pods at once, {together['points_per_pod']:,} rows of 6 floats each, durable: total rows/s",
            float(together["points_per_s"]),
            "rows/s",
            float(alone["points_per_s"]),
            "1 pod alone",
        ),
        Figure(
            "same, in metric values",
            float(together["values_per_s"]),
            "values/s",
            float(alone["values_per_s"]),
            "1 pod alone",
        ),
        Figure(
            f"{count} pods at once, {LABELS[False]} by reload: total rows/s",
            float(fast_together["points_per_s"]),
            "rows/s",
            float(together["points_per_s"]),
            "durable",
        ),
        Figure(
            f"{count} pods at once: p99 batch latency ({together['batches']:,} batches)",
            together["batch_ms"]["p99"],
            "ms",
            alone["batch_ms"]["p99"],
            "1 pod alone",
        ),
        Figure(
            f"{count} pods, paced (a step every 10 ms, sent every 0.5 s): p99 batch latency "
            f"({paced_together['batches']:,} batches)",
            paced_together["batch_ms"]["p99"],
            "ms",
            paced_alone["batch_ms"]["p99"],
            "1 pod alone, paced",
        ),
        Figure(
            f"{count} pods at once: rows counted in the database (all three runs)",
            int(together["stored"] + paced_together["stored"] + fast_together["stored"]),
            "rows",
            int(together["points"] + paced_together["points"] + fast_together["points"]),
            "steps logged",
            target="ratio = 1",
            passed=all(outcome["stored"] == outcome["points"] for outcome in (together, paced_together, fast_together)),
        ),
    ]
    return Result(figures, measured)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    if argv is None and sys.argv[1:] == ["--child"]:
        pod_main()
        return {}

    def arguments(parser: Any) -> None:
        parser.add_argument("--pods", type=int, help="pods reporting at once (default 50)")
        parser.add_argument("--points", type=int, help="points each pod logs (default 20,000)")

    args = standalone(NAME, argv, arguments)
    return run_standalone(NAME, lambda: run(quick=args.quick, pods=args.pods, points=args.points), args)


if __name__ == "__main__":
    main()
