"""A private PostgreSQL cluster for the embedded stack and the test suite.

``initdb`` refuses to run as root, so when this process is root the cluster runs as an unprivileged OS user
(``LORA_PIPELINE_PG_OS_USER``, else ``postgres`` when it exists, else ``nobody``). The cluster listens on
127.0.0.1 only, on a free port; TCP logins need a password (scram-sha-256).

Clusters started here are recorded in a registry folder with the owning process id; a later start stops and
removes clusters whose owner died without cleaning up (SIGKILL), so nothing accumulates.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from .._exceptions import ConfigError, LoraPipelineError
from .._logging import get_logger, register_secret

log = get_logger("local.postgres")

REGISTRY = Path(tempfile.gettempdir()) / "lora-pipeline-clusters"
SUPERUSER = "postgres"


class PostgresError(LoraPipelineError):
    """The local PostgreSQL cluster could not be created, started or stopped."""


def find_bin_dir() -> Path:
    """Where ``initdb`` and ``pg_ctl`` live: ``LORA_PIPELINE_PG_BIN``, the newest Debian install, or PATH."""
    configured = os.environ.get("LORA_PIPELINE_PG_BIN")
    candidates = [Path(configured)] if configured else []
    candidates += sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresError(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them (Debian: "
        "`apt-get install postgresql`) or set LORA_PIPELINE_PG_BIN to their folder"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _os_user() -> str | None:
    """The unprivileged OS user to run as, or None when this process is not root."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("LORA_PIPELINE_PG_OS_USER"), "postgres", "nobody"):
        if not name:
            continue
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresError("running as root and no unprivileged user (postgres, nobody) exists to run PostgreSQL")


@dataclass
class PostgresCluster:
    """A running cluster. Use :meth:`start`; :meth:`stop` shuts it down and removes temporary files."""

    data_dir: Path
    port: int
    superuser_password: str
    bin_dir: Path
    os_user: str | None
    temporary: bool
    root_dir: Path
    cleanup_dir: Path | None = None
    durable: bool = True
    _stopped: bool = field(default=False, repr=False)

    @classmethod
    def start(
        cls,
        data_dir: str | Path | None = None,
        *,
        port: int | None = None,
        durable: bool | None = None,
        cleanup_dir: str | Path | None = None,
    ) -> PostgresCluster:
        """Create (when needed) and start a cluster.

        Args:
            data_dir: keep the cluster here between runs; a temporary folder when omitted.
            port: TCP port on 127.0.0.1; a free one when omitted.
            durable: PostgreSQL's default durability (default: on for ``data_dir``, off for temporary
                clusters, which run with ``fsync``, ``synchronous_commit`` and ``full_page_writes`` off).
            cleanup_dir: a folder to delete on :meth:`stop` (and when reaped), e.g. a temporary stack's root.
        """
        reap_orphans()
        bin_dir = find_bin_dir()
        os_user = _os_user()
        temporary = data_dir is None
        root = Path(tempfile.mkdtemp(prefix="lora-pg-")) if temporary else Path(data_dir).resolve()  # type: ignore[arg-type]
        root.mkdir(parents=True, exist_ok=True)
        state_file = root / "lora-cluster.json"
        pgdata = root / "pgdata"
        if state_file.exists() and (pgdata / "PG_VERSION").exists():
            state = json.loads(state_file.read_text())
            password = state["superuser_password"]
        else:
            password = secrets.token_urlsafe(24)
            _prepare_dir(root, os_user)
            _initdb(bin_dir, pgdata, password, os_user)
            state_file.write_text(json.dumps({"superuser_password": password}))
            state_file.chmod(0o600)
        register_secret(password)
        cleanup = Path(cleanup_dir) if cleanup_dir is not None else (root if temporary else None)
        cluster = cls(
            pgdata,
            port or free_port(),
            password,
            bin_dir,
            os_user,
            temporary,
            root,
            cleanup,
            durable=not temporary if durable is None else durable,
        )
        cluster._launch(durable=cluster.durable)
        _register(cluster)
        return cluster

    def dsn(self, user: str = SUPERUSER, password: str | None = None, dbname: str = "postgres") -> str:
        """A libpq URL for ``user`` on this cluster."""
        secret = self.superuser_password if password is None else password
        return f"postgresql://{user}:{secret}@127.0.0.1:{self.port}/{dbname}"

    @property
    def log_file(self) -> Path:
        return self.root_dir / "postgres.log"

    def _launch(self, *, durable: bool) -> None:
        options = [
            f"-p {self.port}",
            "-c listen_addresses=127.0.0.1",
            f"-c unix_socket_directories={self.data_dir}",
            "-c max_connections=200",
            "-c shared_buffers=128MB",
            "-c timezone=UTC",
        ]
        if not durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        command = [
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(options),
            "start",
        ]
        result = _run(command, self.os_user)
        if result.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise PostgresError(f"PostgreSQL did not start (port {self.port}): {result.stderr.strip()}\n{tail}")

    def restart(self) -> None:
        """Stop and start again on the same port (used by fault-injection tests)."""
        _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"], self.os_user)
        self._launch(durable=self.durable)

    def kill(self) -> None:
        """Stop immediately, as a crash would (SIGQUIT to the postmaster)."""
        _run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "-w", "stop"], self.os_user)

    def stop(self) -> None:
        """Shut the cluster down; remove its files when it was temporary. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if (self.data_dir / "postmaster.pid").exists():
            _run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30", "stop"],
                self.os_user,
            )
        _unregister(self)
        if self.cleanup_dir is not None:
            shutil.rmtree(self.cleanup_dir, ignore_errors=True)


def _run(command: list[str], os_user: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, user=os_user, check=False, cwd=tempfile.gettempdir(), timeout=120
    )


def _prepare_dir(root: Path, os_user: str | None) -> None:
    if os_user is None:
        return
    info = pwd.getpwnam(os_user)
    os.chown(root, info.pw_uid, info.pw_gid)
    root.chmod(0o700)
    parent = root.parent
    while parent != parent.parent:
        if not os.access(parent, os.X_OK) or (parent.stat().st_mode & 0o001) == 0:
            raise ConfigError(
                f"PostgreSQL runs as the OS user {os_user!r} (this process is root) and cannot enter {parent}: "
                "choose a data dir under /tmp or /var/lib, or make its parents world-executable",
                argument="data_dir",
            )
        parent = parent.parent


def _initdb(bin_dir: Path, pgdata: Path, password: str, os_user: str | None) -> None:
    pwfile = pgdata.parent / ".pwfile"
    pwfile.write_text(password)
    if os_user is not None:
        info = pwd.getpwnam(os_user)
        os.chown(pwfile, info.pw_uid, info.pw_gid)
    pwfile.chmod(0o600)
    command = [
        str(bin_dir / "initdb"),
        "-D",
        str(pgdata),
        "-U",
        SUPERUSER,
        "--auth-local=trust",
        "--auth-host=scram-sha-256",
        f"--pwfile={pwfile}",
        "-E",
        "UTF8",
        "--locale=C",
        "-N",
    ]
    try:
        result = _run(command, os_user)
    finally:
        pwfile.unlink(missing_ok=True)
    if result.returncode != 0:
        raise PostgresError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")


def _registry_entry(cluster: PostgresCluster) -> Path:
    return REGISTRY / f"{cluster.port}.json"


def _register(cluster: PostgresCluster) -> None:
    REGISTRY.mkdir(mode=0o1777, exist_ok=True)
    entry = {
        "owner_pid": os.getpid(),
        "data_dir": str(cluster.data_dir),
        "cleanup_dir": str(cluster.cleanup_dir) if cluster.cleanup_dir else None,
    }
    _registry_entry(cluster).write_text(json.dumps(entry))


def _unregister(cluster: PostgresCluster) -> None:
    with contextlib.suppress(OSError):
        _registry_entry(cluster).unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_orphans() -> int:
    """Stop clusters whose owning process is gone; returns how many were reaped."""
    if not REGISTRY.exists():
        return 0
    reaped = 0
    for path in REGISTRY.glob("*.json"):
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if _alive(int(entry.get("owner_pid", 0))):
            continue
        data_dir = Path(entry["data_dir"])
        pid_file = data_dir / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGQUIT)
                time.sleep(0.2)
        if entry.get("cleanup_dir"):
            shutil.rmtree(entry["cleanup_dir"], ignore_errors=True)
        with contextlib.suppress(OSError):
            path.unlink()
        reaped += 1
        log.info("reaped a PostgreSQL cluster left behind by process %s", entry.get("owner_pid"))
    return reaped


__all__ = ["PostgresCluster", "PostgresError", "find_bin_dir", "free_port", "reap_orphans"]
