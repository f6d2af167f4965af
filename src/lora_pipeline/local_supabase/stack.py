"""``LocalSupabase``: PostgreSQL plus a Supabase-compatible gateway, started from Python with nothing but
PostgreSQL installed (DESIGN §9).

    with LocalSupabase.start() as stack:
        user = stack.create_user("ada@example.com", "a-long-password")
        lp = stack.client(user=user)

``stop()`` removes everything a temporary stack created; it also runs at interpreter exit, on Ctrl-C and on
SIGTERM. With ``data_dir`` the database, objects and keys persist between runs (for notebooks).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import secrets
import shutil
import signal
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import psycopg

from .._logging import get_logger, register_secret
from .._roles import Role
from ..db.bootstrap import install_supabase_bootstrap
from ..db.migrations import MigrationRunner
from .gateway.config import GatewayConfig
from .gateway.server import GatewayProcess, GatewayThread
from .keys import mint_api_key, new_jwt_secret
from .postgres import PostgresCluster, free_port

if TYPE_CHECKING:
    from .._client import LoraPipeline

log = get_logger("local")

_OUR_TABLES = (
    "validation_results",
    "model_baselines",
    "notifications",
    "cost_records",
    "model_artifacts",
    "metrics_points",
    "job_events",
    "training_jobs",
    "dataset_download_tokens",
    "datasets",
)


@dataclass(frozen=True)
class LocalUser:
    """A user of the local stack, signed in."""

    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str | None = None

    def __repr__(self) -> str:
        return f"LocalUser(id={self.id!r}, email={self.email!r})"


class LocalSupabase:
    """A running local stack. Build it with :meth:`start`."""

    url: str
    anon_key: str
    service_role_key: str
    jwt_secret: str
    db_url: str
    """Superuser connection URL (migrations, tests)."""
    authenticator_db_url: str

    def __init__(
        self,
        postgres: PostgresCluster,
        config: GatewayConfig,
        gateway: GatewayProcess | GatewayThread,
        root: Path,
        temporary: bool,
        authenticator_password: str,
    ) -> None:
        self.postgres = postgres
        self.config = config
        self.gateway = gateway
        self.root = root
        self.temporary = temporary
        self.url = config.public_url
        self.anon_key = config.anon_key
        self.service_role_key = config.service_role_key
        self.jwt_secret = config.jwt_secret
        self.db_url = postgres.dsn()
        self.authenticator_db_url = postgres.dsn("authenticator", authenticator_password)
        self.started_in: float = 0.0
        self._stopped = False
        self._http: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        """One pooled client for the stack's own admin calls (user creation, sign-in)."""
        if self._http is None:
            self._http = httpx.Client(base_url=self.url, timeout=30)
        return self._http

    @classmethod
    def start(
        cls,
        *,
        data_dir: str | Path | None = None,
        port: int | None = None,
        gateway: Literal["process", "thread"] = "process",
        opaque_keys: bool = False,
        durable: bool | None = None,
    ) -> LocalSupabase:
        """Start PostgreSQL, install the Supabase bootstrap, apply migrations and serve the gateway.

        Args:
            data_dir: keep data, objects and keys here between runs; temporary when omitted.
            port: the gateway's port on 127.0.0.1 (a free one when omitted).
            gateway: ``process`` (default; own interpreter, can be killed) or ``thread``.
            opaque_keys: also accept ``sb_publishable_...`` / ``sb_secret_...`` keys.
            durable: PostgreSQL's default durability (``fsync``, ``synchronous_commit`` and
                ``full_page_writes`` on), so an acknowledged write survives a crash. Default: on with
                ``data_dir``, off for a temporary stack, whose data dies with it anyway (the fast test settings).
        """
        began = time.perf_counter()
        temporary = data_dir is None
        root = Path(tempfile.mkdtemp(prefix="lora-stack-")) if temporary else Path(data_dir).resolve()  # type: ignore[arg-type]
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        saved = _load_state(root)
        postgres = PostgresCluster.start(
            root / "postgres",
            port=saved.get("db_port") if not temporary else None,
            durable=not temporary if durable is None else durable,
            cleanup_dir=root if temporary else None,
        )
        try:
            state = saved or _new_state(opaque_keys)
            state["db_port"] = postgres.port
            _prepare_database(postgres, state["authenticator_password"])
            gateway_port = port or _reuse_port(saved.get("gateway_port"))
            state["gateway_port"] = gateway_port
            if not temporary:
                _save_state(root, state)
            config = _gateway_config(state, postgres, root, gateway_port)
            runner: GatewayProcess | GatewayThread = (
                GatewayProcess(config, root / "gateway.json", root / "gateway.log")
                if gateway == "process"
                else GatewayThread(config)
            )
            runner.start()
        except BaseException:
            postgres.stop()
            if temporary:
                shutil.rmtree(root, ignore_errors=True)
            raise
        stack = cls(postgres, config, runner, root, temporary, state["authenticator_password"])
        stack.started_in = time.perf_counter() - began
        _track(stack)
        log.info("local stack ready at %s in %.2f s", stack.url, stack.started_in)
        return stack

    # -- users ------------------------------------------------------------------------------------------

    def create_user(
        self,
        email: str,
        password: str = "local-password-123",  # noqa: S107 - local test stack only
        *,
        confirmed: bool = True,
        user_metadata: dict[str, Any] | None = None,
    ) -> LocalUser:
        """Create a user through the admin API and sign it in."""
        response = self.http.post(
            "/auth/v1/admin/users",
            headers=self._service_headers(),
            json={
                "email": email,
                "password": password,
                "email_confirm": confirmed,
                "user_metadata": user_metadata or {},
            },
            timeout=30,
        )
        _raise_for_auth(response, "create user")
        if not confirmed:
            user = response.json()
            return LocalUser(id=user["id"], email=email, password=password, access_token="")
        return self.sign_in(email, password)

    def sign_in(self, email: str, password: str) -> LocalUser:
        """Password sign-in; returns the user with fresh tokens."""
        response = self.http.post(
            "/auth/v1/token",
            params={"grant_type": "password"},
            headers={"apikey": self.anon_key, "X-Supabase-Api-Version": "2024-01-01"},
            json={"email": email, "password": password},
        )
        _raise_for_auth(response, "sign in")
        session = response.json()
        register_secret(session["access_token"])
        return LocalUser(
            id=session["user"]["id"],
            email=email,
            password=password,
            access_token=session["access_token"],
            refresh_token=session.get("refresh_token"),
        )

    def _service_headers(self) -> dict[str, str]:
        return {
            "apikey": self.service_role_key,
            "Authorization": f"Bearer {self.service_role_key}",
            "X-Supabase-Api-Version": "2024-01-01",
        }

    # -- clients and environment ---------------------------------------------------------------------------

    def env(self, user: LocalUser | None = None) -> dict[str, str]:
        """The environment variables a ``.env`` file would hold for this stack."""
        values = {
            "SUPABASE_URL": self.url,
            "SUPABASE_ANON_KEY": self.anon_key,
            "SUPABASE_SERVICE_ROLE_KEY": self.service_role_key,
            "LORA_PIPELINE_DB_URL": self.db_url,
        }
        if user is not None:
            values["LORA_PIPELINE_ACCESS_TOKEN"] = user.access_token
        return values

    def client(self, *, user: LocalUser | None = None, role: Role | str | None = None, **options: Any) -> LoraPipeline:
        """A :class:`~lora_pipeline.LoraPipeline` for this stack: as ``user``, or with ``role`` (default service)."""
        from .._client import LoraPipeline

        if user is not None:
            return LoraPipeline(
                url=self.url, anon_key=self.anon_key, access_token=user.access_token, role=Role.USER, **options
            )
        chosen = Role(role) if isinstance(role, str) else (role or Role.SERVICE)
        if chosen is Role.ANON:
            return LoraPipeline(url=self.url, anon_key=self.anon_key, role=Role.ANON, **options)
        return LoraPipeline(
            url=self.url, anon_key=self.anon_key, service_role_key=self.service_role_key, role=Role.SERVICE, **options
        )

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A superuser psycopg connection (autocommit) to the stack's database."""
        return psycopg.connect(self.db_url, autocommit=True, **kwargs)

    # -- lifecycle ------------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Remove every row of our tables, every user and every stored object (test isolation)."""
        with self.connect() as conn, conn.transaction():
            conn.execute("set local storage.allow_delete_query = 'true'")
            conn.execute("truncate " + ", ".join(f"public.{t}" for t in _OUR_TABLES) + " cascade")
            conn.execute("delete from storage.objects")
            conn.execute("delete from auth.users")
        objects = self.config.storage_root / "objects"
        if objects.exists():
            shutil.rmtree(objects, ignore_errors=True)

    def restart_gateway(self) -> None:
        """Stop and start the gateway on the same port (fault-injection tests)."""
        self.gateway.stop()
        self.gateway.start()

    def kill_gateway(self) -> None:
        """Crash the gateway (SIGKILL in process mode)."""
        self.gateway.kill()

    def start_gateway(self) -> None:
        if not self.gateway.running:
            self.gateway.start()

    def stop(self) -> None:
        """Stop the gateway and PostgreSQL; remove temporary files. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._http is not None:
            self._http.close()
        with contextlib.suppress(Exception):
            self.gateway.stop()
        self.postgres.stop()
        if self.temporary:
            shutil.rmtree(self.root, ignore_errors=True)
        _untrack(self)

    def __enter__(self) -> LocalSupabase:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LocalSupabase(url={self.url!r}, data_dir={str(self.root)!r})"


def _new_state(opaque_keys: bool) -> dict[str, Any]:
    secret = new_jwt_secret()
    state: dict[str, Any] = {
        "jwt_secret": secret,
        "anon_key": mint_api_key(secret, "anon"),
        "service_role_key": mint_api_key(secret, "service_role"),
        "authenticator_password": secrets.token_urlsafe(24),
    }
    if opaque_keys:
        state["publishable_key"] = "sb_publishable_" + secrets.token_urlsafe(24)
        state["secret_key"] = "sb_secret_" + secrets.token_urlsafe(24)
    return state


def _load_state(root: Path) -> dict[str, Any]:
    path = root / "stack.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _save_state(root: Path, state: dict[str, Any]) -> None:
    path = root / "stack.json"
    path.write_text(json.dumps(state, indent=1))
    path.chmod(0o600)


def _reuse_port(port: int | None) -> int:
    if port:
        with contextlib.suppress(OSError):
            import socket

            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
            return port
    return free_port()


def _prepare_database(postgres: PostgresCluster, authenticator_password: str) -> None:
    with psycopg.connect(postgres.dsn(), autocommit=True) as conn:
        installed = conn.execute("select to_regnamespace('storage') is not null").fetchone()
        if not (installed and installed[0]):
            install_supabase_bootstrap(conn, authenticator_password=authenticator_password)
        MigrationRunner(conn).migrate()


def _gateway_config(state: dict[str, Any], postgres: PostgresCluster, root: Path, port: int) -> GatewayConfig:
    for key in ("jwt_secret", "anon_key", "service_role_key", "publishable_key", "secret_key"):
        register_secret(state.get(key))
    storage_root = root / "storage"
    storage_root.mkdir(mode=0o700, exist_ok=True)
    storage_root.chmod(0o700)  # every tenant's object bytes live below: private to this OS user
    return GatewayConfig(
        port=port,
        jwt_secret=state["jwt_secret"],
        anon_key=state["anon_key"],
        service_role_key=state["service_role_key"],
        publishable_key=state.get("publishable_key"),
        secret_key=state.get("secret_key"),
        authenticator_dsn=postgres.dsn("authenticator", state["authenticator_password"]),
        admin_dsn=postgres.dsn(),
        storage_root=storage_root,
    )


def _raise_for_auth(response: httpx.Response, action: str) -> None:
    if response.status_code >= 400:
        from .._error_mapping import error_from_response

        raise error_from_response(response, service="auth", role="service", resource=action)


_running: weakref.WeakSet[LocalSupabase] = weakref.WeakSet()
_hooks_installed = False
_hooks_lock = threading.Lock()


def _track(stack: LocalSupabase) -> None:
    _running.add(stack)
    _install_exit_hooks()


def _untrack(stack: LocalSupabase) -> None:
    _running.discard(stack)


def _stop_all() -> None:
    for stack in list(_running):
        with contextlib.suppress(Exception):
            stack.stop()


def _install_exit_hooks() -> None:
    """Stop stacks at interpreter exit, and turn SIGTERM into a normal exit when nobody else handles it."""
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        atexit.register(_stop_all)
        if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:

            def _on_sigterm(signum: int, frame: Any) -> None:
                raise SystemExit(128 + signum)

            signal.signal(signal.SIGTERM, _on_sigterm)


__all__ = ["LocalSupabase", "LocalUser"]
