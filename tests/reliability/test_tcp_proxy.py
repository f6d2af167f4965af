"""The fault-injecting proxy itself, against a plain echo server: each mode does what it says, on new and on
open connections, and the proxy stops cleanly."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from tests._support.tcp_proxy import ProxyMode, TcpProxy

from .conftest import wait_until


class EchoServer:
    """Echoes every chunk back and records what it received; closes a connection when its client does."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.received = bytearray()
        self.connections = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    @property
    def port(self) -> int:
        return int(self.listener.getsockname()[1])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
            thread = threading.Thread(target=self._echo, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(0.05)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                with self._lock:
                    self.received += data
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._accepting.join(5)
        for thread in self._threads:
            thread.join(5)
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def proxy(echo: EchoServer) -> Iterator[TcpProxy]:
    with TcpProxy(("127.0.0.1", echo.port)) as running:
        yield running


def connect(proxy: TcpProxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(proxy.address, timeout=timeout)


def exchange(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_forward_passes_both_ways_and_counts(proxy: TcpProxy, echo: EchoServer) -> None:
    payload = bytes(range(256)) * 1000
    with connect(proxy) as sock:
        assert exchange(sock, payload) == payload
    assert wait_until(lambda: proxy.stats().active == 0)
    stats = proxy.stats()
    assert (stats.accepted, stats.bytes_up, stats.bytes_down) == (1, len(payload), len(payload))
    assert bytes(echo.received) == payload


def test_a_half_close_reaches_the_server_after_the_data(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        got = b""
        while chunk := sock.recv(100):
            got += chunk
    assert got == b"last words", "the server saw the end after the data, echoed it, and closed"


def test_delay_holds_each_direction(proxy: TcpProxy) -> None:
    with connect(proxy) as sock:
        assert exchange(sock, b"warm") == b"warm"
        proxy.delay(0.15)
        began = time.monotonic()
        assert exchange(sock, b"slow") == b"slow"
        assert time.monotonic() - began >= 0.3, "0.15 s up plus 0.15 s down"
        proxy.forward()
        assert exchange(sock, b"fast") == b"fast"


def test_drop_closes_open_and_new_connections_cleanly(proxy: TcpProxy) -> None:
    with connect(proxy) as open_before:
        assert exchange(open_before, b"hi") == b"hi"
        proxy.drop()
        assert open_before.recv(10) == b"", "an open connection gets a FIN"
    with connect(proxy) as new:
        assert new.recv(10) == b""
    assert proxy.stats().dropped == 2


def test_reset_aborts_open_and_new_connections_with_a_rst(proxy: TcpProxy) -> None:
    with connect(proxy) as open_before:
        assert exchange(open_before, b"hi") == b"hi"
        proxy.reset()
        with pytest.raises(ConnectionResetError):
            open_before.recv(10)
    with pytest.raises(ConnectionResetError), connect(proxy) as new:  # the RST may beat connect() returning
        new.sendall(b"x")
        new.recv(10)
    assert proxy.stats().reset == 2


def test_blackhole_swallows_everything_and_closes_nothing(proxy: TcpProxy, echo: EchoServer) -> None:
    with connect(proxy) as caught_open, connect(proxy, timeout=0.3) as new:
        assert exchange(caught_open, b"before") == b"before"
        proxy.blackhole()
        assert wait_until(lambda: proxy.stats().blackholed == 2)
        for sock in (caught_open, new):
            sock.settimeout(0.3)
            sock.sendall(b"into the void")
            with pytest.raises(TimeoutError):
                sock.recv(10)
        assert bytes(echo.received) == b"before"
        proxy.heal()
        with pytest.raises(TimeoutError):
            caught_open.recv(10)  # its bytes are gone: it stays silent after the heal
        with connect(proxy) as after:
            assert exchange(after, b"healed") == b"healed"
    assert proxy.stats().discarded_bytes == 2 * len(b"into the void")


def test_lose_replies_lets_the_request_through_and_resets_the_client(proxy: TcpProxy, echo: EchoServer) -> None:
    proxy.lose_replies()
    with connect(proxy) as sock:
        sock.sendall(b"do it once")
        with pytest.raises(ConnectionResetError):
            sock.recv(10)
    assert bytes(echo.received) == b"do it once" and proxy.stats().replies_lost == 1


def test_a_server_that_is_down_looks_like_a_reset(echo: EchoServer) -> None:
    port = echo.port
    echo.close()
    with TcpProxy(("127.0.0.1", port)) as proxy, pytest.raises(ConnectionResetError), connect(proxy) as sock:
        sock.sendall(b"anyone?")
        sock.recv(10)
    assert proxy.stats().upstream_refused == 1


def test_fault_restores_the_previous_mode(proxy: TcpProxy) -> None:
    proxy.delay(0.01)
    with proxy.fault(ProxyMode.RESET):
        assert proxy.mode is ProxyMode.RESET
    assert (proxy.mode, proxy.latency) == (ProxyMode.DELAY, 0.01)
    with pytest.raises(ValueError):
        proxy.set_mode("flaky")


def test_stopping_aborts_connections_joins_threads_and_frees_the_port(echo: EchoServer) -> None:
    before = threading.active_count()
    with TcpProxy(f"http://127.0.0.1:{echo.port}") as proxy:
        assert proxy.url == f"http://127.0.0.1:{proxy.port}"
        address = proxy.address
        held = connect(proxy)
        proxy.blackhole()
        assert wait_until(lambda: proxy.stats().blackholed == 1)
    with held, pytest.raises(ConnectionResetError):
        held.recv(10)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=1)
    assert wait_until(lambda: threading.active_count() <= before)


def test_only_loopback_addresses_are_accepted() -> None:
    with pytest.raises(ValueError, match="loopback"):
        TcpProxy(("127.0.0.1", 1), host="0.0.0.0")
    with pytest.raises(ValueError, match="port"):
        TcpProxy("http://localhost")
