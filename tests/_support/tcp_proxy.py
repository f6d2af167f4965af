"""``TcpProxy``: a loopback TCP proxy that injects network faults between a client and a server, for tests.

Put it between your pod code (or any client) and the local stack, then switch faults on and off while the
client runs::

    from lora_pipeline.testing import TcpProxy

    with LocalSupabase.start() as stack, TcpProxy(stack.url) as proxy:
        reporter = MetricsReporter(job_id, job_token, proxy.url, stack.anon_key)
        proxy.blackhole()      # a network partition: bytes vanish, nothing answers, nothing closes
        ...
        proxy.heal()           # back to forwarding

Modes (:class:`ProxyMode`), switchable at any time from any thread; they apply to new connections and to the
ones already open:

- ``FORWARD``: pass bytes both ways (the mode after :meth:`TcpProxy.start`).
- ``DELAY``: forward, holding every chunk ``latency`` seconds in each direction (order is kept).
- ``DROP``: close connections cleanly (FIN): new ones right after they are accepted, open ones at once.
- ``RESET``: abort connections with a TCP RST (``SO_LINGER`` 0): new ones on accept, open ones at once.
- ``BLACKHOLE``: accept, read and discard; never answer and never close. A connection caught by a black hole
  stays silent until its client gives up (its bytes are gone, so it cannot resume); new connections made
  after :meth:`TcpProxy.heal` pass again.
- ``LOSE_REPLIES``: forward requests, then reset the client the moment the server starts answering: the
  server did the work, the client never learns it (the case that tests idempotent retries).

A server that refuses the proxy's connection (it is down) shows up as a reset to the client. The proxy listens
on loopback only, runs on daemon threads (one accepting, one per connection) and stops with the ``with`` block:
every connection is aborted and every thread joined. Standard library only.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import selectors
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

_POLL = 0.02
"""Seconds between checks of the mode and the stop flag (how fast open connections react to a switch)."""
_CHUNK = 65536


class ProxyMode(str, enum.Enum):
    """What the proxy does with connections; see the module docstring."""

    FORWARD = "forward"
    DELAY = "delay"
    DROP = "drop"
    RESET = "reset"
    BLACKHOLE = "blackhole"
    LOSE_REPLIES = "lose_replies"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class ProxyStats:
    """Counters since the proxy started (``proxy.stats()``)."""

    accepted: int
    """Client connections accepted."""
    active: int
    """Connections open now (held black-holed ones included)."""
    bytes_up: int
    """Bytes forwarded from clients to the server."""
    bytes_down: int
    """Bytes forwarded from the server to clients."""
    dropped: int
    """Connections closed cleanly by ``DROP``."""
    reset: int
    """Connections aborted with a RST by ``RESET`` (or because the server refused the proxy)."""
    blackholed: int
    """Connections caught by ``BLACKHOLE``."""
    discarded_bytes: int
    """Bytes swallowed by black-holed connections."""
    replies_lost: int
    """Exchanges cut by ``LOSE_REPLIES`` after the server had the request."""
    upstream_refused: int
    """Connections the server refused (it was down)."""


class TcpProxy:
    """A fault-injecting TCP proxy on 127.0.0.1 in front of ``upstream``.

    Args:
        upstream: the server: a URL (``http://127.0.0.1:54321``; its scheme is kept for :attr:`url`) or a
            ``(host, port)`` pair.
        host: the loopback address to listen on (``127.0.0.1`` or ``::1``); anything else is refused.
        port: the port to listen on; a free one when 0.
        connect_timeout: seconds to wait when connecting to the server.

    Raises:
        ValueError: ``host`` is not a loopback address, or ``upstream`` names no port.

    Example::

        with TcpProxy("http://127.0.0.1:8000") as proxy:
            with proxy.fault(ProxyMode.RESET):
                ...  # every connection through proxy.url is reset here
            assert proxy.stats().reset > 0
    """

    def __init__(
        self,
        upstream: str | tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        connect_timeout: float = 2.0,
    ) -> None:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError(f"TcpProxy listens on loopback only; {host!r} is not a loopback address")
        self.upstream, self._scheme = _parse_upstream(upstream)
        self.host = host
        self._requested_port = port
        self.connect_timeout = connect_timeout
        self._mode = ProxyMode.FORWARD
        self._latency = 0.0
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(
            (
                "accepted",
                "bytes_up",
                "bytes_down",
                "dropped",
                "reset",
                "blackholed",
                "discarded_bytes",
                "replies_lost",
                "upstream_refused",
            ),
            0,
        )
        self._connections: set[_Connection] = set()
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        """Listen and start accepting (idempotent); returns the proxy."""
        if self._listener is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self._requested_port))
        listener.listen(128)
        listener.setblocking(False)
        self._stopping.clear()
        self._listener = listener
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"tcp-proxy:{self.port}", daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, abort every open connection and join every thread. Safe to call twice."""
        if self._listener is None:
            return
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            connection.thread.join(timeout)
        with contextlib.suppress(OSError):
            self._listener.close()
        self._listener = self._acceptor = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the proxy listens on."""
        if self._listener is None:
            raise RuntimeError("the proxy is not running: call start() or use it as a context manager")
        return int(self._listener.getsockname()[1])

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        """Where clients should connect: the upstream URL's scheme with the proxy's host and port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self._scheme}://{host}:{self.port}"

    # -- faults -------------------------------------------------------------------------------------------

    @property
    def mode(self) -> ProxyMode:
        return self._mode

    @property
    def latency(self) -> float:
        """Seconds each chunk is held in ``DELAY`` mode."""
        return self._latency

    def set_mode(self, mode: ProxyMode | str, *, latency: float | None = None) -> None:
        """Switch to ``mode`` now (``latency`` in seconds for ``DELAY``); open connections follow within ~20 ms."""
        chosen = ProxyMode(mode)
        if latency is not None:
            if latency < 0:
                raise ValueError("latency must be >= 0")
            self._latency = float(latency)
        self._mode = chosen

    def forward(self) -> None:
        """Pass everything through (the state after :meth:`start`)."""
        self.set_mode(ProxyMode.FORWARD)

    heal = forward

    def delay(self, seconds: float) -> None:
        """Hold every chunk ``seconds`` in each direction."""
        self.set_mode(ProxyMode.DELAY, latency=seconds)

    def drop(self) -> None:
        """Close connections cleanly (FIN), open and new."""
        self.set_mode(ProxyMode.DROP)

    def reset(self) -> None:
        """Abort connections with a RST, open and new."""
        self.set_mode(ProxyMode.RESET)

    def blackhole(self) -> None:
        """Swallow everything; answer nothing; close nothing."""
        self.set_mode(ProxyMode.BLACKHOLE)

    def lose_replies(self) -> None:
        """Let requests through and reset the client as soon as the server answers."""
        self.set_mode(ProxyMode.LOSE_REPLIES)

    @contextlib.contextmanager
    def fault(self, mode: ProxyMode | str, *, latency: float | None = None) -> Iterator[TcpProxy]:
        """``with proxy.fault(ProxyMode.BLACKHOLE): ...``: the mode for the block, then the previous one."""
        previous, previous_latency = self._mode, self._latency
        self.set_mode(mode, latency=latency)
        try:
            yield self
        finally:
            self.set_mode(previous, latency=previous_latency)

    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        with self._lock:
            return ProxyStats(active=len(self._connections), **self._counts)

    def __repr__(self) -> str:
        where = f"{self.host}:{self.port}" if self._listener is not None else "stopped"
        return f"TcpProxy({where} -> {self.upstream[0]}:{self.upstream[1]}, mode={self._mode.value})"

    # -- internals ------------------------------------------------------------------------------------------

    def _count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def _accept_loop(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stopping.is_set():
                if not selector.select(_POLL):
                    continue
                try:
                    client, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # e.g. out of file descriptors: keep serving the connections already open
                    self._stopping.wait(_POLL)
                    continue
                self._count("accepted")
                self._admit(client)

    def _admit(self, client: socket.socket) -> None:
        mode = self._mode
        if mode is ProxyMode.DROP:
            self._count("dropped")
            _close(client)
            return
        if mode is ProxyMode.RESET:
            self._count("reset")
            _abort(client)
            return
        connection = _Connection(self, client, held=mode is ProxyMode.BLACKHOLE)
        if connection.held:
            self._count("blackholed")
        with self._lock:
            self._connections.add(connection)
        connection.thread.start()

    def _forget(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.discard(connection)


class _Connection:
    """One client connection and its server connection, served by one thread (so only it touches the sockets)."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, *, held: bool) -> None:
        self.proxy = proxy
        self.client = client
        self.server: socket.socket | None = None
        self.held = held
        self.client_done = self.server_done = False
        self.half_closed: set[str] = set()
        """Directions whose end has been passed on (``"up"``: to the server, ``"down"``: to the client)."""
        # Chunks waiting for their time in DELAY mode: (due, bytes) per direction.
        self.to_server: deque[tuple[float, bytes]] = deque()
        self.to_client: deque[tuple[float, bytes]] = deque()
        self.thread = threading.Thread(target=self._run, name="tcp-proxy-connection", daemon=True)

    def _run(self) -> None:
        try:
            if not self.held and not self._connect():
                return
            self._serve()
        except Exception:  # a socket error, or a peer that stopped reading: this connection ends, not the proxy
            self._end(abort=True)
        finally:
            self.proxy._forget(self)

    def _connect(self) -> bool:
        try:
            self.server = socket.create_connection(self.proxy.upstream, timeout=self.proxy.connect_timeout)
        except OSError:
            self.proxy._count("upstream_refused")
            self.proxy._count("reset")
            _abort(self.client)
            return False
        return True

    def _serve(self) -> None:
        proxy = self.proxy
        with selectors.DefaultSelector() as selector:
            self.client.setblocking(False)
            selector.register(self.client, selectors.EVENT_READ, "client")
            if self.server is not None:
                self.server.setblocking(False)
                selector.register(self.server, selectors.EVENT_READ, "server")
            while True:
                if proxy._stopping.is_set():
                    self._end(abort=True)
                    return
                mode = proxy.mode
                if mode in (ProxyMode.DROP, ProxyMode.RESET):
                    proxy._count("dropped" if mode is ProxyMode.DROP else "reset")
                    self._end(abort=mode is ProxyMode.RESET)
                    return
                if mode is ProxyMode.BLACKHOLE and not self.held:
                    self.held = True
                    proxy._count("blackholed")
                for key, _ in selector.select(self._wait_seconds()):
                    if not self._receive(key.data, selector):
                        return
                self._send_due()
                if self.client_done and (self.server is None or self.server_done) and not self._queued():
                    self._end(abort=False)
                    return

    def _wait_seconds(self) -> float:
        due = [queue[0][0] for queue in (self.to_server, self.to_client) if queue]
        if not due:
            return _POLL
        return max(0.0, min(_POLL, min(due) - time.monotonic()))

    def _queued(self) -> bool:
        return bool(self.to_server or self.to_client)

    def _receive(self, side: str, selector: selectors.BaseSelector) -> bool:
        """Read what ``side`` sent; returns False when the connection ended."""
        source = self.client if side == "client" else self.server
        assert source is not None
        try:
            data = source.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            self._end(abort=True)
            return False
        if not data:
            return self._on_eof(side, selector)
        proxy = self.proxy
        if not self.held and proxy.mode is ProxyMode.BLACKHOLE:
            # The mode changed while this connection waited in select(): bytes read from now on are the
            # partition's, so nothing that arrives after blackhole() returned is forwarded.
            self.held = True
            proxy._count("blackholed")
        if self.held:
            proxy._count("discarded_bytes", len(data))
            return True
        if side == "server" and proxy.mode is ProxyMode.LOSE_REPLIES:
            proxy._count("replies_lost")
            self._end(abort=True)
            return False
        due = time.monotonic() + (proxy.latency if proxy.mode is ProxyMode.DELAY else 0.0)
        (self.to_server if side == "client" else self.to_client).append((due, data))
        return True

    def _on_eof(self, side: str, selector: selectors.BaseSelector) -> bool:
        """Pass a half-close on (after the data queued before it); a held connection ends with its client."""
        source = self.client if side == "client" else self.server
        assert source is not None
        selector.unregister(source)
        if side == "client":
            self.client_done = True
            if self.held or self.server is None:
                self._end(abort=False)
                return False
        else:
            self.server_done = True
        return True

    def _send_due(self) -> None:
        now = time.monotonic()
        for direction, queue, target, peer_done in (
            ("up", self.to_server, self.server, self.client_done),
            ("down", self.to_client, self.client, self.server_done),
        ):
            if target is None:
                continue
            while queue and queue[0][0] <= now:
                _, data = queue.popleft()
                _send_all(target, data)
                self.proxy._count(f"bytes_{direction}", len(data))
            if peer_done and not queue and direction not in self.half_closed:
                self.half_closed.add(direction)
                with contextlib.suppress(OSError):
                    target.shutdown(socket.SHUT_WR)

    def _end(self, *, abort: bool) -> None:
        for sock in (self.client, self.server):
            if sock is not None:
                (_abort if abort else _close)(sock)


def _send_all(sock: socket.socket, data: bytes) -> None:
    """``sendall`` on a non-blocking socket: wait for room, at most 5 s for a peer that stopped reading."""
    view = memoryview(data)
    deadline = time.monotonic() + 5.0
    while view:
        try:
            sent = sock.send(view)
        except (BlockingIOError, InterruptedError):
            if time.monotonic() > deadline:
                raise TimeoutError("the peer stopped reading") from None
            with selectors.DefaultSelector() as selector:
                selector.register(sock, selectors.EVENT_WRITE)
                selector.select(_POLL)
            continue
        view = view[sent:]


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def _abort(sock: socket.socket) -> None:
    """Close with a RST instead of a FIN: ``SO_LINGER`` on with a zero timeout."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _parse_upstream(upstream: str | tuple[str, int]) -> tuple[tuple[str, int], str]:
    if isinstance(upstream, tuple):
        return (upstream[0], int(upstream[1])), "http"
    parts = urlsplit(upstream if "://" in upstream else f"tcp://{upstream}")
    if parts.hostname is None or parts.port is None:
        raise ValueError(f"upstream must name a host and a port, got {upstream!r}")
    return (parts.hostname, parts.port), parts.scheme


__all__ = ["ProxyMode", "ProxyStats", "TcpProxy"]
