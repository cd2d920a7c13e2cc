"""quiet-eval and calibrate on real quiet footage with the shipped fight model.

A CAVIAR corridor clip (MPEG-1 whose header claims 0.17 s for 15.3 s of video) and an Intel GIF
too short for one window, replayed through the daemon's own path: figures per scene with the
duration counted in frames; calibration then sets the camera's threshold to the lowest one at
which that footage raises nothing, and the daemon's cameras take it from calibration.json.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import pytest

from har_daemon.cli import main
from har_daemon.config import load_config
from har_daemon.model.registry import create_backend
from har_daemon.offline.replay import replay
from har_daemon.offline.stream_eval import alerts_from
from har_daemon.runtime.calibration import (
    Calibration,
    calibration_path,
    camera_thresholds,
    read_calibrations,
    write_calibration,
)
from har_daemon.runtime.cameras import build_cameras
from har_daemon.runtime.stats import collect_raw
from tests.daemon_helpers import DaemonPool, write_config
from tests.shared_data import REPO, SHARED_DATA, require

QUIET = SHARED_DATA / "quiet"
CORRIDOR = "caviar_lisbon_corridor_EnterExitCrossingPaths1cor.mpg"
SHORT_GIF = "intel_people_detection.gif"
INFERENCE = {  # config.example.toml's decision settings
    "smoothing": "mean",
    "smoothing_window": 1,
    "enter_threshold": 0.5,
    "exit_threshold": 0.4,
    "min_windows": 3,
    "alert_activities": ["fight"],
    "ignore_activities": ["noFight"],
}


def _quiet_folder(tmp_path: Path) -> Path:
    require(QUIET / CORRIDOR)
    folder = tmp_path / "quiet"
    folder.mkdir()
    for name in (CORRIDOR, SHORT_GIF):
        (folder / name).symlink_to(QUIET / name)
    with (folder / "sources.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "scene"])
        w.writerow([CORRIDOR, "shopping-centre corridor (Lisbon), wide-angle fixed camera"])
        w.writerow([SHORT_GIF, "indoor room, people walking"])
    return folder


def _config(tmp_path: Path, gate: bool = True) -> Path:
    return write_config(
        tmp_path / "c.toml",
        {
            "model": {"path": str(REPO / "models" / "fight"), "backend": "litert"},
            "inference": {**INFERENCE, "interaction_gate": gate},
            "spool": {"path": str(tmp_path / "state")},
        },
        [{"name": "corridor", "source": str(QUIET / CORRIDOR), "realtime": False}],
    )


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_quiet_eval_reports_per_scene_with_durations_from_frames(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _quiet_folder(tmp_path)
    doc = _run(
        capsys,
        "quiet-eval",
        "--data",
        str(folder),
        "--config",
        str(_config(tmp_path)),
        "--gate",
        "off",
        "--json",
    )
    assert [v["interaction_gate"] for v in doc["variants"]] == ["<= 0 body heights", "off"]
    for variant in doc["variants"]:
        corridor, room, total = variant["scenes"]
        assert corridor["scene"] == "shopping-centre corridor (Lisbon)"
        assert corridor["footage_s"] == pytest.approx(383 / 25, abs=0.05)  # not the header's
        assert corridor["windows"] > 10
        hours = corridor["footage_s"] / 3600
        assert corridor["false_alerts_per_hour"] == pytest.approx(
            corridor["false_alerts"] / hours, abs=0.01
        )
        assert room["footage_s"] == 0 and "too short" in room["skipped"][0]
        assert total["scene"] == "all scenes"
        assert total["false_alerts"] == corridor["false_alerts"] + room["false_alerts"]
    gated, off = doc["variants"]
    assert off["scenes"][0]["false_alerts"] >= 1  # today's model alerts on people walking
    assert gated["settings"]["enter_threshold"] == 0.5
    # What decides the figures is recorded beside them (a fresh install resolves new versions).
    assert doc["environment"]["opencv"] == cv2.__version__
    assert doc["environment"]["ai_edge_litert"]


def test_calibrate_sets_the_lowest_quiet_threshold_and_the_cameras_take_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require(QUIET / CORRIDOR)
    toml = _config(tmp_path, gate=False)
    doc = _run(
        capsys,
        "calibrate",
        "--config",
        str(toml),
        "--camera",
        "corridor",
        "--budget",
        "1/day",
        "--json",
    )
    config = load_config(toml)
    path = calibration_path(config)
    assert doc["file"] == str(path) and path.is_file()
    assert doc["alerts_before"] >= 1 and doc["alerts_on_footage"] == 0 and doc["within_budget"]
    threshold = doc["enter_threshold"]
    assert 0.5 < threshold <= 1.0
    assert doc["footage_s"] == pytest.approx(383 / 25, abs=0.05)

    # The daemon's own replay agrees: nothing at the threshold, an alert just under it.
    backend = create_backend("litert", config.model.path)

    def alerts(enter: float) -> int:
        inference = config.inference.model_copy(update={"enter_threshold": enter})
        cfg = config.model_copy(update={"inference": inference})
        return len(alerts_from(replay(QUIET / CORRIDOR, cfg, backend.meta, backend).transitions))

    assert alerts(threshold) == 0
    assert alerts(round(threshold - 0.01, 2)) >= 1

    # At start the daemon reads calibration.json into the camera's tracker and its stats.
    thresholds = camera_thresholds(config, read_calibrations(path))
    cameras = build_cameras(
        config,
        backend.meta,
        config.cameras,
        on_sampled=lambda _c: None,
        on_status=lambda _c, _o: None,
        keep_frames=False,
        thresholds=thresholds,
    )
    assert cameras["corridor"].pipeline.tracker.config.enter_threshold == threshold
    raw = collect_raw(cameras, None, events=lambda _c: 0, uptime_s=1.0, now=1.0)
    assert raw["cameras"]["corridor"]["enter_threshold"] == threshold


def test_the_daemon_starts_with_the_calibrated_threshold(tmp_path: Path) -> None:
    """The real daemon on the corridor clip: an alert at 0.5 (gate off), none once the
    calibration file gives the camera a threshold above every score it sees."""
    require(QUIET / CORRIDOR)
    config = write_config(
        tmp_path / "c.toml",
        {
            "model": {"path": str(REPO / "models" / "fight"), "backend": "litert"},
            "mqtt": {"enabled": False},
            "inference": {**INFERENCE, "interaction_gate": False},
            "spool": {"path": str(tmp_path / "state")},
            "logging": {"level": "info", "json": True},
        },
        [{"name": "corridor", "source": str(QUIET / CORRIDOR), "realtime": False}],
    )
    pool = DaemonPool(tmp_path)

    def run() -> tuple[dict[str, Any], list[dict[str, Any]]]:
        daemon = pool.start(config)
        assert daemon.wait(timeout=120) == 0, daemon.describe()
        (stopped,) = [log for log in daemon.logs() if log.get("event") == "daemon.stopped"]
        return stopped["cameras"]["corridor"], daemon.stdout_events()

    try:
        before, events = run()
        assert before["enter_threshold"] == 0.5
        assert [e["type"] for e in events].count("start") >= 1
        evidence = Calibration(1.0, 1.0, 15.3, 0, 2, True, (CORRIDOR,), "2026-12-05T00:00:00Z")
        write_calibration(calibration_path(load_config(config)), "corridor", evidence)
        after, events = run()
    finally:
        pool.close()
    assert after["enter_threshold"] == 1.0 and after["windows"] > 10
    assert after["events"] == 0 and events == []
