"""A real HTTP server on 127.0.0.1 that speaks the pod RPCs the way PostgREST + our SQL functions do, with
faults on demand (status codes, Retry-After, hangs, size limits). Unit tests of the reporter run against it, so
they exercise httpx, the error mapping and the retry policy for real, in milliseconds."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ANON_KEY = "anon-key-for-tests-0123456789"
TOKEN = "job-token-for-tests-0123456789"
KNOWN = {"train_loss", "eval_loss", "perplexity", "learning_rate", "grad_norm", "tokens_per_second", "gpu_memory_gb"}
DENIED = {
    "code": "42501",
    "message": "job token is invalid, expired, or its job has ended",
    "hint": None,
    "details": None,
}


@dataclass
class Fault:
    status: int
    body: dict[str, Any] = field(default_factory=lambda: {"code": "PGRST000", "message": "injected"})
    headers: dict[str, str] = field(default_factory=dict)


class FakeSupabase:
    """State and behaviour of the fake; tests change ``faults``, ``hang``, ``max_body``, ``token``, ``ended``."""

    def __init__(self) -> None:
        self.job_id = str(uuid.uuid4())
        self.token = TOKEN
        self.ended = False
        self.rows: dict[int, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.faults: deque[Fault] = deque()
        self.hang = threading.Event()
        self.down = threading.Event()
        """While set, every request gets a 503 (an outage of unknown length)."""
        self.max_body: int | None = None
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def ingest_requests(self) -> list[dict[str, Any]]:
        return [body for name, body in self.requests if name == "ingest_metrics"]

    def respond(self, name: str, raw: bytes) -> tuple[int, dict[str, str], Any]:
        if self.hang.is_set():
            while self.hang.is_set():
                time.sleep(0.05)
            return 503, {}, {"code": "PGRST000", "message": "was hanging"}
        if self.max_body is not None and len(raw) > self.max_body:
            return 413, {}, {"code": "PGRST413", "message": "payload too large"}
        body = json.loads(raw)
        with self.lock:
            self.requests.append((name, body))
            if self.down.is_set():
                return 503, {}, {"code": "PGRST000", "message": "outage"}
            if self.faults:
                fault = self.faults.popleft()
                return fault.status, fault.headers, fault.body
        if body.get("job_id") != self.job_id or body.get("job_token") != self.token or self.ended:
            return 401, {}, DENIED
        if name == "ingest_metrics":
            return 200, {}, self._ingest(body["points"])
        if name == "pod_heartbeat":
            return 200, {}, {"status": "running", "cancel_requested": False, "server_time": "now"}
        if name == "pod_set_status":
            return 200, {}, body["status"]
        return 200, {}, None

    def _ingest(self, points: list[dict[str, Any]]) -> Any:
        if len(points) > 1000:
            return {"code": "22023", "message": "at most 1000 points per batch"}
        with self.lock:
            for point in points:
                row = self.rows.setdefault(point["step"], {"extra": {}})
                for key, value in point.items():
                    if key == "extra":
                        row["extra"].update(value)
                    elif key in KNOWN or key in ("step", "epoch", "recorded_at"):
                        row[key] = value
                    else:
                        row["extra"][key] = value
        return len({p["step"] for p in points})


def _handler(fake: FakeSupabase) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            name = self.path.rsplit("/", 1)[-1]
            if self.headers.get("apikey") != ANON_KEY:
                status, headers, body = 401, {}, {"message": "Invalid API key"}
            else:
                status, headers, body = fake.respond(name, raw)
            if status == 200 and isinstance(body, dict) and body.get("code") == "22023":
                status = 400
            payload = json.dumps(body).encode()
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake_supabase() -> Iterator[FakeSupabase]:
    fake = FakeSupabase()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    server.daemon_threads = True
    fake.server = server
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.hang.clear()
    server.shutdown()
    server.server_close()


@pytest.fixture
def make_reporter(fake_supabase: FakeSupabase, tmp_path: Path) -> Iterator[Any]:
    """``make_reporter(**options)``: a reporter for the fake's job with fast intervals, finished afterwards."""
    from lora_pipeline.pod import MetricsReporter, SendPolicy

    made: list[MetricsReporter] = []

    def make(**options: Any) -> MetricsReporter:
        options.setdefault("spool_dir", tmp_path / "spool")
        options.setdefault("flush_interval", 0.05)
        options.setdefault("spool_interval", 0.02)
        options.setdefault("handle_signals", False)
        options.setdefault("policy", SendPolicy(timeout=2.0, max_retries=2, failure_threshold=3, cool_down=0.2))
        options.setdefault("rank", 0)
        job_id = options.pop("job_id", fake_supabase.job_id)
        token = options.pop("job_token", TOKEN)
        reporter = MetricsReporter(job_id, token, fake_supabase.url, ANON_KEY, **options)
        made.append(reporter)
        return reporter

    yield make
    for reporter in made:
        reporter.finish(timeout=2)
