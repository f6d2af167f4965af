"""The pod program: ``python -m lora_pipeline.pod run`` (DESIGN §8).

1. Read the environment (job id, job token, project URL, anon key; never the service key).
2. Ask for the job. An ENDED job means a restarted container: exit at once without training again.
3. Report ``running``; heartbeat in the background (which also delivers cancel requests).
4. Download the job's dataset with the job token and check its SHA-256.
5. Train (the real LoRA trainer, or ``selftest``) while the metrics reporter streams points.
6. Report ``uploading``; upload every output file under ``lora-models/<user>/<job>/``; register the artifact.
7. Report ``succeeded`` (or ``failed`` with the reason and the last log lines, or ``cancelled``).
8. End its own pod (RunPod keeps restarting exited containers and billing otherwise).
"""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import signal
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._exceptions import PermissionDenied
from .._logging import get_logger, register_secret
from .environment import PodEnvironment

log = get_logger("pod")
TERMINAL = {"succeeded", "failed", "cancelled"}
_CONTENT_TYPES = {
    ".safetensors": "application/x-safetensors",
    ".json": "application/json",
    ".tar": "application/x-tar",
    ".gz": "application/gzip",
    ".tgz": "application/gzip",
}


class Cancelled(Exception):
    """The job's owner asked to cancel; training stopped early."""


class _Tail(logging.Handler):
    """Keeps the last log lines, for the failure report."""

    def __init__(self, size: int = 40) -> None:
        super().__init__()
        self.lines: collections.deque[str] = collections.deque(maxlen=size)

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.getMessage()}")


class Heartbeat(threading.Thread):
    """Tells Supabase the pod is alive every few seconds; raises the cancel flag when asked to."""

    def __init__(self, client: Any, interval: float, cancel: threading.Event) -> None:
        super().__init__(name="lora-heartbeat", daemon=True)
        self.client, self.interval, self.cancel = client, interval, cancel
        self.progress: dict[str, Any] = {}
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.beat()

    def beat(self) -> None:
        try:
            reply = self.client.rpc(
                "pod_heartbeat",
                {
                    "job_id": self.client.job_id,
                    "job_token": self.client.job_token,
                    "progress": dict(self.progress) or None,
                },
            )
        except PermissionDenied as error:  # the token died with its job: nothing will ever get through again
            log.warning("heartbeat stopped: %s", error)
            self.stop()
            return
        except Exception as error:  # a missed heartbeat is not fatal; the next one may get through
            log.warning("heartbeat failed: %s", error)
            return
        if isinstance(reply, dict) and reply.get("cancel_requested"):
            self.cancel.set()

    def stop(self) -> None:
        self._stop_event.set()


class PodProgram:
    """One run of the pod program for one job."""

    def __init__(self, env: PodEnvironment, *, trainer: str | None = None) -> None:
        from .client import PodClient

        self.env = env
        self.trainer = trainer or env.trainer
        register_secret(env.job_token)
        register_secret(env.runpod_api_key)
        self.client = PodClient(env.url, env.anon_key, env.job_id, env.job_token)
        self.cancel = threading.Event()
        self.tail = _Tail()
        logging.getLogger("lora_pipeline").addHandler(self.tail)

    def rpc(self, name: str, **args: Any) -> Any:
        return self.client.rpc(name, args)

    def run(self) -> int:
        """Run the job; returns the process exit code (0 also for "already finished")."""
        job = self.rpc("pod_get_job")
        if job.get("status") in TERMINAL:
            log.info("job %s already ended (%s); nothing to do", self.env.job_id, job["status"])
            self.end_pod()
            return 0
        self.rpc("pod_set_status", status="running", message=f"pod {self.env.pod_id or '?'} started ({self.trainer})")
        heartbeat = Heartbeat(self.client, self.env.heartbeat_seconds, self.cancel)
        heartbeat.start()
        try:
            return self._train_and_upload(job, heartbeat)
        finally:
            heartbeat.stop()
            self.end_pod()

    def _train_and_upload(self, job: dict[str, Any], heartbeat: Heartbeat) -> int:
        from .reporter import MetricsReporter

        reporter = MetricsReporter(
            self.env.job_id, self.env.job_token, self.env.url, self.env.anon_key, spool_dir=self.env.work_dir / "spool"
        )
        stage = "container_error"
        try:
            stage = "container_error"
            dataset = self.download_dataset(job["dataset"])
            stage = "training_error"
            output = self.env.work_dir / "output"
            summary = self.train(job, dataset, output, reporter, heartbeat)
            if self.cancel.is_set():
                raise Cancelled()
            reporter.finish(timeout=60)
            stage = "upload_failed"
            self.rpc("pod_set_status", status="uploading", progress=heartbeat.progress or None)
            self.upload_outputs(job, output)
            self.rpc("pod_set_status", status="succeeded", message=_summary_line(summary))
            return 0
        except Cancelled:
            reporter.finish(timeout=30)
            self.rpc("pod_set_status", status="cancelled", message="stopped after a cancel request")
            return 0
        except BaseException as error:
            reporter.finish(timeout=30)
            if isinstance(error, SystemExit) and self._cancel_requested():
                self.rpc("pod_set_status", status="cancelled", message="stopped by the controller after a cancel")
                return 0
            self._report_failure(stage, error)
            return 1

    def _cancel_requested(self) -> bool:
        """Whether the job's owner asked to cancel (a SIGTERM then means "stop", not "crash")."""
        if self.cancel.is_set():
            return True
        try:
            return bool(self.client.heartbeat().get("cancel_requested"))
        except Exception:
            return False

    def _report_failure(self, reason: str, error: BaseException) -> None:
        kind = "terminated by a signal" if isinstance(error, SystemExit) else type(error).__name__
        message = f"{reason}: {kind}: {error}\n" + "\n".join(self.tail.lines)
        log.error("job failed (%s): %s", reason, error)
        try:
            self.rpc(
                "pod_set_status",
                status="failed",
                reason=reason,
                message=message[-20000:],
                error={
                    "reason": reason,
                    "message": f"{kind}: {error}"[:2000],
                    "traceback": "".join(traceback.format_exception(error))[-4000:],
                },
            )
        except Exception as report_error:  # the controller's stale-heartbeat check catches it instead
            log.error("could not report the failure: %s", report_error)

    def train(
        self, job: dict[str, Any], dataset: Path, output: Path, reporter: Any, heartbeat: Heartbeat
    ) -> dict[str, Any]:
        def progress(values: dict[str, Any]) -> None:
            heartbeat.progress.update(values)

        if self.trainer == "selftest":
            from .selftest import run_selftest

            return run_selftest(job, dataset, output, log=reporter.log, progress=progress, cancel=self.cancel)
        from ._lora import run_lora

        return run_lora(
            job, dataset, output, reporter=reporter, client=self.client, cancel=self.cancel, progress=progress
        )

    def download_dataset(self, dataset: dict[str, Any]) -> Path:
        from .._paths import contained_path
        from .._transfer import download_file

        folder = self.env.work_dir / "data"
        folder.mkdir(parents=True, exist_ok=True)
        target = contained_path(folder, dataset.get("file_name") or "dataset.jsonl", what="the job's dataset")
        self._executor().run(
            download_file(
                dataset["bucket"],
                dataset["path"],
                target,
                expected_sha256=dataset.get("sha256"),
                headers=self.env.storage_headers(),
            )
        )
        log.info("downloaded dataset %s (%s bytes)", dataset.get("name"), target.stat().st_size)
        return target

    def upload_outputs(self, job: dict[str, Any], output: Path) -> None:
        from .._transfer import sha256_file, upload_file

        executor = self._executor()
        files = []
        for path in sorted(p for p in output.rglob("*") if p.is_file()):
            name = path.relative_to(output).as_posix()
            content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
            executor.run(
                upload_file(
                    path,
                    bucket="lora-models",
                    object_name=job["models_prefix"] + name,
                    content_type=content_type,
                    headers=self.env.storage_headers(),
                )
            )
            files.append({"name": name, "size": path.stat().st_size, "sha256": sha256_file(path)})
        manifest = "\n".join(f"{f['name']}:{f['sha256']}" for f in files)
        config_file = output / "adapter_config.json"
        adapter_config = json.loads(config_file.read_text()) if config_file.exists() else None
        self.rpc(
            "pod_register_artifact",
            storage_path=job["models_prefix"],
            files=files,
            size_bytes=sum(f["size"] for f in files),
            sha256=hashlib.sha256(manifest.encode()).hexdigest(),
            adapter_config=adapter_config,
        )
        log.info("uploaded %d file(s) to lora-models/%s", len(files), job["models_prefix"])

    def _executor(self) -> Any:
        from .._base_client import ClientCore
        from .._config import Settings
        from .._executor import SyncExecutor
        from .._roles import Role

        core = ClientCore(Settings.resolve(env={}, url=self.env.url, anon_key=self.env.anon_key, role=Role.ANON))
        return SyncExecutor(core)

    def end_pod(self) -> None:
        from . import launch
        from .self_terminate import terminate_own_pod

        if terminate_own_pod(self.env):
            try:  # tells the bootstrap the pod is ending: one terminate request, not two
                (self.env.work_dir / launch.POD_ENDED_FILE).touch()
            except OSError as error:
                log.debug("could not leave the pod-ended marker: %s", error)


def _summary_line(summary: dict[str, Any]) -> str:
    keys = ("steps", "train_loss", "eval_loss", "last_eval_loss", "tokens_per_second")
    return "training finished: " + ", ".join(f"{k}={summary[k]}" for k in keys if k in summary)


def quiet_transport_logs() -> None:
    """httpx logs full URLs at INFO (signed URLs carry tokens): keep it at WARNING and redact what passes."""
    from .._logging import RedactingFilter

    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())


def install_sigterm(handler: Callable[[int, Any], None] | None = None) -> None:
    """SIGTERM ends training like an error (SystemExit), so the job is marked failed, not left running."""

    def _raise(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler or _raise)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m lora_pipeline.pod")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run this pod's training job")
    run.add_argument("--trainer", choices=("lora", "selftest"), default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    quiet_transport_logs()
    install_sigterm()
    env = PodEnvironment.from_env()
    return PodProgram(env, trainer=args.trainer).run()


__all__ = ["Cancelled", "Heartbeat", "PodProgram", "main"]
