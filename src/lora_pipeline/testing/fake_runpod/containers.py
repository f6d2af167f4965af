"""The fake's container switch: run each pod's container command as a local process, as RunPod would.

With ``FakeRunPod(execute_containers=True)`` a pod that reaches RUNNING starts its ``dockerArgs`` command
(RunPod's JSON ``{"entrypoint": [...], "cmd": [...]}`` form, else shlex-split) under ``bash`` with the pod's
environment (:meth:`FakeRunPod.pod_env`, secrets resolved). Like RunPod, an exited container is restarted,
and a pod that is terminated or stopped (by the API, by the pod's own key, by ``terminateAfter`` on the
virtual clock) has its container killed. Tests therefore run the very bootstrap a pod runs.

Each container gets a fresh virtualenv that sees the test environment's site-packages **except
lora-pipeline itself** (through a folder of links), and pip runs with ``PIP_NO_INDEX=1``: the bootstrap must
install lora-pipeline from the wheel it downloaded, and no package index is ever reached.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import site
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...pod import launch
from .state import FakePod, Phase

if TYPE_CHECKING:
    from .server import FakeRunPod

_OWN_ENTRIES = ("lora_pipeline", "_editable_impl_lora_pipeline", "__editable__", "_lora_pipeline")
_BASE_ENV = {
    "LANG": "C.UTF-8",
    "PIP_NO_INDEX": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PYTHONUNBUFFERED": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def site_packages_view(destination: Path) -> Path:
    """A folder of links to this environment's site-packages entries, lora-pipeline's own left out."""
    destination.mkdir(parents=True, exist_ok=True)
    for folder in dict.fromkeys(site.getsitepackages()):
        for entry in sorted(Path(folder).iterdir()):
            if entry.name.startswith(_OWN_ENTRIES) or (destination / entry.name).exists():
                continue
            (destination / entry.name).symlink_to(entry)
    return destination


def fresh_virtualenv(destination: Path, view: Path) -> Path:
    """A virtualenv (no pip of its own) that also sees ``view``; returns its ``bin`` folder."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(destination)], check=True, timeout=120)
    packages = next((destination / "lib").glob("python*/site-packages"))
    (packages / "_test_environment.pth").write_text(f"{view}\n", encoding="utf-8")
    return destination / "bin"


def container_argv(docker_args: str) -> list[str]:
    """What Docker runs for a pod's ``dockerArgs`` (empty: the image's own command, which the fake has not)."""
    text = docker_args.strip()
    if text.startswith("{"):
        parsed = json.loads(text)
        return [*parsed.get("entrypoint", []), *parsed.get("cmd", [])]
    return shlex.split(text)


@dataclass
class _Container:
    pod_id: str
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    stopping: bool = False
    starts: int = 0
    exit_codes: list[int] = field(default_factory=list)


class ContainerRunner:
    """Processes for the containers of one :class:`FakeRunPod` (see the module docstring).

    Args:
        fake: the server whose pods to run.
        work_dir: where each pod gets a folder (virtualenv, home, log); a temporary folder by default.
        extra_env: more variables for every container, applied before the pod's own (e.g. ``PIP_INDEX_URL``).
        restart_pause: seconds before a restarted container runs again (Docker backs off too).
        max_restarts: restarts after which a crash-looping container stays down.
        stop_grace: seconds between SIGTERM and SIGKILL when a pod is stopped or terminated (Docker's is 10).
    """

    def __init__(
        self,
        fake: FakeRunPod,
        *,
        work_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        restart_pause: float = 0.5,
        max_restarts: int = 5,
        stop_grace: float = 5.0,
    ) -> None:
        self.fake = fake
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="fake-runpod-containers-"))
        self.extra_env = dict(extra_env or {})
        self.restart_pause = restart_pause
        self.max_restarts = max_restarts
        self.stop_grace = stop_grace
        self._containers: dict[str, _Container] = {}
        self._view: Path | None = None
        self._lock = threading.Lock()

    # --- called by the state machine (under the gateway lock) ------------------------------------------
    def on_phase(self, pod: FakePod, phase: Phase) -> None:
        if phase is Phase.RUNNING:
            container = self._containers.get(pod.id)
            delay = 0.0 if container is None or container.starts == 0 else self.restart_pause
            threading.Timer(delay, self._start, (pod.id,)).start()
        elif phase in (Phase.TERMINATED, Phase.EXITED):
            self._kill(pod.id)

    # --- inspection ------------------------------------------------------------------------------------
    def log_path(self, pod_id: str) -> Path:
        return self.work_dir / pod_id / "container.log"

    def logs(self, pod_id: str) -> str:
        """Everything the pod's containers printed, every start included."""
        path = self.log_path(pod_id)
        return path.read_text(errors="replace") if path.exists() else ""

    def running(self, pod_id: str) -> bool:
        container = self._containers.get(pod_id)
        return bool(container and container.process and container.process.poll() is None)

    def starts(self, pod_id: str) -> int:
        container = self._containers.get(pod_id)
        return container.starts if container else 0

    def crash(self, pod_id: str) -> None:
        """SIGKILL every process of the container, as if it crashed; RunPod (the fake) then restarts it."""
        container = self._containers.get(pod_id)
        if container and container.process and container.process.poll() is None:
            _kill_tree(container.process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for pod_id in list(self._containers):
            self._kill(pod_id)

    # --- processes -------------------------------------------------------------------------------------
    def _start(self, pod_id: str) -> None:
        with self.fake.gateway.lock:
            pod = self.fake.state.find(pod_id)
            if pod is None or pod.phase is not Phase.RUNNING:
                return
            container = self._containers.setdefault(pod_id, _Container(pod_id, self.work_dir / pod_id))
            if container.process is not None and container.process.poll() is None:
                return
            if container.starts > self.max_restarts:
                return
            env = self._environment(container)
            argv = container_argv(pod.docker_args)
        if not argv:
            return
        with open(self.log_path(pod_id), "ab") as log:
            log.write(f"--- container start {container.starts + 1} at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            container.process = subprocess.Popen(
                argv,
                env=env,
                cwd=container.folder,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        container.starts += 1
        container.stopping = False
        threading.Thread(target=self._watch, args=(container, container.process), daemon=True).start()

    def _environment(self, container: _Container) -> dict[str, str]:
        home = container.folder / "home"
        if not home.exists():  # the container's filesystem survives a restart, as Docker's does
            with self._lock:
                if self._view is None:
                    self._view = site_packages_view(self.work_dir / "site-packages-view")
            (container.folder / "tmp").mkdir(parents=True, exist_ok=True)
            home.mkdir(parents=True)
            fresh_virtualenv(container.folder / "venv", self._view)
        env = {
            **_BASE_ENV,
            "PATH": f"{container.folder / 'venv' / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(home),
            "TMPDIR": str(container.folder / "tmp"),
            launch.WORK_DIR: str(container.folder / "work"),
            **self.extra_env,
        }
        env.update(self.fake.pod_env(container.pod_id))
        return env

    def _watch(self, container: _Container, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        container.exit_codes.append(code)
        if container.stopping:
            return
        with self.fake.gateway.lock:
            pod = self.fake.state.find(container.pod_id)
            if pod is not None and pod.phase is Phase.RUNNING:
                self.fake.state.container_exit(container.pod_id, code)

    def _kill(self, pod_id: str) -> None:
        container = self._containers.get(pod_id)
        if container is None or container.process is None or container.process.poll() is not None:
            return
        container.stopping = True
        process = container.process
        tree = _process_tree(process.pid)
        _signal(process.pid, signal.SIGTERM)  # as ``docker stop``: SIGTERM to the container's first process ...
        threading.Thread(target=_kill_after, args=(process, tree, self.stop_grace), daemon=True).start()


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants (Linux ``/proc``): a container's processes, whatever groups they made."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def _signal(pid: int, signum: int) -> None:
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        pass


def _kill_tree(root: int, signum: int) -> None:
    for pid in _process_tree(root):
        _signal(pid, signum)


def _kill_after(process: subprocess.Popen[Any], tree: list[int], grace: float) -> None:
    """... then, after the grace period, SIGKILL to every process that is left."""
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    for pid in {*tree, *_process_tree(process.pid)}:
        _signal(pid, signal.SIGKILL)


__all__ = ["ContainerRunner", "container_argv", "fresh_virtualenv", "site_packages_view"]
