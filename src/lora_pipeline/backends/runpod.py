"""Pods on RunPod (DESIGN §8, research/runpod.md).

Two transports. ``transport="rest"`` (the default) speaks RunPod's REST API v2 over httpx
(:mod:`._runpod_rest`, :mod:`._runpod_rest_pods`, failover by the catalog in :mod:`._runpod_catalog`) and
needs no ``runpod`` package. ``transport="graphql"`` is the path below, kept until RunPod switches GraphQL
off (HTTP 410, announced for early 2027), after which it raises :class:`~lora_pipeline.APIRetired` at once.

Over GraphQL :class:`RunPodBackend` talks through the pinned SDK's transport (``runpod.api.graphql.run_graphql_query``,
which reads ``RUNPOD_API_BASE_URL`` on every call) but writes every query itself with JSON-escaped literals
(see :mod:`._runpod_graphql`). On top of the bare transport it adds:

- a client-side deadline shorter than the SDK's fixed 30 s (the call runs on a daemon thread);
- retries of transient failures (429, 5xx, edge pages, timeouts, dropped connections) with the one policy
  of :mod:`lora_pipeline._retry`;
- launches that are idempotent by pod name: a launch looks for a pod of that name first, and a create that
  timed out is waited for before the next look, so a retry never rents a second pod;
- failover across an ordered list of offers on "no capacity" in both wire shapes, then :class:`CapacityError`.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from .._error_mapping import map_error
from .._exceptions import APIError, CapacityError, ConfigError, NotFound, Timeout
from .._logging import get_logger, register_secret
from .._retry import MAX_DELAY, retrying
from ..gpus import GPUS, get_gpu
from . import _runpod_graphql as gql
from ._container_launch import container_launch
from ._runpod_graphql import CloudType
from ._runpod_rest import RestTransport
from ._runpod_rest_pods import RestPods, create_body, wanted_from_offers
from .base import PodHandle, PodSpec, PodState, PodStatus, job_id_from_pod_name

log = get_logger("backends.runpod")

SDK_TIMEOUT = 30.0
"""runpod-python 1.12.0's fixed ``requests`` timeout; a call cannot outlive it."""
TRANSPORTS = ("rest", "graphql")
TRANSPORT_ENV = "LORA_PIPELINE_RUNPOD_TRANSPORT"
_CAPACITY_MESSAGE = "RunPod returned no pod: no instances available for this offer (or an unknown gpuTypeId)"
_STATES = {
    "CREATED": PodState.PROVISIONING,
    "RESTARTING": PodState.PROVISIONING,
    "EXITED": PodState.EXITED,
    "PAUSED": PodState.EXITED,
    "DEAD": PodState.TERMINATED,
    "TERMINATED": PodState.TERMINATED,
}


class RunPodOffer(BaseModel):
    """One place a pod may be rented; offers are tried in order when RunPod has no capacity."""

    model_config = ConfigDict(frozen=True)

    gpu_type: str
    """GPU key (``A40``) or RunPod id (``NVIDIA A40``); stored as the key."""
    cloud_type: CloudType = CloudType.ALL
    """``ALL`` lets RunPod pick the cheaper cloud with stock."""
    data_center_id: str | None = None
    """Pin a data centre (``EU-RO-1``), e.g. to sit next to a network volume."""

    @field_validator("gpu_type")
    @classmethod
    def _known_gpu(cls, value: str) -> str:
        return get_gpu(value).key

    @property
    def gpu_type_id(self) -> str:
        return get_gpu(self.gpu_type).runpod_id


class _SdkCall:
    """One ``run_graphql_query`` on a daemon thread, so the caller can stop waiting before the SDK's 30 s."""

    def __init__(self, query: str, api_key: str) -> None:
        self._done = threading.Event()
        self._result: Any = None
        self._error: BaseException | None = None
        threading.Thread(target=self._run, args=(query, api_key), name="runpod-call", daemon=True).start()

    def _run(self, query: str, api_key: str) -> None:
        try:
            from ._quiet import import_runpod  # imported late: `import runpod` takes ~2 s

            graphql = import_runpod("runpod.api.graphql")
            self._result = graphql.run_graphql_query(query, api_key=api_key)
        except BaseException as error:  # handed to the waiting thread
            self._error = error
        finally:
            self._done.set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._result


class RunPodBackend:
    """Launch, watch, price and reap pods on RunPod.

    Args:
        api_key: a RunPod API key (registered for log redaction).
        offers: where to rent, in order of preference. A launch whose spec names a GPU type uses the offers
            of that type (or ``RunPodOffer(gpu_type=spec.gpu_type)`` when none match); a spec without one
            uses them all.
        max_attempts: tries of one request on transient failures (429, 5xx, timeouts, dropped connections).
        capacity_rounds: passes over the offers before a launch gives up with :class:`CapacityError`;
            rounds are separated by a jittered backoff.
        timeout: seconds to wait for one reply (over GraphQL at most the SDK's own 30 s).
        sleep: how to wait between tries (inject a no-op in tests).
        transport: ``"rest"`` (REST API v2, the default) or ``"graphql"`` (the runpod SDK, until RunPod
            retires it); ``None`` reads ``LORA_PIPELINE_RUNPOD_TRANSPORT``.
        status_ttl: over REST, seconds one pod list answers every :meth:`status` call, so that many jobs
            and waiters share one request (RunPod's quota is per user; the job's truth is its heartbeat).

    Example:
        >>> backend = RunPodBackend(api_key, [RunPodOffer(gpu_type="A40", cloud_type="SECURE"),
        ...                                   RunPodOffer(gpu_type="L40S")])  # doctest: +SKIP
        >>> handle = backend.launch(spec)  # doctest: +SKIP
    """

    name = "runpod"
    installs_package = True
    """Pods run a container image: ``lp.jobs.deploy`` ships the launcher's wheel for the bootstrap to install."""
    logs: Callable[..., str] | None = None
    """``logs(handle, tail=200)`` over REST (``lp.jobs.logs`` uses it); GraphQL has no log API, so ``None``."""

    def __init__(
        self,
        api_key: str | SecretStr,
        offers: Sequence[RunPodOffer] | None = None,
        *,
        max_attempts: int = 3,
        capacity_rounds: int = 2,
        timeout: float = SDK_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        transport: str | None = None,
        status_ttl: float = 10.0,
    ) -> None:
        key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
        if not key:
            raise ConfigError(
                "RunPodBackend needs a RunPod API key: pass api_key=..., or set RUNPOD_API_KEY "
                "(or LORA_PIPELINE_RUNPOD_API_KEY) for Settings to pick up",
                argument="api_key",
                env_names=("LORA_PIPELINE_RUNPOD_API_KEY", "RUNPOD_API_KEY"),
            )
        if max_attempts < 1 or capacity_rounds < 1 or timeout <= 0 or status_ttl < 0:
            raise ConfigError(
                "max_attempts and capacity_rounds must be >= 1, timeout > 0 and status_ttl >= 0", argument="timeout"
            )
        chosen = (transport or os.environ.get(TRANSPORT_ENV) or "rest").strip().lower()
        if chosen not in TRANSPORTS:
            raise ConfigError(
                f"unknown RunPod transport {chosen!r}: use transport='rest' (REST API v2, the default) or "
                f"'graphql' (until RunPod retires it), or set {TRANSPORT_ENV}",
                argument="transport",
                env_names=(TRANSPORT_ENV,),
            )
        self.transport = chosen
        register_secret(key)
        self._api_key = SecretStr(key)
        self.offers = list(offers or ())
        self._max_attempts = max_attempts
        self._capacity_rounds = capacity_rounds
        self._timeout = min(timeout, SDK_TIMEOUT)
        self._sleep = sleep
        self._unsettled: dict[str, _SdkCall] = {}
        self._unsettled_lock = threading.Lock()
        self._rest: RestPods | None = None
        if chosen == "rest":
            rest = RestTransport(self._api_key, timeout=timeout, max_attempts=max_attempts, sleep=sleep)
            self._rest = RestPods(
                rest, max_attempts=max_attempts, capacity_rounds=capacity_rounds, sleep=sleep, status_ttl=status_ttl
            )
            self.logs = self._rest_logs

    # --- PodBackend -------------------------------------------------------------------------------------
    def launch(self, spec: PodSpec) -> PodHandle:
        """Start the pod for ``spec``, or return the one already running under ``spec.name``.

        Raises:
            CapacityError: no offer had capacity in ``capacity_rounds`` passes (the job fails as no_capacity).
            InsufficientFunds, AuthenticationError, BadRequest: not retried.
            RateLimited, ServiceUnavailable, Timeout: still failing after ``max_attempts`` tries.
        """
        container = container_launch(spec)  # env + command: the one launch contract, for both transports
        if self._rest is not None:
            body = create_body(
                name=spec.name,
                image=spec.image,
                env=container.env,
                docker_args=container.docker_args,
                container_disk_gb=spec.container_disk_gb,
                volume_gb=spec.volume_gb,
            )
            if container.allowed_cuda_versions:
                body["gpu"]["allowedCudaVersions"] = container.allowed_cuda_versions
            return self._rest.launch(body, wanted_from_offers(self._offers_for(spec)))
        fields = gql.deploy_input(
            name=spec.name,
            image=spec.image,
            env=container.env,
            docker_args=container.docker_args,
            container_disk_gb=spec.container_disk_gb,
            volume_gb=spec.volume_gb,
            terminate_after=spec.terminate_after,
        )
        if container.allowed_cuda_versions:
            fields["allowedCudaVersions"] = container.allowed_cuda_versions
        offers = self._offers_for(spec)
        existing = self._find_by_name(spec.name)
        if existing is not None:
            log.info("pod %s already exists (%s); not creating another", spec.name, existing.pod_id)
            return existing
        return self._launch_with_failover(spec.name, fields, offers)

    def status(self, handle: PodHandle) -> PodStatus:
        """RunPod's view of the pod; a pod RunPod no longer lists is ``TERMINATED``."""
        if self._rest is not None:
            return self._rest.status(handle.pod_id)
        pod = self._query(gql.pod_query(handle.pod_id), "pod", resource=handle.pod_id)
        if pod is None:
            return PodStatus(pod_id=handle.pod_id, state=PodState.TERMINATED, detail="RunPod no longer lists this pod")
        return PodStatus(
            pod_id=handle.pod_id,
            state=_state_of(pod),
            cost_per_hour=pod.get("costPerHr"),
            detail=pod.get("lastStatusChange"),
            name=pod.get("name"),
        )

    def terminate(self, handle: PodHandle) -> None:
        """Terminate the pod; "pod not found to terminate" (already gone) counts as done."""
        if self._rest is not None:
            return self._rest.terminate(handle.pod_id)
        try:
            self._retrying()(self._request, gql.terminate_mutation(handle.pod_id), resource=handle.pod_id)
        except NotFound:
            log.debug("pod %s was already gone", handle.pod_id)

    def price(self, gpu_type: str | None) -> float | None:
        """The lowest on-demand USD/h for one GPU of ``gpu_type`` that RunPod lists now."""
        if gpu_type is None:
            return None
        gpu_id = get_gpu(gpu_type).runpod_id
        if self._rest is not None:
            return self._rest.price(gpu_id)
        types = self._query(gql.gpu_price_query(gpu_id), "gpuTypes", resource=gpu_id) or []
        return gql.lowest_price(types[0]) if types else None

    def list_pods(self, prefix: str = "lp-") -> list[PodHandle]:
        """Live pods whose name starts with ``prefix``."""
        if self._rest is not None:
            return self._rest.list_pods(prefix)
        return self._list(prefix, retry=True)

    def _rest_logs(self, handle: PodHandle, *, tail: int = 200) -> str:
        """The pod's recent output from REST v2's log stream (read until it goes quiet)."""
        assert self._rest is not None
        return "\n".join(line.line for line in self._rest.transport.pod_logs(handle.pod_id, tail=tail))

    def billed_usd(self, handle: PodHandle, since: datetime) -> float | None:
        """What RunPod billed the pod since ``since`` (REST ``/v2/billing/pods``), to reconcile our own
        timestamps x rate estimate; ``None`` over GraphQL or when billing is not available yet."""
        return self._rest.billed_usd(handle.pod_id, since) if self._rest is not None else None

    def reap(self, should_terminate: Callable[[str, int, PodHandle], bool]) -> list[PodHandle]:
        """Terminate the ``lp-`` pods that ``should_terminate(job_id, attempt, handle)`` condemns.

        The caller decides from the database (job terminal, heartbeat stale, no such job). A pod that cannot
        be terminated now is logged and left for the next pass, so one failure does not spare the others.
        Returns the pods terminated.
        """
        reaped = []
        for handle in self.list_pods("lp-"):
            parsed = job_id_from_pod_name(handle.name)
            if parsed is None or not should_terminate(parsed[0], parsed[1], handle):
                continue
            try:
                self.terminate(handle)
            except APIError as error:
                log.warning("could not reap pod %s (%s): %s", handle.pod_id, handle.name, error.raw_message)
                continue
            log.info("reaped pod %s (%s)", handle.pod_id, handle.name)
            reaped.append(handle)
        return reaped

    # --- direct create ----------------------------------------------------------------------------------
    def create_pod(
        self,
        *,
        name: str,
        image: str,
        gpu_type: str,
        env: Mapping[str, str] | None = None,
        docker_args: str | None = None,
        cloud_type: CloudType | str = CloudType.ALL,
        data_center_id: str | None = None,
        terminate_after: datetime | None = None,
        container_disk_gb: int = 40,
        volume_gb: int = 0,
        ports: str | None = None,
        gpu_count: int = 1,
    ) -> dict[str, Any]:
        """Create one pod with any env values and docker args, delivered exactly (unlike ``runpod.create_pod``).

        Sent once, never retried: a blind retry of a create can rent two pods. Use :meth:`launch` for the
        idempotent, failing-over path.

        Returns:
            RunPod's reply: ``id``, ``name``, ``imageName``, ``env`` (``"K=V"`` strings), ``machineId``,
            ``machine.podHostId``.

        Raises:
            ConfigError: an env key that is not a variable name, more than 50 variables, NUL in a value,
                a naive ``terminate_after``, an unknown ``gpu_type``.
            CapacityError, InsufficientFunds, AuthenticationError, ...: RunPod's refusal.
        """
        gpu = get_gpu(gpu_type)
        if self._rest is not None:
            return self._create_pod_over_rest(
                gpu.runpod_id,
                str(cloud_type),
                data_center_id,
                create_body(
                    name=name,
                    image=image,
                    env=env or {},
                    docker_args=docker_args or "",
                    container_disk_gb=container_disk_gb,
                    volume_gb=volume_gb,
                    gpu_count=gpu_count,
                    ports=ports,
                ),
            )
        fields = gql.deploy_input(
            name=name,
            image=image,
            env=env or {},
            docker_args=docker_args or "",
            container_disk_gb=container_disk_gb,
            volume_gb=volume_gb,
            gpu_count=gpu_count,
            ports=ports,
            terminate_after=terminate_after,
        )
        fields.update(gql.offer_input(gpu.runpod_id, str(cloud_type), data_center_id))
        return self._deploy(fields)

    def _create_pod_over_rest(
        self, gpu_id: str, cloud: str, data_center_id: str | None, body: dict[str, Any]
    ) -> dict[str, Any]:
        assert self._rest is not None
        body = {**body, "gpu": {**body["gpu"], "id": gpu_id}}
        chosen = CloudType(cloud)  # a made-up cloud is refused here, as on GraphQL, not sent
        if chosen is not CloudType.ALL:  # REST v2 has no ALL; left out, RunPod's default (SECURE) applies
            body["cloud"] = chosen.value
        if data_center_id:
            body["dataCenterIds"] = [gql.check_text(data_center_id, "data_center_id")]
        return self._rest.transport.create_pod(body)

    # --- launch internals -------------------------------------------------------------------------------
    def _offers_for(self, spec: PodSpec) -> list[RunPodOffer]:
        if spec.gpu_type is None:
            if not self.offers:
                raise ConfigError("the pod spec names no gpu_type and the backend has no offers", argument="gpu_type")
            return self.offers
        # The job's GPU first, then every other offer with at least its memory (the preset was checked
        # against that GPU, so it fits them too) as failover.
        wanted = get_gpu(spec.gpu_type)
        first = [o for o in self.offers if o.gpu_type == wanted.key] or [RunPodOffer(gpu_type=wanted.key)]
        larger = [o for o in self.offers if o.gpu_type != wanted.key and get_gpu(o.gpu_type).vram_gb >= wanted.vram_gb]
        return first + larger

    def _launch_with_failover(self, name: str, fields: dict[str, Any], offers: list[RunPodOffer]) -> PodHandle:
        for round_number in range(self._capacity_rounds):
            if round_number:
                self._sleep(_round_delay(round_number))
            for offer in offers:
                try:
                    return self._launch_on(name, fields, offer)
                except CapacityError:
                    log.info(
                        "no capacity for %s on %s/%s; trying the next offer", name, offer.gpu_type, offer.cloud_type
                    )
        described = ", ".join(f"{o.gpu_type}/{o.cloud_type}" for o in offers)
        rounds = self._capacity_rounds
        raise _no_capacity(f"no capacity for pod {name} on any offer ({described}) after {rounds} round(s)", name)

    def _launch_on(self, name: str, fields: dict[str, Any], offer: RunPodOffer) -> PodHandle:
        payload = {**fields, **gql.offer_input(offer.gpu_type_id, offer.cloud_type, offer.data_center_id)}
        for attempt in self._retrying():
            with attempt:
                # Not retried on its own: this loop already retries, and attempts must not multiply.
                retried = attempt.retry_state.attempt_number > 1
                found = self._find_by_name(name, retry=False) if retried else None
                if found is not None:  # the try that failed had created it after all
                    return found
                created = self._deploy(payload)
        handle = PodHandle(
            backend=self.name,
            pod_id=created["id"],
            name=name,
            gpu_type=offer.gpu_type,
            created_at=datetime.now(timezone.utc),
            cloud_type=str(offer.cloud_type),
        )
        handle.cost_per_hour = self._read_price(handle.pod_id)
        log.info(
            "launched pod %s (%s) on %s/%s at %s USD/h",
            handle.pod_id,
            name,
            offer.gpu_type,
            offer.cloud_type,
            handle.cost_per_hour,
        )
        return handle

    def _deploy(self, fields: dict[str, Any]) -> dict[str, Any]:
        """One create; a null result is RunPod's second way of saying "no capacity"."""
        name = str(fields.get("name"))
        reply = self._request(gql.deploy_mutation(fields), resource=name, in_flight=name)
        pod = gql.root_field(reply, "podFindAndDeployOnDemand", resource=name)
        if pod is None:
            raise _no_capacity(_CAPACITY_MESSAGE, name)
        return dict(pod)

    def _find_by_name(self, name: str, *, retry: bool = True) -> PodHandle | None:
        """The live pod named ``name``, after any create of that name still in flight has settled."""
        with self._unsettled_lock:
            pending = self._unsettled.pop(name, None)
        if pending is not None:
            pending.wait(SDK_TIMEOUT + 5)
        matches = [h for h in self._list(name, retry=retry) if h.name == name]
        if len(matches) > 1:
            log.warning("%d pods are named %s; using %s", len(matches), name, matches[0].pod_id)
        return matches[0] if matches else None

    def _read_price(self, pod_id: str) -> float | None:
        """``costPerHr`` right after create (the create reply has none); unknown rather than a failed launch."""
        try:
            pod = self._query(gql.pod_query(pod_id), "pod", resource=pod_id)
        except APIError as error:
            log.warning("could not read the price of pod %s: %s", pod_id, error.raw_message)
            return None
        price = (pod or {}).get("costPerHr")
        return float(price) if isinstance(price, (int, float)) else None

    # --- transport --------------------------------------------------------------------------------------
    def _retrying(self) -> Any:
        return retrying(self._max_attempts - 1, sleep=self._sleep)

    def _list(self, prefix: str, *, retry: bool) -> list[PodHandle]:
        user = self._query(gql.MY_PODS_QUERY, "myself", resource="myself", retry=retry) or {}
        return [
            _handle(pod)
            for pod in user.get("pods") or []
            if str(pod.get("name") or "").startswith(prefix) and pod.get("desiredStatus") != "TERMINATED"
        ]

    def _query(self, query: str, field: str, *, resource: str, retry: bool = True) -> Any:
        """An idempotent request, retried on transient failures unless told not to; returns ``data.<field>``."""
        if retry:
            reply = self._retrying()(self._request, query, resource=resource)
        else:
            reply = self._request(query, resource=resource)
        return gql.root_field(reply, field, resource=resource)

    def _request(self, query: str, *, resource: str, in_flight: str | None = None) -> Any:
        """One request with our deadline; every failure comes out as a lora-pipeline error."""
        call = _SdkCall(query, self._api_key.get_secret_value())
        if not call.wait(self._timeout):
            if in_flight is not None:  # it may still create the pod: the next lookup waits for it
                with self._unsettled_lock:
                    self._unsettled[in_flight] = call
            raise Timeout(f"RunPod did not answer within {self._timeout:g}s", resource=resource, service="runpod")
        try:
            return call.result()
        except Exception as error:
            mapped = gql.error_from_sdk(error, resource=resource)
            if mapped is error:
                raise
            raise mapped from error


def _state_of(pod: Mapping[str, Any]) -> PodState:
    desired = str(pod.get("desiredStatus") or "")
    if desired == "RUNNING":  # the desired status reads RUNNING while the image is still being pulled
        return PodState.RUNNING if pod.get("runtime") else PodState.PROVISIONING
    return _STATES.get(desired, PodState.UNKNOWN)


def _handle(pod: Mapping[str, Any]) -> PodHandle:
    display = str((pod.get("machine") or {}).get("gpuDisplayName") or "")
    key = next(
        (g.key for g in GPUS.values() if display and (g.runpod_id.endswith(display) or g.key == display)),
        display or None,
    )
    return PodHandle(
        backend="runpod",
        pod_id=str(pod["id"]),
        name=str(pod.get("name") or ""),
        gpu_type=key,
        cost_per_hour=pod.get("costPerHr"),
    )


def _no_capacity(message: str, resource: str) -> APIError:
    body = {"errors": [{"message": message, "extensions": {"code": "SUPPLY_CONSTRAINT"}}]}
    return map_error(service="runpod", body=body, resource=resource)


def _round_delay(round_number: int) -> float:
    """Jittered exponential pause between passes over the offers (capacity often frees within seconds)."""
    return min(MAX_DELAY, 2.0 ** (round_number - 1)) + random.uniform(0, 1.0)


__all__ = ["SDK_TIMEOUT", "TRANSPORTS", "CloudType", "RunPodBackend", "RunPodOffer"]
