"""A small WSGI server whose cost does not grow with its clients: one selector thread, a
bounded pool of worker threads, a deadline per connection and a cap on open connections.

`wsgiref`'s server with `ThreadingMixIn` starts a thread per connection and waits on it for
ever: 2,000 connections that send nothing made 1,145 threads. Here a connection costs a thread
only once its whole request head has arrived (read without blocking by the selector thread);
one that has not sent it within `timeout_s` is closed, and past `max_connections` the oldest
waiting one is closed, so a scraper's fresh request is still answered. Workers write with the
same timeout, so a client that stops reading frees its worker too. The interface is
socketserver's (`server_address`, `serve_forever`, `shutdown`, `server_close`).
"""

from __future__ import annotations

import contextlib
import io
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler

from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)

MAX_HEAD_BYTES = 16 * 1024
"""A request head (request line and headers) longer than this is not a scrape: closed."""
LISTEN_BACKLOG = 128
ACCEPT_RETRY_S = 0.1
"""Pause after a failed accept (out of descriptors): the listener stays readable meanwhile."""

WsgiApp = Callable[..., Any]


def address_family(host: str) -> socket.AddressFamily:
    """The family a server on `host` needs (IPv6 hosts need AF_INET6)."""
    try:
        family = socket.getaddrinfo(host or None, 0, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        return socket.AF_INET
    return socket.AF_INET6 if family == socket.AF_INET6 else socket.AF_INET


class _Handler(WSGIRequestHandler):
    """wsgiref's request handler fed the head the selector already read; no access log (a
    scrape every few seconds would drown the daemon's own log)."""

    def __init__(self, sock: socket.socket, address: Any, server: Any, head: bytes) -> None:
        self._head = head
        super().__init__(sock, address, server)

    def setup(self) -> None:
        self.connection = self.request
        self.rfile = io.BytesIO(self._head)
        self.wfile = self.connection.makefile("wb", buffering=0)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class _Waiting:
    """A connection whose request head has not fully arrived."""

    sock: socket.socket
    address: Any
    deadline: float
    head: bytearray = field(default_factory=bytearray)


class BoundedWsgiServer:
    """Serves `app` on `(host, port)`; see the module docstring."""

    def __init__(
        self,
        address: tuple[str, int],
        app: WsgiApp,
        *,
        workers: int,
        timeout_s: float,
        max_connections: int,
    ) -> None:
        host, port = address
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self._app = app
        self._listener = socket.socket(address_family(host), socket.SOCK_STREAM)
        try:
            self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind((host, port))
            self._listener.listen(LISTEN_BACKLOG)
            self._listener.setblocking(False)
        except OSError:
            self._listener.close()
            raise
        self.server_address = self._listener.getsockname()[:2]
        # What wsgiref's handler reads from its server.
        self.server_name = socket.getfqdn(host) if host else "localhost"
        self.server_port = int(self.server_address[1])
        self.base_environ = {
            "SERVER_NAME": self.server_name,
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PORT": str(self.server_port),
            "REMOTE_HOST": "",
            "CONTENT_LENGTH": "",
            "SCRIPT_NAME": "",
        }
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="metrics-worker")
        self._waiting: dict[int, _Waiting] = {}
        self._throttle = LogThrottle(60.0, burst=3)
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()  # until serve_forever runs
        self._wake_r, self._wake_w = socket.socketpair()

    def get_app(self) -> WsgiApp:
        return self._app

    # -- the selector thread ------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.2) -> None:
        self._stopped.clear()
        sel = selectors.DefaultSelector()
        sel.register(self._listener, selectors.EVENT_READ, "listen")
        sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(poll_interval):
                    if key.data == "listen":
                        self._accept(sel)
                    elif key.data != "wake":
                        self._read(sel, key.fileobj)  # type: ignore[arg-type]
                self._expire(sel, time.monotonic())
        finally:
            for fd in list(self._waiting):
                self._drop(sel, fd)
            sel.close()
            self._stopped.set()

    def _accept(self, sel: selectors.BaseSelector) -> None:
        while True:
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, say: retried after a pause, not in a spin
                held = self._throttle.allow("accept_failed")
                if held is not None:
                    log.warning("metrics.accept_failed", error=str(exc), suppressed=held)
                self._stop.wait(ACCEPT_RETRY_S)
                return
            sock.setblocking(False)
            if len(self._waiting) >= self.max_connections:
                oldest = min(self._waiting.values(), key=lambda w: w.deadline)
                self._drop(sel, oldest.sock.fileno())
            waiting = _Waiting(sock, address, time.monotonic() + self.timeout_s)
            self._waiting[sock.fileno()] = waiting
            sel.register(sock, selectors.EVENT_READ, waiting)

    def _read(self, sel: selectors.BaseSelector, sock: socket.socket) -> None:
        fd = sock.fileno()
        waiting = self._waiting[fd]
        try:
            chunk = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            chunk = b""
        if not chunk or len(waiting.head) + len(chunk) > MAX_HEAD_BYTES:
            self._drop(sel, fd)
            return
        waiting.head += chunk
        if b"\r\n\r\n" not in waiting.head and b"\n\n" not in waiting.head:
            return
        sel.unregister(sock)
        del self._waiting[fd]
        self._pool.submit(self._serve, sock, waiting.address, bytes(waiting.head))

    def _expire(self, sel: selectors.BaseSelector, now: float) -> None:
        for fd in [fd for fd, w in self._waiting.items() if w.deadline <= now]:
            self._drop(sel, fd)

    def _drop(self, sel: selectors.BaseSelector, fd: int) -> None:
        waiting = self._waiting.pop(fd)
        with contextlib.suppress(KeyError, ValueError):
            sel.unregister(waiting.sock)
        waiting.sock.close()

    # -- a worker -----------------------------------------------------------------------------

    def _serve(self, sock: socket.socket, address: Any, head: bytes) -> None:
        try:
            sock.setblocking(True)
            sock.settimeout(self.timeout_s)  # a client that stops reading frees the worker
            _Handler(sock, address, self, head)
        except Exception:
            # Clients that hang up mid-response are routine; keep tracebacks off stderr.
            log.debug("metrics.request_failed", client=str(address), exc_info=True)
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    # -- stopping -----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop `serve_forever` and wait for it (call from another thread)."""
        self._stop.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._stopped.wait(5.0)

    def server_close(self) -> None:
        """Close the listening socket and let running requests finish (bounded by the
        timeout)."""
        self._listener.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._wake_r.close()
        self._wake_w.close()
