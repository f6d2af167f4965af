"""Running the gateway: in its own process (default: killable, own GIL) or in a thread of this process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from ..postgres import PostgresError
from .config import GatewayConfig


def wait_until_ready(
    url: str, *, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None, log_file: Path | None = None
) -> None:
    """Poll ``GET /`` until the gateway answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            tail = log_file.read_text(errors="replace")[-3000:] if log_file and log_file.exists() else ""
            raise PostgresError(f"the gateway exited with code {process.returncode} while starting:\n{tail}")
        try:
            if httpx.get(url + "/", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise PostgresError(f"the gateway at {url} did not become ready within {timeout:.0f} s")


class GatewayProcess:
    """``python -m lora_pipeline.local_supabase.gateway CONFIG`` as a child process."""

    def __init__(self, config: GatewayConfig, config_path: Path, log_file: Path) -> None:
        self.config = config
        self.config_path = config_path
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.config.write(self.config_path)
        env = dict(os.environ)
        env.pop("LORA_PIPELINE_LOG", None)
        with open(self.log_file, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "lora_pipeline.local_supabase.gateway", str(self.config_path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        wait_until_ready(self.config.public_url, process=self.process, log_file=self.log_file)

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL after 5 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def kill(self) -> None:
        """Crash it (SIGKILL): open transactions are rolled back by Postgres."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class GatewayThread:
    """The gateway served by uvicorn in a daemon thread of this process."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.server: object | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn

        from .app import create_app

        uv_config = uvicorn.Config(
            create_app(self.config),
            host=self.config.host,
            port=self.config.port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=75,
            lifespan="on",
        )
        server = uvicorn.Server(uv_config)
        server.install_signal_handlers = lambda: None  # type: ignore[attr-defined,method-assign]
        self.server = server
        self.thread = threading.Thread(target=lambda: asyncio.run(server.serve()), name="lora-gateway", daemon=True)
        self.thread.start()
        wait_until_ready(self.config.public_url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True  # type: ignore[attr-defined]
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.server = self.thread = None

    kill = stop

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


def serve_forever(config_path: Path) -> None:
    """Entry point of the gateway process."""
    import uvicorn

    from .app import create_app

    config = GatewayConfig.read(config_path)
    with contextlib.suppress(KeyboardInterrupt):
        uvicorn.run(
            create_app(config),
            host=config.host,
            port=config.port,
            log_level="warning",
            access_log=False,
            timeout_keep_alive=75,
            lifespan="on",
        )


__all__ = ["GatewayProcess", "GatewayThread", "serve_forever", "wait_until_ready"]
