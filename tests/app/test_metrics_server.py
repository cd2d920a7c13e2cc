"""Issue 21 item 8: the metrics server stays small whatever its clients do.

The real daemon serves /metrics and /healthz with the default [metrics] settings (address,
connection timeout, request threads). 300 connections that send nothing: before, each got its own
thread, kept for ever (2,000 made 1,145 threads), on 0.0.0.0. Now the server listens on
127.0.0.1, the daemon's thread count grows by at most the pool, /healthz still answers while
they hang, and the silent connections are closed once their time is up.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from har_daemon.config import MetricsConfig
from har_daemon.config.types import default_of
from tests.app.fault_helpers import events_of, http_json, json_lines, looping, stop
from tests.daemon_helpers import DaemonPool, daemon_config, proc_counts
from tests.infra.procs import LOOPBACK, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SLOW_CLIENTS = 300
WORKERS = default_of(MetricsConfig, "workers")


def test_slow_connections_cost_no_threads_and_health_still_answers(
    tmp_path: Path, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    port = free_port()
    cfg = daemon_config(
        tmp_path / "har.toml",
        None,
        [looping("hall", videos["change"])],
        extra={"metrics": {"port": port}},
    )
    d = daemons.start(cfg)
    url = f"http://{LOOPBACK}:{port}/healthz"

    def answers() -> bool:
        assert d.alive(), d.describe()
        try:
            return http_json(url)[0] in (200, 503)
        except OSError:
            return False

    wait_until(answers, 60, message=d.describe)
    for _ in range(2 * WORKERS):
        http_json(url)
    threads_before = proc_counts(d.pid)[0]
    clients: list[socket.socket] = []
    try:
        for _ in range(SLOW_CLIENTS):
            clients.append(socket.create_connection((LOOPBACK, port), timeout=10))
        started = time.monotonic()
        code, body = http_json(url)  # accepted after all of them: they are all in by now
        answered_s = time.monotonic() - started
        threads_during = proc_counts(d.pid)[0]
        # The silent ones are closed by the server: a read sees the end of the stream.
        closed_by_server = sum(1 for c in clients[-10:] if c.recv(1) == b"")
    finally:
        for c in clients:
            c.close()
    assert code in (200, 503) and "healthy" in body, body
    assert stop(d) == 0, d.describe()
    listening = events_of(json_lines(d), "metrics.listening")
    print(
        f"\n[8] {SLOW_CLIENTS} silent connections: threads {threads_before} -> "
        f"{threads_during}; /healthz answered in {answered_s:.2f}s; "
        f"{closed_by_server}/10 closed by the server; listening on {listening[0]['host']}"
    )
    assert threads_during <= threads_before + WORKERS, (threads_before, threads_during)
    assert closed_by_server == 10
    assert listening[0]["host"] == "127.0.0.1", listening
