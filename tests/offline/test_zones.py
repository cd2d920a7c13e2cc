"""Zones and masks on real footage, through the daemon's own path (`predict --events`).

CAVIAR's Lisbon corridor (EnterExitCrossingPaths1cor, 15 s, CC BY-SA): people walk down the
middle of the corridor, feet between x 0.2-0.7 and y 0.3-0.6 of the frame, and one walks in at
the bottom. The bundled fight model with a very low threshold alerts on that walk, so the
outcome depends on the zones and masks only: the same walk raises an event where the activity
requires the corridor zone (which it happens in), and nothing where it requires a zone by the
door no one comes near, or where a mask covers the people.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.daemon_helpers import daemon_env, write_config
from tests.shared_data import REPO, SHARED_DATA, require

pytestmark = pytest.mark.slow

CLIP = SHARED_DATA / "quiet" / "caviar_lisbon_corridor_EnterExitCrossingPaths1cor.mpg"
# The walk alerts: the fight score is the only candidate (noFight ignored) and 0.02 is low.
ANY_MOTION = {
    "enter_threshold": 0.02,
    "exit_threshold": 0.01,
    "min_windows": 1,
    "ignore_activities": ["noFight"],
}
ZONES = [
    {"name": "corridor", "points": [[0.2, 0.25], [0.7, 0.25], [0.7, 0.65], [0.2, 0.65]]},
    {"name": "door", "points": [[0.0, 0.0], [0.12, 0.0], [0.12, 0.3], [0.0, 0.3]]},
]


def _args(config: Path) -> list[str]:
    return ["--config", str(config), "--events", "--json"]


def _predict(tmp: Path, camera: dict[str, Any], *more: str) -> list[dict[str, Any]]:
    result = _run(tmp, [{"name": "corridor_cam", "source": 0, **camera}], *more)
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]


def _run(tmp: Path, cameras: list[dict[str, Any]], *more: str) -> subprocess.CompletedProcess[str]:
    config = write_config(
        tmp / "har.toml",
        {
            "model": {"path": REPO / "models" / "fight"},
            "mqtt": {"enabled": False},
            "inference": ANY_MOTION,
        },
        cameras,
    )
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", "predict", str(require(CLIP)), *_args(config), *more],
        capture_output=True,
        text=True,
        env=daemon_env(tmp),
        cwd=REPO,
        timeout=300,
    )


def test_a_walk_inside_the_required_zone_alerts_and_names_it(tmp_path: Path) -> None:
    events = _predict(tmp_path, {"zones": ZONES, "required_zones": {"fight": ["corridor"]}})
    starts = [e for e in events if e["type"] == "start"]
    assert starts, events
    assert all(e["zones"] == ["corridor"] for e in starts), starts


def test_the_same_walk_outside_the_required_zone_raises_nothing(tmp_path: Path) -> None:
    assert _predict(tmp_path, {"zones": ZONES, "required_zones": {"fight": ["door"]}}) == []


def test_the_same_walk_under_a_mask_raises_nothing(tmp_path: Path) -> None:
    walkway = {"name": "walkway", "points": [[0, 0.1], [1, 0.1], [1, 1], [0, 1]]}
    assert _predict(tmp_path, {"masks": [walkway]}) == []


def test_camera_picks_whose_drawing_applies(tmp_path: Path) -> None:
    """`--camera` replays with that camera's zones; an unknown name is one clear error."""
    door_only = {
        "name": "lobby",
        "source": 0,
        "zones": ZONES,
        "required_zones": {"fight": ["door"]},
    }
    cameras = [{"name": "street", "source": 0}, door_only]
    assert json.loads(_run(tmp_path, cameras).stdout.splitlines()[0])["type"] == "start"
    assert _run(tmp_path, cameras, "--camera", "lobby").stdout.strip() == ""
    wrong = _run(tmp_path, cameras, "--camera", "garage")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "no camera 'garage'" in wrong.stderr and "street, lobby" in wrong.stderr
