from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from har_daemon.service.systemd import SystemdNotifier


def test_sends_ready_watchdog_and_stopping_to_a_real_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(2)
    try:
        n = SystemdNotifier(path)
        assert n.enabled
        assert n.ready("watching 2 cameras")
        assert server.recv(1024) == b"READY=1\nSTATUS=watching 2 cameras"
        assert n.watchdog()
        assert server.recv(1024) == b"WATCHDOG=1"
        assert n.stopping()
        assert server.recv(1024) == b"STOPPING=1"
        n.close()
    finally:
        server.close()


def test_abstract_namespace_address() -> None:
    name = f"har-test-{os.getpid()}"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind("\0" + name)
    server.settimeout(2)
    try:
        assert SystemdNotifier("@" + name).ready()
        assert server.recv(64) == b"READY=1"
    finally:
        server.close()


def test_no_socket_means_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    n = SystemdNotifier()
    assert not n.enabled
    assert n.ready() is False


def test_watchdog_interval_is_half_of_watchdog_sec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert SystemdNotifier.watchdog_interval_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert SystemdNotifier.watchdog_interval_s() is None
