"""check-config's look at the machine: directories it must write, the port it must listen on."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from har_daemon.config import load_config
from har_daemon.core.errors import ConfigError
from har_daemon.model.meta import read_meta
from har_daemon.preflight import (
    check_environment,
    device_warnings,
    unwritable_reason,
    validate_startup,
)
from tests.infra.procs import LOOPBACK
from tests.shared_data import REPO


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


def test_local_video_devices_are_named_with_the_units_sandbox(tmp_path: Path) -> None:
    """PrivateDevices=yes hides /dev/video*: check-config says so for webcams and devices only."""
    (tmp_path / "video0").touch()
    cams = [
        {"name": "usb", "source": 0},
        {"name": "v4l2", "source": "/dev/video77"},
        {"name": "door", "source": "rtsp://cam/stream"},
        {"name": "off", "source": 1, "enabled": False},
    ]
    config = load_config(None, overrides={"cameras": cams})
    warnings = device_warnings(config, dev=tmp_path)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith(f"camera usb: {tmp_path / 'video0'} is a local device")
    assert warnings[1].startswith("camera v4l2: /dev/video77 is not present here")
    assert all("PrivateDevices=yes" in w and "docs/operations.md" in w for w in warnings)


def test_pose_fusion_needs_a_readable_pose_model(tmp_path: Path) -> None:
    cams = [{"name": "demo", "source": str(REPO / "models" / "demo" / "sample.mp4")}]
    fight = {"path": str(REPO / "models" / "fight")}
    on = {"pose_fusion": True, "alert_activities": ["fight"], "ignore_activities": ["noFight"]}
    ok = load_config(None, overrides={"model": fight, "cameras": cams, "inference": on})
    assert validate_startup(ok).name == read_meta(REPO / "models" / "fight").name
    (tmp_path / "model.json").write_text('{"kind": "trees", "features": ["x"]}')
    bad = {**on, "pose_model": str(tmp_path)}
    config = load_config(None, overrides={"model": fight, "cameras": cams, "inference": bad})
    with pytest.raises(ConfigError, match=r"^inference: cannot read fight pose model .*model.json"):
        validate_startup(config)


def test_pretrained_fusion_needs_a_readable_head(tmp_path: Path) -> None:
    cams = [{"name": "demo", "source": str(REPO / "models" / "demo" / "sample.mp4")}]
    fight = {"path": str(REPO / "models" / "fight")}
    on = {"pretrained_fusion": True, "pretrained_rule": "min"}
    on |= {"alert_activities": ["fight"], "ignore_activities": ["noFight"]}
    ok = load_config(None, overrides={"model": fight, "cameras": cams, "inference": on})
    assert validate_startup(ok).name == read_meta(REPO / "models" / "fight").name
    (tmp_path / "model.json").write_text('{"kind": "linear", "coef": [1.0]}')
    bad = {**on, "pretrained_model": str(tmp_path)}
    config = load_config(None, overrides={"model": fight, "cameras": cams, "inference": bad})
    with pytest.raises(ConfigError, match=r"^inference: cannot read pretrained fight model .*json"):
        validate_startup(config)
    # Off, the same directory is never read.
    off = {**bad, "pretrained_fusion": False}
    config = load_config(None, overrides={"model": fight, "cameras": cams, "inference": off})
    assert validate_startup(config).name == read_meta(REPO / "models" / "fight").name


def test_the_pretrained_rule_is_one_of_three() -> None:
    with pytest.raises(ConfigError, match="pretrained_rule"):
        load_config(None, overrides={"inference": {"pretrained_rule": "replace"}})
