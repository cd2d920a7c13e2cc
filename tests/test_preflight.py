"""check-config's look at the machine: directories it must write, the port it must listen on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from har_daemon.config import load_config
from har_daemon.core.errors import ConfigError
from har_daemon.model.meta import read_meta
from har_daemon.preflight import check_environment, unwritable_reason
from tests.infra.procs import LOOPBACK


def test_directories_are_judged_without_creating_anything(tmp_path: Path) -> None:
    assert unwritable_reason(tmp_path) is None
    missing = tmp_path / "a" / "b"
    assert unwritable_reason(missing) is None and not (tmp_path / "a").exists()
    (tmp_path / "file").write_text("x")
    assert unwritable_reason(tmp_path / "file") == "not a directory"
    assert unwritable_reason(tmp_path / "file" / "sub") is not None
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # no probe left behind


def test_a_bound_metrics_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = load_config(
            None,
            overrides={
                "metrics": {"port": port, "host": LOOPBACK},
                "spool": {"path": str(tmp_path / "spool")},
            },
        )
        with pytest.raises(ConfigError, match=f"metrics port {port} is already in use"):
            check_environment(config, read_meta(config.model.path))
    check_environment(config, read_meta(config.model.path))  # free again
