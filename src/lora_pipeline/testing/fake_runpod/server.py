"""The fake RunPod server: a loopback HTTP thread in front of :class:`Gateway`, and the test-facing handle.

::

    with FakeRunPod() as fake, fake.environment():
        backend = RunPodBackend(fake.api_key)
        handle = backend.launch(spec)
        fake.advance(3600)
        assert fake.calls[-1].operation == "pod"

``environment()`` points the runpod SDK at the fake (``RUNPOD_API_BASE_URL``, which the SDK reads on every
call, and ``runpod.api_key``) and restores both afterwards.

The same port serves RunPod REST API v2 under ``/v2/`` (:mod:`.rest`) over the same pods and clock;
:meth:`FakeRunPod.retire_graphql` makes ``/graphql`` answer 410 Gone, as RunPod will in early 2027.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from .catalog import Catalog, resolve_gpu_id
from .containers import ContainerRunner
from .faults import Fault, FaultScript
from .gateway import FakeCall, Gateway
from .rest import RestGateway, problem
from .state import FakePod, RunPodState

BASE_URL_ENV = "RUNPOD_API_BASE_URL"
_SECRET_REFERENCE = re.compile(r"\{\{\s*RUNPOD_SECRET_(?P<name>[A-Za-z0-9_.-]+)\s*\}\}")
GRAPHQL_RETIRED_DETAIL = (
    "The GraphQL API has been retired. Use REST API v2 (https://docs.runpod.io/api-reference-v2/overview)."
)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path.startswith("/v2/"):
            reply = self.server.rest.handle(self.command, self.path, dict(self.headers.items()), body)
        elif self.server.graphql_retired.is_set() and self.path.split("?")[0].rstrip("/") == "/graphql":
            reply = problem(410, GRAPHQL_RETIRED_DETAIL)
        else:
            reply = self.server.gateway.handle(self.path, dict(self.headers.items()), body)
        if reply is None:
            self.close_connection = True  # dropped: the client sees the socket close with no reply
            return
        self.send_response(reply.status)
        for name, value in {**reply.headers, "Content-Length": str(len(reply.body))}.items():
            self.send_header(name, value)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(reply.body)
        self.close_connection = True

    def _rest_or_not_allowed(self) -> None:
        if self.path.startswith("/v2/"):
            self.do_POST()  # the REST gateway routes by method itself
            return
        self.send_response(405)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

    do_GET = do_PUT = do_DELETE = do_PATCH = _rest_or_not_allowed

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the calls are recorded in ``fake.calls`` instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a request stuck in a ``delay`` fault must not block stop()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away before its reply (a container killed mid-request) is not an error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    gateway: Gateway
    rest: RestGateway
    graphql_retired: threading.Event


class FakeRunPod:
    """An offline RunPod GraphQL API for tests (research/runpod.md §4).

    Args:
        balance: account credit in USD.
        spend_limit: the account's USD/h cap (RunPod's default is 80).
        provision_delay: virtual seconds a new pod spends pulling its image (``runtime`` is null meanwhile).
        restart_delay: virtual seconds a container takes to come back after :meth:`container_exit`.
        capacity_shape: how "no stock" is answered: ``"errors"`` (a GraphQL error) or ``"null"`` (a null
            mutation result with no error); RunPod does both.
        default_stock: free GPUs per ``(gpuTypeId, cloud)`` at start.
        stock_lies: keep reporting "High" stock whatever the real count (as RunPod's listing does).
        start: the virtual clock's starting time (default: now, UTC).
        seed: seeds pod ids and keys, so runs are reproducible.
    """

    def __init__(
        self,
        *,
        balance: float = 1000.0,
        spend_limit: float = 80.0,
        provision_delay: float = 0.0,
        restart_delay: float = 0.0,
        capacity_shape: str = "errors",
        default_stock: int = 4,
        stock_lies: bool = False,
        start: datetime | None = None,
        seed: int = 0,
        execute_containers: bool = False,
        container_env: dict[str, str] | None = None,
    ) -> None:
        if capacity_shape not in ("errors", "null"):
            raise ValueError("capacity_shape must be 'errors' or 'null'")
        self.catalog = Catalog(default_stock=default_stock, stock_lies=stock_lies)
        self.state = RunPodState(
            catalog=self.catalog,
            now=start or datetime.now(timezone.utc),
            balance=balance,
            spend_limit=spend_limit,
            provision_delay=provision_delay,
            restart_delay=restart_delay,
            capacity_shape=capacity_shape,
            seed=seed,
        )
        self.faults = FaultScript()
        self._stopping = threading.Event()
        self.gateway = Gateway(self.state, self.faults, self._stopping)
        self.rest = RestGateway(self.state, self.faults, self.gateway.calls, self.gateway.lock, self._stopping)
        self._graphql_retired = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.secrets: dict[str, str] = {}
        """RunPod secrets of the account: ``{{ RUNPOD_SECRET_<name> }}`` in a pod's env resolves to these."""
        self.containers: ContainerRunner | None = None
        if execute_containers:
            self.containers = ContainerRunner(self, extra_env=container_env)
            self.state.phase_listener = self.containers.on_phase

    # --- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> FakeRunPod:
        """Listen on a free loopback port in a daemon thread."""
        if self._server is None:
            self._stopping.clear()
            self._server = _Server(("127.0.0.1", 0), _Handler)
            self._server.gateway = self.gateway
            self._server.rest = self.rest
            self._server.graphql_retired = self._graphql_retired
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.02,), name="fake-runpod", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening; requests waiting in a ``delay`` fault are released at once."""
        if self.containers is not None:
            self.containers.stop_all()
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeRunPod:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The value ``RUNPOD_API_BASE_URL`` must have (the SDK appends ``/graphql``)."""
        if self._server is None:
            raise RuntimeError("FakeRunPod is not running: call start() or use it as a context manager")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def api_key(self) -> str:
        """A valid account-wide API key."""
        return self.state.account_key

    @contextmanager
    def environment(self) -> Iterator[FakeRunPod]:
        """Point the runpod SDK at this fake for the ``with`` block, then restore what was there."""
        previous_url = os.environ.get(BASE_URL_ENV)
        sdk = _runpod_module()
        previous_key = getattr(sdk, "api_key", None)
        os.environ[BASE_URL_ENV] = self.url
        if sdk is not None:
            sdk.api_key = self.api_key
        try:
            yield self
        finally:
            if previous_url is None:
                os.environ.pop(BASE_URL_ENV, None)
            else:
                os.environ[BASE_URL_ENV] = previous_url
            if sdk is not None:
                sdk.api_key = previous_key

    # --- REST v2 and the GraphQL switch-off -------------------------------------------------------------
    def retire_graphql(self, retired: bool = True) -> None:
        """Make ``POST /graphql`` answer 410 Gone with a problem document (RunPod's announced switch-off)."""
        if retired:
            self._graphql_retired.set()
        else:
            self._graphql_retired.clear()

    def set_rate_limit(self, policy: dict[str, tuple[int, float]]) -> None:
        """REST quotas per window, e.g. ``{"minute": (60, 60)}`` (RunPod's published example); buckets refill."""
        self.rest.world.limiter.set_policy(policy)

    @property
    def rate_limited(self) -> int:
        """How many REST requests were answered 429."""
        return self.rest.world.limiter.refused

    def set_data_center_stock(self, gpu: str, cloud: str, per_data_center: dict[str, int]) -> None:
        """Place a GPU type in one cloud only in these data centres, with this many GPUs each (REST only)."""
        with self.gateway.lock:
            gpu_id = resolve_gpu_id(gpu)
            self.rest.world.dc_capacity[(gpu_id, cloud)] = dict(per_data_center)
            self.catalog.set_stock(gpu_id, cloud, sum(per_data_center.values()))

    def forbid_pool(self, gpu: str, cloud: str) -> None:
        """REST creates of this GPU type in this cloud answer 403 (a pool the account may not use)."""
        self.rest.world.forbidden_pools.add((resolve_gpu_id(gpu), cloud))

    def append_log(self, pod_id: str, line: str, *, source: str = "container") -> None:
        """A line the pod's log stream (``GET /v2/pods/{id}/logs``) serves, stamped with the virtual time."""
        stamp = self.state.now.isoformat().replace("+00:00", "Z")
        self.rest.world.logs.setdefault(pod_id, []).append((source, line, stamp))

    # --- scripting and inspection -----------------------------------------------------------------------
    def script(self, operation: str, outcomes: Iterable[str | Fault]) -> None:
        """Queue outcomes for an operation, e.g. ``script("podFindAndDeployOnDemand", ["capacity_null", "ok"])``."""
        self.faults.add(operation, outcomes)

    @property
    def calls(self) -> list[FakeCall]:
        """Every request received, oldest first."""
        return list(self.gateway.calls)

    def calls_to(self, operation: str) -> list[FakeCall]:
        """The requests whose first root field is ``operation``."""
        return [call for call in self.gateway.calls if call.operation == operation]

    @property
    def now(self) -> datetime:
        return self.state.now

    @property
    def balance(self) -> float:
        return self.state.balance

    def advance(self, seconds: float) -> None:
        """Move the virtual clock (provisioning, restarts, deadlines and billing follow)."""
        with self.gateway.lock:
            self.state.advance(seconds)

    def set_stock(self, gpu: str, cloud: str, count: int) -> None:
        """Free GPUs of a type (key like ``A40`` or RunPod id) in ``SECURE`` or ``COMMUNITY`` cloud."""
        with self.gateway.lock:
            self.catalog.set_stock(gpu, cloud, count)

    def set_price(self, gpu: str, *, secure: float | None, community: float | None) -> None:
        """Per-GPU on-demand USD/h in each cloud; ``None`` means the cloud does not offer it."""
        with self.gateway.lock:
            self.catalog.set_price(gpu, secure=secure, community=community)

    def pod(self, pod_id: str) -> FakePod | None:
        """The fake's record of a pod, terminated ones included."""
        return self.state.pods.get(pod_id)

    def pods(self, *, live: bool = True) -> list[FakePod]:
        """Pods in creation order; only those not terminated unless ``live=False``."""
        return [p for p in self.state.pods.values() if p.live or not live]

    def container_exit(self, pod_id: str, code: int = 0) -> FakePod:
        """Simulate the container's main process exiting: RunPod restarts it (``restart_count`` + 1)."""
        with self.gateway.lock:
            return self.state.container_exit(pod_id, code)

    def pod_env(self, pod_id: str) -> dict[str, str]:
        """The environment the pod's container sees.

        The user env, then what RunPod adds: ``RUNPOD_POD_ID``, a pod-scoped ``RUNPOD_API_KEY`` (allowed only
        ``pod``/``podStop``/``podTerminate`` on this pod), ``RUNPOD_GPU_COUNT``, ``RUNPOD_POD_HOSTNAME``. For
        in-process simulation it also carries ``RUNPOD_API_BASE_URL`` (a real pod does not).
        """
        pod = self.state.pods[pod_id]
        env = {key: _resolve_secret(value, self.secrets) for key, value in pod.env}
        env.update(
            {
                "RUNPOD_POD_ID": pod.id,
                "RUNPOD_API_KEY": pod.pod_key,
                "RUNPOD_GPU_COUNT": str(pod.gpu_count),
                "RUNPOD_POD_HOSTNAME": pod.pod_host_id,
                "PUBLIC_KEY": "",
            }
        )
        if self._server is not None:
            env[BASE_URL_ENV] = self.url
        return env


def _resolve_secret(value: str, secrets: dict[str, str]) -> str:
    """RunPod replaces a whole-value ``{{ RUNPOD_SECRET_<name> }}`` with the secret; unknown names stay as sent."""
    match = _SECRET_REFERENCE.fullmatch(value.strip())
    return secrets.get(match["name"], value) if match else value


def _runpod_module() -> Any:
    from ...backends._quiet import import_runpod

    try:
        return import_runpod("runpod")
    except ImportError:  # the fake works without the SDK installed
        return None


__all__ = ["BASE_URL_ENV", "FakeRunPod"]
