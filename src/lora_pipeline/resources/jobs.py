"""``lp.jobs``: create, deploy, watch, cancel and reconcile LoRA training jobs.

A job moves ``created -> validating -> queued -> provisioning -> running -> uploading -> succeeded`` (or
``failed`` with a reason, or ``cancelling -> cancelled``); Postgres enforces every move and records it in
``job_events``. ``deploy`` issues the job token and launches the pod on a :class:`PodBackend`; from then on
the pod reports its own progress. ``wait_for_completion`` / ``sync`` reconcile what the pod cannot report
(lost pods, budget, runtime, cancels) and run the regression gate configured on the job.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import uuid
from datetime import timedelta
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

from .._exceptions import CapacityError, ConfigError, InsufficientFunds, LoraPipelineError, WaitTimeout
from .._logging import register_secret
from .._ops import Now, Offload, Plan, Sleep
from .._resource import SyncAPIResource
from ..backends.base import PodBackend, pod_belongs_to
from ..gpus import DEFAULT_GPU, check_fit, estimate_memory_gb, get_gpu, model_size_billions
from ..presets import resolve_hyperparameters
from ..types.jobs import ACTIVE_STATUSES, CostEstimate, JobCredentials, JobEvent, JobStatus, TrainingJob
from ._common import one, require_id, rows, rpc, table
from ._job_control import (
    account_cost,
    event,
    fail,
    fetch_job,
    handle_for,
    move,
    reconcile,
    record_launch,
    utcnow,
)
from ._job_delete import delete_job
from ._job_launch import LaunchOptions, launch_options, pod_spec, refuse_quantization_without_cuda, ship_package
from ._job_progress import JobProgress, ProgressOption

TOKEN_MARGIN = timedelta(hours=1)
MAX_RUNTIME = timedelta(days=7)
_GATE_KEYS = {"model_name", "version", "strict", "fail_open"}


def _check_runtime(max_runtime: timedelta) -> int:
    if not timedelta(minutes=1) <= max_runtime <= MAX_RUNTIME:
        raise ConfigError(
            f"max_runtime must be between 1 minute and {MAX_RUNTIME.days} days, got {max_runtime}",
            argument="max_runtime",
        )
    return int(max_runtime.total_seconds())


def _check_gates(gates: dict[str, Any] | None) -> dict[str, Any] | None:
    if gates is None:
        return None
    unknown = set(gates) - _GATE_KEYS
    if unknown or not isinstance(gates.get("model_name"), str) or not gates["model_name"]:
        raise ConfigError(
            "gates must be {'model_name': str, 'strict': bool, 'fail_open': bool, 'version': str}"
            + (f"; unknown keys: {', '.join(sorted(unknown))}" if unknown else ""),
            argument="gates",
        )
    return dict(gates)


class _JobPlans:
    _core: Any

    def _plan_create(
        self,
        dataset_id: str,
        base_model: str,
        preset: str,
        hyperparameters: dict[str, Any] | None,
        gpu_type: str | None,
        max_runtime: timedelta,
        max_cost_usd: float | None,
        name: str | None,
        gates: dict[str, Any] | None,
        user_id: str | None,
    ) -> Plan[TrainingJob]:
        dataset_id = require_id(dataset_id, "dataset_id")
        if not base_model or not base_model.strip():
            raise ConfigError(
                "base_model must name a Hugging Face model or a local model folder", argument="base_model"
            )
        hp = resolve_hyperparameters(preset, hyperparameters)
        gpu = get_gpu(gpu_type) if gpu_type else None
        if gpu is not None:
            check_fit(gpu, base_model, hp)
        if max_cost_usd is not None and not max_cost_usd > 0:
            raise ConfigError(f"max_cost_usd must be positive, got {max_cost_usd}", argument="max_cost_usd")
        found = yield table("datasets", lambda t: t.select("id, user_id, status").eq("id", dataset_id))
        dataset = one(found, "dataset", dataset_id)
        if dataset["status"] != "ready":
            raise ConfigError(f"dataset {dataset_id} is {dataset['status']}, not ready: finish its upload first")
        owner = self._core.user_id_for(user_id or dataset["user_id"])
        if owner != dataset["user_id"]:
            raise ConfigError(
                f"dataset {dataset_id} belongs to another user: a job trains on a dataset of its own owner",
                argument="user_id",
            )
        row = {
            "id": str(uuid.uuid4()),
            "user_id": owner,
            "dataset_id": dataset_id,
            "name": name,
            "base_model": base_model.strip(),
            "preset": preset,
            "hyperparameters": hp.model_dump(mode="json"),
            "gpu_type": gpu.key if gpu else None,
            "max_runtime_seconds": _check_runtime(max_runtime),
            "max_cost_usd": max_cost_usd,
            "gates": _check_gates(gates),
        }
        result = yield table("training_jobs", lambda t: t.insert(row), idempotent=False)
        return TrainingJob.model_validate(one(result, "job", row["id"]))

    def _plan_retrieve(self, job_id: str) -> Plan[TrainingJob]:
        return (yield from fetch_job(require_id(job_id, "job_id")))

    def _plan_delete(self, job_id: str) -> Plan[None]:
        return (yield from delete_job(job_id))

    def _plan_list(self, status: str | None, dataset_id: str | None, limit: int) -> Plan[list[TrainingJob]]:
        def build(t: Any) -> Any:
            query = t.select("*").order("created_at", desc=True).limit(limit)
            query = query.eq("status", str(JobStatus(status))) if status else query
            return query.eq("dataset_id", require_id(dataset_id, "dataset_id")) if dataset_id else query

        result = yield table("training_jobs", build)
        return [TrainingJob.model_validate(row) for row in rows(result)]

    def _plan_events(self, job_id: str, after_id: int | None) -> Plan[list[JobEvent]]:
        job_id = require_id(job_id, "job_id")
        result = yield table(
            "job_events", lambda t: t.select("*").eq("job_id", job_id).order("id").gt("id", after_id or 0).limit(1000)
        )
        return [JobEvent.model_validate(row) for row in rows(result)]

    def _plan_issue_token(self, job_id: str, ttl: timedelta | None) -> Plan[JobCredentials]:
        job = yield from self._plan_retrieve(job_id)
        if job.terminal:
            raise ConfigError(f"job {job.id} has ended ({job.status}); tokens of ended jobs are dead")
        anon_key = self._core.settings.anon_key
        if anon_key is None:
            raise ConfigError(
                "issuing a job token needs the anon key (pods never get the service key): set SUPABASE_ANON_KEY",
                argument="anon_key",
            )
        token = token_urlsafe(32)
        register_secret(token)
        expires_at = utcnow() + (ttl or job.max_runtime + TOKEN_MARGIN)
        params = {
            "job_id": job.id,
            "token_hash": hashlib.sha256(token.encode()).hexdigest(),
            "expires_at": expires_at.isoformat(),
        }
        yield rpc("job_set_token", params, idempotent=False)
        return JobCredentials(
            job_id=job.id, token=token, url=self._core.url, anon_key=anon_key.get_secret_value(), expires_at=expires_at
        )

    def _plan_deploy(self, job_id: str, backend: PodBackend, options: LaunchOptions) -> Plan[TrainingJob]:
        job = yield from self._plan_retrieve(job_id)
        if job.status is not JobStatus.CREATED:
            return job
        refuse_quantization_without_cuda(job, backend)
        job = yield from move(job, JobStatus.VALIDATING)
        dataset = one(
            (yield table("datasets", lambda t: t.select("status, validation_report").eq("id", job.dataset_id))),
            "dataset",
            job.dataset_id,
        )
        if dataset["status"] != "ready":
            return (yield from fail(job, "validation_failed", f"dataset is {dataset['status']}, not ready"))
        job = yield from move(job, JobStatus.QUEUED)
        credentials = yield from self._plan_issue_token(job.id, None)
        try:
            package = yield from ship_package(job, options)
        except LoraPipelineError as error:
            yield from fail(job, "deploy_error", f"could not ship lora-pipeline to the pod: {error}")
            raise
        spec = pod_spec(job, credentials, options, package)
        job = yield from move(job, JobStatus.PROVISIONING, backend=backend.name)
        try:
            handle = yield Offload(backend.launch, (spec,))
        except CapacityError as error:
            yield from fail(job, "no_capacity", error.raw_message)
            raise
        except InsufficientFunds as error:
            yield from fail(job, "insufficient_funds", error.raw_message)
            raise
        except LoraPipelineError as error:
            yield from fail(job, "deploy_error", str(error))
            raise
        job = yield from record_launch(job, handle)
        price = f" at ${handle.cost_per_hour:.2f}/h" if handle.cost_per_hour is not None else ""
        yield from event(
            job,
            "deploy",
            f"launched pod {handle.pod_id} on {backend.name}{price}",
            data={"pod_id": handle.pod_id, "name": spec.name, "backend": backend.name, "attempt": job.attempt},
        )
        return job

    def _plan_cancel(self, job_id: str, backend: PodBackend | None) -> Plan[TrainingJob]:
        job = yield from self._plan_retrieve(job_id)
        if job.terminal:
            return job
        if job.status in (JobStatus.CREATED, JobStatus.VALIDATING) or (
            job.status is JobStatus.QUEUED and not job.pod_id
        ):
            return (yield from move(job, JobStatus.CANCELLED, reason="cancelled_by_user"))
        if job.status is not JobStatus.CANCELLING:
            job = yield from move(job, JobStatus.CANCELLING)
        if backend is None:
            return job
        return (yield from reconcile(job, backend, utcnow()))

    def _plan_sync(self, job_id: str | None, backend: PodBackend | None, run_gates: bool) -> Plan[list[TrainingJob]]:
        if job_id is not None:
            jobs = [(yield from self._plan_retrieve(job_id))]
        else:
            active = [s.value for s in ACTIVE_STATUSES]
            jobs = [
                TrainingJob.model_validate(r)
                for r in rows((yield table("training_jobs", lambda t: t.select("*").in_("status", active).limit(1000))))
            ]
        done = []
        for job in jobs:
            job = yield from reconcile(job, backend, utcnow())
            if run_gates:
                job = yield from self._run_configured_gate(job)
            done.append(job)
        return done

    def _run_configured_gate(self, job: TrainingJob) -> Plan[TrainingJob]:
        if job.status is not JobStatus.SUCCEEDED or not job.gates:
            return job
        from .gates import validate_job

        already = rows((yield table("validation_results", lambda t: t.select("id").eq("job_id", job.id).limit(1))))
        if already:
            return job
        gates = job.gates
        yield from validate_job(
            job.id,
            gates["model_name"],
            gates.get("version"),  # type: ignore[arg-type]
            bool(gates.get("strict", False)),
            bool(gates.get("fail_open", False)),
        )
        return (yield from fetch_job(job.id))

    def _plan_wait(
        self,
        job_id: str,
        timeout: float | None,
        poll_interval: float,
        backend: PodBackend | None,
        progress: ProgressOption,
    ) -> Plan[TrainingJob]:
        job_id = require_id(job_id, "job_id")
        started = yield Now()
        view = JobProgress(progress)
        try:
            while True:
                job = (yield from self._plan_sync(job_id, backend, run_gates=False))[0]
                cost = (yield from account_cost(job)) if job.pod_id else None
                view.update(job, cost)
                if job.terminal:
                    break
                waited = (yield Now()) - started
                if timeout is not None and waited >= timeout:
                    raise WaitTimeout(
                        f"job {job.id} is still {job.status} after {waited:.0f} s",
                        resource_id=job.id,
                        last_state=str(job.status),
                        waited=waited,
                    )
                yield Sleep(poll_interval)
        finally:
            view.close()
        return (yield from self._run_configured_gate(job))

    def _plan_logs(self, job_id: str, backend: PodBackend | None, tail: int) -> Plan[str]:
        job = yield from fetch_job(require_id(job_id, "job_id"))
        reader = getattr(backend, "logs", None)
        handle = handle_for(job, backend) if backend is not None else None
        if handle is not None and reader is not None and backend is not None:
            status = yield Offload(backend.status, (handle,))
            if pod_belongs_to(status, job.id):  # pod_id is a stored value: read only this job's own pod
                return str((yield Offload(reader, (handle,), {"tail": tail})))
        events = yield from self._plan_events(job.id, None)
        return "\n".join(f"{e.created_at:%H:%M:%S} {e.level:7} {e.message}" for e in events[-tail:])

    def _plan_reap(self, backend: PodBackend, dry_run: bool) -> Plan[list[Any]]:
        """Pods named ``lp-<job>-<attempt>`` whose job is gone, ended, on a newer attempt, or silent too long."""
        from ..backends.base import job_id_from_pod_name

        pods = yield Offload(backend.list_pods, ("lp-",))
        condemned = []
        for handle in pods:
            parsed = job_id_from_pod_name(handle.name)
            job = None
            if parsed is not None:

                def lookup(t: Any, pod_job: str = parsed[0]) -> Any:
                    return t.select("*").eq("id", pod_job)

                found = rows((yield table("training_jobs", lookup)))
                job = TrainingJob.model_validate(found[0]) if found else None
            if job is None or parsed is None or job.terminal or job.attempt != parsed[1] or _silent(job):
                condemned.append(handle)
                if not dry_run:
                    yield Offload(backend.terminate, (handle,))
        return condemned

    def _plan_estimate(
        self,
        dataset_id: str,
        base_model: str,
        preset: str,
        gpu_type: str | None,
        hyperparameters: dict[str, Any] | None,
        backend: PodBackend | None,
    ) -> Plan[CostEstimate]:
        dataset_id = require_id(dataset_id, "dataset_id")
        found = yield table("datasets", lambda t: t.select("num_examples, token_stats").eq("id", dataset_id))
        dataset = one(found, "dataset", dataset_id)
        hp = resolve_hyperparameters(preset, hyperparameters)
        gpu = get_gpu(gpu_type or DEFAULT_GPU)
        check_fit(gpu, base_model, hp)  # the same refusal as create: never a price for a job that cannot run
        live = (yield Offload(backend.price, (gpu.key,))) if backend is not None else None
        return estimate_cost(
            dataset.get("num_examples") or 0, dataset.get("token_stats") or {}, base_model, hp, gpu, live
        )


def _silent(job: TrainingJob) -> bool:
    from ._job_control import HEARTBEAT_TIMEOUT, PROVISION_TIMEOUT

    last = job.heartbeat_at or job.started_at
    limit = HEARTBEAT_TIMEOUT if last is not None else PROVISION_TIMEOUT
    reference = last or job.updated_at
    return reference is not None and utcnow() - reference > limit


def estimate_cost(
    num_examples: int, token_stats: dict[str, Any], base_model: str, hp: Any, gpu: Any, live_price: float | None
) -> CostEstimate:
    """Steps from the dataset and preset; seconds from a FLOP model of LoRA training scaled by the GPU."""
    train = max(1, math.floor(num_examples * (1 - hp.eval_fraction)))
    steps = hp.max_steps or math.ceil(hp.epochs * math.ceil(train / hp.effective_batch_size))
    mean_tokens = min(float(token_stats.get("mean") or 256), float(hp.max_seq_len))
    tokens = int(steps * hp.effective_batch_size * mean_tokens)
    size = model_size_billions(base_model) or 7.0
    # Frozen base: forward + activation gradients ~ 4 FLOPs per parameter per token; ~125 TFLOP/s on an A100.
    tokens_per_second = 125e12 * gpu.relative_speed / (4 * size * 1e9)
    seconds = tokens / tokens_per_second + 300  # + image pull and model download
    rate = live_price if live_price else gpu.price_per_hour
    low, high = seconds / 1.6, seconds * 1.6
    return CostEstimate(
        gpu_type=gpu.key,
        steps=steps,
        tokens=tokens,
        seconds_low=low,
        seconds_high=high,
        hourly_rate=rate,
        price_source="live" if live_price else "list",
        usd_low=round(low / 3600 * rate, 2),
        usd_high=round(high / 3600 * rate, 2),
        memory_gb=round(estimate_memory_gb(size, hp), 1),
    )


class Jobs(SyncAPIResource, _JobPlans):
    """Training jobs (``lp.jobs``)."""

    def create(
        self,
        dataset_id: str,
        *,
        base_model: str,
        preset: str = "balanced",
        hyperparameters: dict[str, Any] | None = None,
        gpu_type: str | None = None,
        max_runtime: timedelta = timedelta(hours=6),
        max_cost_usd: float | None = None,
        name: str | None = None,
        gates: dict[str, Any] | None = None,
        user_id: str | None = None,
    ) -> TrainingJob:
        """Record a job on a ready dataset (status ``created``); nothing runs until :meth:`deploy`.

        Args:
            preset: ``conservative``, ``balanced`` or ``aggressive``; ``hyperparameters`` overrides fields.
            gpu_type: a key of :data:`lora_pipeline.GPUS`; refused when the preset cannot fit it for this model.
            max_runtime: the pod is terminated after this long whatever happens inside it.
            max_cost_usd: stop the job (``failed/budget_exceeded``) when its running cost reaches this.
            gates: run a regression gate when the job succeeds: ``{"model_name": ..., "strict": False}``.
        """
        return self._run(
            self._plan_create(
                dataset_id,
                base_model,
                preset,
                hyperparameters,
                gpu_type,
                max_runtime,
                max_cost_usd,
                name,
                gates,
                user_id,
            )
        )

    def retrieve(self, job_id: str) -> TrainingJob:
        return self._run(self._plan_retrieve(job_id))

    def delete(self, job_id: str) -> None:
        """Delete an ended (or never deployed) job with its events, metrics, costs, gate results and artifacts.

        Raises:
            ConfigError: the job is still active; cancel it first.
            Conflict: a condition uses the job as its fixed baseline (the message names it).
        """
        return self._run(self._plan_delete(job_id))

    def list(self, *, status: str | None = None, dataset_id: str | None = None, limit: int = 100) -> list[TrainingJob]:
        """Jobs visible to this client, newest first."""
        return self._run(self._plan_list(status, dataset_id, limit))

    def events(self, job_id: str, *, after_id: int | None = None) -> builtins.list[JobEvent]:
        """The job's timeline (status changes, deploy steps, pod messages), oldest first."""
        return self._run(self._plan_events(job_id, after_id))

    def issue_token(self, job_id: str, *, ttl: timedelta | None = None) -> JobCredentials:
        """A job token for reporting from any machine (``MetricsReporter.from_env()``); shown once.

        The token is valid until ``ttl`` (default: the job's max runtime plus an hour) and dies when the job
        ends. ``.env()`` gives the variables a training process needs; never the service-role key.
        """
        return self._run(self._plan_issue_token(job_id, ttl))

    def deploy(
        self,
        job_id: str,
        *,
        backend: PodBackend,
        image: str | None = None,
        wheel: str | Path | None = None,
        requirement: str | None = None,
        env: dict[str, str] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> TrainingJob:
        """Validate, queue, issue the job token and launch the pod; returns the job in ``provisioning``.

        On a container backend (RunPod) the pod installs the exact lora-pipeline this process runs: a wheel
        of it is uploaded into the job's Storage folder and its SHA-256 checked in the pod before pip runs.

        Args:
            image: the container image (default :data:`lora_pipeline.backends.images.DEFAULT_IMAGE`); a tag
                showing torch older than 2.5 is refused before anything is created.
            wheel: a prebuilt ``lora_pipeline-*.whl`` to ship instead of building one from this process.
            requirement: install this published requirement instead of a shipped wheel (only when named).
            env: plain variables for the pod (never Supabase service credentials).
            secrets: variable name -> RunPod secret name, e.g. ``{"HF_TOKEN": "hf_token"}``; the pod gets
                ``{{ RUNPOD_SECRET_hf_token }}``, which RunPod resolves, never the value.

        Raises:
            ConfigError: bad ``image``, ``wheel``, ``env`` or ``secrets``, or a quantized (QLoRA) job on a backend
                without CUDA (nothing was changed).
            CapacityError / InsufficientFunds: the backend could not place the pod (the job is failed with
                ``no_capacity`` / ``insufficient_funds``).
        """
        options = launch_options(backend, image=image, wheel=wheel, requirement=requirement, env=env, secrets=secrets)
        return self._run(self._plan_deploy(job_id, backend, options))

    def cancel(self, job_id: str, *, backend: PodBackend | None = None) -> TrainingJob:
        """Cancel: ``cancelling`` at once, ``cancelled`` once the pod is gone (terminated here when ``backend``
        is given; otherwise the pod stops at its next heartbeat)."""
        return self._run(self._plan_cancel(job_id, backend))

    def sync(
        self, job_id: str | None = None, *, backend: PodBackend | None = None, run_gates: bool = True
    ) -> builtins.list[TrainingJob]:
        """Reconcile one job or every active one: costs, budget and runtime limits, lost pods, cancels, pods
        left running after their job ended, and configured regression gates. Meant for a service-side loop."""
        return self._run(self._plan_sync(job_id, backend, run_gates))

    def wait_for_completion(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 2.0,
        backend: PodBackend | None = None,
        progress: ProgressOption = True,
    ) -> TrainingJob:
        """Poll until the job ends, showing step/total, loss, ETA and cost; runs the job's gate on success.

        Raises:
            WaitTimeout: still not finished after ``timeout`` seconds (names the job, its state, the wait).
        """
        return self._run(self._plan_wait(job_id, timeout, poll_interval, backend, progress))

    def estimate(
        self,
        dataset_id: str,
        *,
        base_model: str,
        preset: str = "balanced",
        gpu_type: str | None = None,
        hyperparameters: dict[str, Any] | None = None,
        backend: PodBackend | None = None,
    ) -> CostEstimate:
        """A cost range before launch (live price when a RunPod backend is given, else the list price)."""
        return self._run(self._plan_estimate(dataset_id, base_model, preset, gpu_type, hyperparameters, backend))

    def reap(self, *, backend: PodBackend, dry_run: bool = False) -> builtins.list[Any]:
        """Terminate stray pods: ``lp-`` pods whose job is gone, ended, superseded by a newer attempt, or
        silent past the heartbeat timeout. Returns the pods condemned (not terminated with ``dry_run``)."""
        return self._run(self._plan_reap(backend, dry_run))

    def logs(self, job_id: str, *, backend: PodBackend | None = None, tail: int = 200) -> str:
        """The pod's output when the backend keeps it (LocalBackend), else the pod's messages from the events."""
        return self._run(self._plan_logs(job_id, backend, tail))


__all__ = ["Jobs", "estimate_cost"]
