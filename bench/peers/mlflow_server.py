"""MLflow's tracking server on a PostgreSQL cluster started here with the same settings as our stack's.

The cluster is :class:`~lora_pipeline.local_supabase.postgres.PostgresCluster` with ``durable=True``: the
class, port range, ``shared_buffers`` and ``max_connections`` our stack uses, and PostgreSQL's default
durability (checked with ``SHOW``). The server is ``mlflow server`` in its default configuration (uvicorn, 4
workers), run by the interpreter that has MLflow; the database URL travels in ``MLFLOW_BACKEND_STORE_URI`` so
that its password is on no command line.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psycopg

from .._durability import SETTINGS


class MlflowServer:
    """``with MlflowServer(python) as server:`` -> ``server.url``; :meth:`count_metric_rows` reads its database."""

    def __init__(self, python: str) -> None:
        self.python = python
        self.url = ""
        self.settings: dict[str, str] = {}
        self._cluster: Any = None
        self._process: subprocess.Popen[bytes] | None = None
        self._directory = Path(tempfile.mkdtemp(prefix="lora-bench-mlflow-"))

    def __enter__(self) -> MlflowServer:
        from lora_pipeline.local_supabase.postgres import PostgresCluster, free_port

        self._cluster = PostgresCluster.start(durable=True)
        try:
            with psycopg.connect(self._cluster.dsn(), autocommit=True) as conn:
                conn.execute("create database mlflow")
                self.settings = {name: str(conn.execute(f"show {name}").fetchone()[0]) for name in SETTINGS}  # type: ignore[index]
            port = free_port()
            environment = dict(os.environ)
            environment["MLFLOW_BACKEND_STORE_URI"] = self._cluster.dsn(dbname="mlflow").replace(
                "postgresql://", "postgresql+psycopg2://", 1
            )
            log = (self._directory / "server.log").open("wb")
            self._process = subprocess.Popen(
                [
                    self.python,
                    "-m",
                    "mlflow",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--default-artifact-root",
                    (self._directory / "artifacts").as_uri(),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environment,
                cwd=self._directory,
            )
            self.url = f"http://127.0.0.1:{port}"
            self._wait_until_healthy(timeout=180)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                tail = (self._directory / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"mlflow server exited with status {self._process.returncode}:\n{tail}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"mlflow server not healthy after {timeout:g} s (log: {self._directory / 'server.log'})")

    def count_metric_rows(self, run_id: str) -> int:
        """Rows of MLflow's ``metrics`` table for ``run_id`` (one per metric value logged)."""
        with psycopg.connect(self._cluster.dsn(dbname="mlflow"), autocommit=True) as conn:
            row = conn.execute("select count(*) from metrics where run_uuid = %s", (run_id,)).fetchone()
        return int(row[0]) if row else 0

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._cluster is not None:
            self._cluster.stop()
        import shutil

        shutil.rmtree(self._directory, ignore_errors=True)
