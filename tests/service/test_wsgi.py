"""The bounded WSGI server behind /metrics and /healthz, with real sockets on the loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from har_daemon.service.wsgi import MAX_HEAD_BYTES, BoundedWsgiServer
from tests.infra.procs import LOOPBACK


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = f"hello {environ['PATH_INFO']}".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server() -> Iterator[BoundedWsgiServer]:
    srv = BoundedWsgiServer(
        (LOOPBACK, 0), _app, workers=2, timeout_s=30.0, max_connections=3
    )  # fmt: skip
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(5)
    assert not thread.is_alive()


def _connect(server: BoundedWsgiServer) -> socket.socket:
    return socket.create_connection(server.server_address, timeout=10)


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def test_a_request_sent_in_pieces_is_answered(server: BoundedWsgiServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        sock.sendall(b"\r\n")
        answer = _answer(sock)
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"hello /metrics"), answer


def test_past_the_cap_the_oldest_waiting_connection_is_closed(server: BoundedWsgiServer) -> None:
    silent = [_connect(server) for _ in range(5)]
    try:
        with _connect(server) as sock:  # the newest: served although 5 wait before it
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            assert _answer(sock).endswith(b"hello /healthz")
        # The two oldest (and then the third, to make room for the request) were closed.
        assert [c.recv(1) for c in silent[:3]] == [b"", b"", b""]
    finally:
        for c in silent:
            c.close()


def test_an_endless_request_head_is_cut_off(server: BoundedWsgiServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\n")
        try:
            for _ in range(MAX_HEAD_BYTES // 1000 + 50):
                sock.sendall(b"X-Junk: " + b"a" * 990 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed while we were still sending
        try:
            end = sock.recv(1)
        except ConnectionResetError:
            end = b""
        assert end == b""  # closed by the server; a timeout here fails the test


def test_silent_connections_are_closed_after_the_timeout() -> None:
    srv = BoundedWsgiServer((LOOPBACK, 0), _app, workers=1, timeout_s=0.5, max_connections=10)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        with _connect(srv) as sock:
            assert sock.recv(1) == b""  # closed by the server, not by our 10 s timeout
    finally:
        srv.shutdown()
        srv.server_close()
