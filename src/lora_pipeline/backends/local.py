"""``LocalBackend``: run the pod program as a subprocess on this machine, with exactly a pod's environment.

The environment is built from scratch (never inherited), so the parent's service-role key or any other
secret cannot leak into the "pod": it gets the job's credentials from the spec plus what a process needs to
run (PATH, HOME, locale, temp dir, the Hugging Face offline switches). Output goes to a log file per pod.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import uuid
from datetime import datetime, timezone
from pathlib import Path

from .._exceptions import ConfigError
from ..pod import launch
from .base import PodHandle, PodSpec, PodState, PodStatus

_LOCAL_POD_ID = re.compile(r"local-[0-9a-f]{12}")

_PASS_THROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "TZ",
    "HF_HOME",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TOKENIZERS_PARALLELISM",
    "OMP_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "LORA_PIPELINE_LOG",
)


TRAINER_MODULES = ("torch", "transformers", "peft", "accelerate", "safetensors")
"""What the LoRA trainer imports (the ``train`` extra)."""


class LocalBackend:
    """Pods as local processes: the embedded stack's default, and how tests and the demo run jobs."""

    name = "local"
    installs_package = False
    """The pod program runs in this interpreter (or ``python``), so there is no wheel to ship."""

    def __init__(
        self,
        *,
        work_dir: str | Path | None = None,
        price_per_hour: float = 0.0,
        python: str | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """
        Args:
            work_dir: where pod work folders and logs go (a temporary folder by default).
            price_per_hour: what a local "pod" costs, for cost records (0 by default).
            python: the interpreter running the pod program (this one by default).
            extra_env: more variables for every pod (e.g. ``{"LORA_TRAINER": "selftest"}``); never secrets.
        """
        self.work_dir = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="lora-local-pods-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.price_per_hour = price_per_hour
        self.python = python or sys.executable
        self.extra_env = dict(extra_env or {})
        self._pods: dict[str, tuple[PodHandle, subprocess.Popen[bytes]]] = {}
        self._launches: dict[str, tuple[list[str], dict[str, str]]] = {}
        self._lock = threading.Lock()

    def pod_env(self, spec: PodSpec, pod_id: str) -> dict[str, str]:
        """The complete environment of the pod process."""
        env = {k: os.environ[k] for k in _PASS_THROUGH if k in os.environ}
        env.update(self.extra_env)
        env.update(spec.user_env)
        env.update(spec.env)
        env.update(
            {
                launch.POD_ID: pod_id,
                launch.POD_BACKEND: self.name,
                launch.WORK_DIR: str(self.work_dir / pod_id),
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def launch(self, spec: PodSpec) -> PodHandle:
        self._check_trainer_requirements(spec)
        with self._lock:
            for handle, process in self._pods.values():
                if handle.name == spec.name and process.poll() is None:
                    return handle
            pod_id = f"local-{uuid.uuid4().hex[:12]}"
            (self.work_dir / pod_id).mkdir(parents=True)
            command = spec.command or [self.python, "-m", "lora_pipeline.pod", "run"]
            self._launches[pod_id] = (command, self.pod_env(spec, pod_id))
            handle = PodHandle(
                backend=self.name,
                pod_id=pod_id,
                name=spec.name,
                gpu_type=spec.gpu_type,
                cost_per_hour=self.price_per_hour,
                created_at=datetime.now(timezone.utc),
            )
            self._pods[pod_id] = (handle, self._start(pod_id))
            return handle

    def _check_trainer_requirements(self, spec: PodSpec) -> None:
        """Name the ``train`` extra before launch, not a ModuleNotFoundError a second into the pod."""
        trainer = {**self.extra_env, **spec.user_env, **spec.env}.get(launch.TRAINER, "lora")
        if not spec.command and trainer == "lora" and self.python == sys.executable:
            from .._extras import require

            require(TRAINER_MODULES, "train", "LocalBackend runs the LoRA trainer in this Python environment")

    def _start(self, pod_id: str) -> subprocess.Popen[bytes]:
        command, env = self._launches[pod_id]
        with open(self.log_path(pod_id), "ab") as log:
            return subprocess.Popen(
                command,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.work_dir / pod_id,
                start_new_session=True,
            )

    def restart(self, handle: PodHandle) -> PodHandle:
        """Run the pod's container again with the same environment, as RunPod does when a container exits.

        A pod program whose job already ended must exit at once without training again.
        """
        with self._lock:
            self.terminate(handle)
            self._pods[handle.pod_id] = (handle, self._start(handle.pod_id))
            return handle

    def environment(self, handle: PodHandle) -> dict[str, str]:
        """The environment the pod process was started with (for inspection in tests)."""
        return dict(self._launches[handle.pod_id][1])

    def log_path(self, pod_id: str) -> Path:
        """The pod's log file; only ids this backend makes (``local-<12 hex>``) map to a path, so a pod id
        read from a job row can never name a file elsewhere."""
        if not _LOCAL_POD_ID.fullmatch(pod_id):
            raise ConfigError(f"{pod_id!r} is not a local pod id (local-<12 hex digits>)", argument="pod_id")
        return self.work_dir / f"{pod_id}.log"

    def logs(self, handle: PodHandle, *, tail: int = 200) -> str:
        """The last ``tail`` lines the pod program printed; empty for a pod this backend did not launch."""
        if handle.pod_id not in self._pods:
            return ""
        path = self.log_path(handle.pod_id)
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:])

    def status(self, handle: PodHandle) -> PodStatus:
        entry = self._pods.get(handle.pod_id)
        if entry is None:
            return PodStatus(pod_id=handle.pod_id, state=PodState.TERMINATED, detail="unknown to this backend")
        known, process = entry
        code = process.poll()
        state = PodState.RUNNING if code is None else PodState.EXITED
        return PodStatus(
            pod_id=handle.pod_id, state=state, exit_code=code, cost_per_hour=self.price_per_hour, name=known.name
        )

    def wait(self, handle: PodHandle, timeout: float | None = None) -> int | None:
        """Wait for the pod process to exit; its exit code (None if still running at the timeout)."""
        entry = self._pods.get(handle.pod_id)
        if entry is None:
            return None
        try:
            return entry[1].wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def terminate(self, handle: PodHandle) -> None:
        entry = self._pods.get(handle.pod_id)
        if entry is None or entry[1].poll() is not None:
            return
        process = entry[1]
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def kill(self, handle: PodHandle) -> None:
        """SIGKILL the pod (fault injection: a pod that vanishes without reporting)."""
        entry = self._pods.get(handle.pod_id)
        if entry is not None and entry[1].poll() is None:
            os.killpg(entry[1].pid, signal.SIGKILL)
            entry[1].wait(timeout=5)

    def price(self, gpu_type: str | None) -> float | None:
        return self.price_per_hour

    def list_pods(self, prefix: str = "lp-") -> list[PodHandle]:
        return [h for h, p in self._pods.values() if h.name.startswith(prefix) and p.poll() is None]

    def handle_for(self, pod_id: str) -> PodHandle | None:
        entry = self._pods.get(pod_id)
        return entry[0] if entry else None


__all__ = ["LocalBackend"]
