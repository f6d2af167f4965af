"""``Run``: one training run on any machine (a GPU box, a notebook, a cluster job), reported like a pod.

A run holds only the job's token and the anon key, as a pod does: every move goes through the job-token
functions (``run_start``, ``pod_set_status``, ``run_cancel``, ...), so what the process can change is its own
job and nothing else. Metrics go through :class:`~lora_pipeline.pod.MetricsReporter` (never blocks, never
raises, spools to disk); a heartbeat thread keeps the job alive, so a process that dies is marked ``pod_lost``
by ``lp.jobs.sync`` once the heartbeats stop.

    with lp.runs.start(dataset_id=ds.id, name="r8", base_model="Qwen/Qwen2.5-0.5B", config={"r": 8}) as run:
        for step in range(steps):
            run.log(step, train_loss=loss)
        run.log_artifact("out/adapter")
    # left normally: succeeded (and the model's gate ran); an exception: failed/training_error; Ctrl-C: cancelled
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._exceptions import ConfigError, LoraPipelineError
from .._logging import get_logger, register_secret
from ._run_config import json_config

if TYPE_CHECKING:
    from .._base_client import ClientCore
    from ..gates import GateReport
    from ..pod.client import PodClient
    from ..pod.reporter import MetricsReporter, ReporterStats

log = get_logger("runs")

ENDINGS = ("succeeded", "failed", "cancelled")
_CONTENT_TYPES = {".safetensors": "application/x-safetensors", ".json": "application/json"}


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended (``run.finish()``): the job's status, and the gate's report when a gate ran.

    ``reported`` is false when the end could not be recorded (the server refused or was unreachable); ``status``
    is then what the job had when last read (e.g. ``cancelled`` after its owner's cancel), ``running`` unknown.
    """

    job_id: str
    status: str
    reason: str | None
    gate: GateReport | None
    metrics: ReporterStats | None
    reported: bool = True


def one_line(error: BaseException) -> str:
    """``Type: first line of the message`` (at most 500 characters)."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")[:500]


class Run:
    """A live run of one job; build it with ``lp.runs.start(...)`` or, holding only a job token,
    :meth:`from_env`.

    Args:
        job_id, job_token, url, anon_key: the job's credentials (``lp.jobs.issue_token`` gives them).
        model_name: on a ``succeeded`` finish, run this model's regression gate (needs ``owner``).
        owner: the owner's client core, for the gate; a run from a job token alone has none.
        heartbeat_interval: seconds between heartbeats (the job is ``pod_lost`` after 10 minutes without).
        finish_timeout: the most seconds ``finish()`` spends sending what is left.
        reporter: a :class:`MetricsReporter` to use (default: one for this job).
    """

    def __init__(
        self,
        job_id: str,
        job_token: str,
        url: str,
        anon_key: str,
        *,
        model_name: str | None = None,
        owner: ClientCore | None = None,
        heartbeat_interval: float = 30.0,
        finish_timeout: float = 30.0,
        reporter: MetricsReporter | None = None,
        **reporter_options: Any,
    ) -> None:
        from ..pod.client import PodClient
        from ..pod.reporter import MetricsReporter
        from ..pod.runtime import Heartbeat

        register_secret(job_token)
        self.job_id = job_id
        self.model_name = model_name
        self.finish_timeout = finish_timeout
        self._owner = owner
        self._credentials = (url, anon_key, job_token)
        self.client: PodClient = PodClient(url, anon_key, job_id, job_token)
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        self._outcome: RunOutcome | None = None
        self._artifacts: list[str] = []
        self.reporter = reporter or MetricsReporter(
            job_id, job_token, url, anon_key, enabled=True, handle_signals=False, **reporter_options
        )
        try:  # after the reporter: a bad reporter option must not leave a running job behind
            self.client.rpc("run_start")
        except BaseException:
            self.reporter.finish(timeout=0)
            self.client.close()
            raise
        self._heartbeat = Heartbeat(self.client, heartbeat_interval, self.cancel_event)
        self._heartbeat.start()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> Run:
        """A run of the job named by ``LORA_JOB_ID`` / ``LORA_JOB_TOKEN`` and the project's URL and anon key
        (the variables :meth:`JobCredentials.env` writes): for a process launched by someone else's scheduler.

        Raises:
            ConfigError: a setting is missing (the message names every variable tried).
            PermissionDenied: the token is wrong, expired, or its job has ended.
            InvalidTransition: the job is not a fresh one (e.g. a pod was launched for it).
        """
        import os

        from ..pod._env import POD_ENV_NAMES, check_pod_key, pod_setting

        environ = os.environ if env is None else env
        values, problems = {}, []
        for name in POD_ENV_NAMES:
            try:
                values[name] = pod_setting(name, options.pop(name, None), environ)
            except ConfigError as error:
                problems.append(error)
        if problems:
            tried = tuple(n for p in problems for n in p.env_names)
            raise ConfigError("; ".join(p.message for p in problems), argument=problems[0].argument, env_names=tried)
        check_pod_key(values["anon_key"])
        return cls(values["job_id"], values["job_token"], values["url"], values["anon_key"], **options)

    # -- while it runs ------------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._outcome is not None

    @property
    def cancel_requested(self) -> bool:
        """The owner asked to cancel (``lp.jobs.cancel``); stop training and call ``finish("cancelled")``."""
        return self.cancel_event.is_set()

    def log(self, step: int | None = None, *, epoch: float | None = None, **values: Any) -> None:
        """Record metrics at ``step`` (see :meth:`MetricsReporter.log`): microseconds, no I/O.

        Raises:
            ConfigError: the run has finished (nothing after ``finish()`` is recorded).
        """
        self._require_open("log()")
        self.reporter.log(step, epoch=epoch, **values)

    def set_progress(self, **progress: Any) -> None:
        """Merge ``progress`` (``step``, ``total_steps``, ``epoch``, ...) into the job's progress."""
        self._require_open("set_progress()")
        self._heartbeat.progress.update(json_config(progress, what="progress"))
        self.reporter.set_progress(**progress)

    def record_config(self, config: Any) -> dict[str, Any]:
        """Store ``config`` as the job's hyperparameters (what really ran); returns what was stored.

        Never raises into training: a value with no JSON form is dropped with a warning, a failure to store
        is logged.
        """
        self._require_open("record_config()")
        stored = json_config(config)
        try:
            self.client.rpc("run_record_config", {"config": stored})
        except LoraPipelineError as error:
            log.warning("run %s: could not record its configuration: %s", self.job_id, error)
        return stored

    def log_artifact(self, path: str | Path) -> str:
        """Upload an adapter folder (or one file) to ``lora-models/<user>/<job>/`` and register it as the job's
        artifact; the job is ``uploading`` from here until :meth:`finish`. Returns the artifact id."""
        self._require_open("log_artifact()")
        source = Path(path)
        files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        if not source.exists() or not files:
            raise ConfigError(f"{source} is not a file or a folder with files in it", argument="path")
        job = self.client.get_job()
        if job.get("status") == "running":
            self.client.set_status("uploading")
        artifact_id = _upload(self.client, self._credentials, source, files, job["models_prefix"])
        self._artifacts.append(artifact_id)
        return artifact_id

    # -- the end ------------------------------------------------------------------------------------------

    def finish(
        self,
        status: str = "succeeded",
        *,
        message: str | None = None,
        reason: str | None = None,
        timeout: float | None = None,
    ) -> RunOutcome:
        """End the run: send what is left (bounded by ``timeout``), report ``status`` (succeeded, failed or
        cancelled; ``failed`` with ``reason``, default ``training_error``) and, on success with a ``model_name``,
        run its gate. A second call returns the first outcome and changes nothing."""
        if status not in ENDINGS:
            raise ConfigError(f"a run finishes succeeded, failed or cancelled, not {status!r}", argument="status")
        with self._lock:
            if self._outcome is not None:
                return self._outcome
            seconds = self.finish_timeout if timeout is None else timeout
            self._heartbeat.stop()
            stats = self.reporter.finish(timeout=seconds)
            reported = self._report_end(status, message, reason or "training_error", seconds)
            if reported is None:
                status, reason = self._status_now()
            else:
                reason = reported or None
            gate = self._gate() if status == "succeeded" else None
            if gate is not None and gate.decision == "block":
                status, reason = "failed", "gate_failed"
            self._outcome = RunOutcome(self.job_id, status, reason, gate, stats, reported=reported is not None)
            self.client.close()
            return self._outcome

    def fail(self, message: str, *, reason: str = "training_error") -> RunOutcome:
        """End the run ``failed`` with ``reason`` and ``message``."""
        return self.finish("failed", message=message, reason=reason)

    def _report_end(self, status: str, message: str | None, reason: str, timeout: float) -> str | None:
        """The reason recorded ("" for none), or ``None`` when the end could not be recorded."""
        try:
            if status == "cancelled":
                self.client.rpc("run_cancel", {"message": message}, timeout=timeout)
                return "cancelled_by_user"
            if status == "failed":
                error = {"reason": reason, "message": (message or "the run failed")[:2000]}
                self.client.set_status("failed", reason=reason, message=message, error=error, timeout=timeout)
                return reason
            self.client.set_status("succeeded", timeout=timeout)
            return ""
        except LoraPipelineError as error:
            log.error("run %s: could not report %s: %s", self.job_id, status, error)
        return None

    def _status_now(self) -> tuple[str, str | None]:
        try:
            job = self.client.get_job()
        except LoraPipelineError:
            return "running", None
        return str(job.get("status", "running")), job.get("status_reason")

    def _gate(self) -> GateReport | None:
        if not self.model_name:
            return None
        if self._owner is None:
            log.warning(
                "run %s: the gate of %s needs the owner's client; lp.jobs.sync runs it", self.job_id, self.model_name
            )
            return None
        from .._executor import SyncExecutor
        from ..resources.gates import COMPLETION_HOOK, validate_job

        try:
            return SyncExecutor(self._owner).run(
                validate_job(self.job_id, self.model_name, None, False, False, COMPLETION_HOOK)
            )
        except LoraPipelineError as error:
            log.warning("run %s: the gate of %s did not run: %s", self.job_id, self.model_name, error)
            return None

    def _require_open(self, what: str) -> None:
        if self._outcome is not None:
            raise ConfigError(
                f"run {self.job_id} has finished ({self._outcome.status}): {what} records nothing now; "
                "start a new run with lp.runs.start(...)"
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if error is None or (isinstance(error, SystemExit) and error.code in (0, None)):
            self.finish("succeeded")
        elif isinstance(error, KeyboardInterrupt):
            self.finish("cancelled", message="interrupted (KeyboardInterrupt)")
        elif not isinstance(error, GeneratorExit):
            oom = isinstance(error, MemoryError) or "out of memory" in str(error).lower()
            self.fail(one_line(error), reason="oom" if oom else "training_error")

    def __repr__(self) -> str:
        state = self._outcome.status if self._outcome else "running"
        return f"Run(job_id={self.job_id!r}, {state})"


def _upload(client: PodClient, credentials: tuple[str, str, str], source: Path, files: list[Path], prefix: str) -> str:
    """Each file to Storage with the job's token headers, then one ``pod_register_artifact`` for the folder."""
    from .._base_client import ClientCore
    from .._config import Settings
    from .._executor import SyncExecutor
    from .._roles import Role
    from .._transfer import sha256_file, upload_file

    url, anon_key, _ = credentials
    executor = SyncExecutor(ClientCore(Settings.resolve(env={}, url=url, anon_key=anon_key, role=Role.ANON)))
    base = source if source.is_dir() else source.parent
    listed: list[dict[str, Any]] = []
    for path in files:
        name = path.relative_to(base).as_posix()
        content_type = _CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        executor.run(
            upload_file(
                path,
                bucket="lora-models",
                object_name=prefix + name,
                content_type=content_type,
                headers=client.storage_headers,
            )
        )
        listed.append({"name": name, "size": path.stat().st_size, "sha256": sha256_file(path)})
    manifest = "\n".join(f"{f['name']}:{f['sha256']}" for f in listed)
    config_file = base / "adapter_config.json"
    adapter_config = json.loads(config_file.read_text()) if config_file.is_file() else None
    return client.register_artifact(
        prefix,
        listed,
        sum(int(f["size"]) for f in listed),
        hashlib.sha256(manifest.encode()).hexdigest(),
        adapter_config,
    )


__all__ = ["ENDINGS", "Run", "RunOutcome", "one_line"]
