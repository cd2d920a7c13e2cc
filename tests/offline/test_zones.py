"""Zones and masks on real footage, through the daemon's own path (`predict --events`).

CAVIAR's Lisbon corridor (EnterExitCrossingPaths1cor, 15 s, CC BY-SA): people walk down the
middle of the corridor, feet between x 0.2-0.7 and y 0.3-0.6 of the frame, and one walks in at
the bottom. The bundled fight model with a very low threshold alerts on that walk, so the
outcome depends on the zones and masks only: the same walk raises an event where the activity
requires the corridor zone (which it happens in), and nothing where it requires a zone by the
door no one comes near, or where a mask covers the people.

Falls the same way, on GMDCSA24 `s1_fall_14` (a person falls in the middle of a room and lies
with their box's foot point at about x 0.54, y 1.0): the fall names the floor zone drawn around
where they lie, and raises nothing where `required_zones` asks for the fall by the door.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from har_daemon.config import load_config
from har_daemon.model.registry import create_backend
from har_daemon.offline.replay import replay
from tests.daemon_helpers import daemon_env, write_config
from tests.shared_data import FALLS_DATA, REPO, SHARED_DATA, require

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


FALL_CLIP = FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4"
FLOOR = {"name": "floor", "points": [[0.3, 0.55], [0.8, 0.55], [0.8, 1.0], [0.3, 1.0]]}


def _falls(camera: dict[str, Any]) -> list[dict[str, Any]]:
    """The clip replayed in this process (the daemon's capture and inference code) on a camera
    that runs the fall recogniser alone."""
    fall_only = {"name": "room", "source": 0, "recognisers": [{"kind": "fall"}], **camera}
    config = load_config(
        None, {"model": {"path": REPO / "models" / "fight"}, "cameras": [fall_only]}
    )
    backend = create_backend("litert", config.model.path)
    return replay(require(FALL_CLIP), config, backend.meta, backend).events()


def test_a_real_fall_names_the_zone_it_lies_in() -> None:
    events = _falls({"zones": [FLOOR, ZONES[1]], "required_zones": {"fall": ["floor"]}})
    assert [e["type"] for e in events][:2] == ["start", "update"], events
    assert {e["activity"] for e in events} == {"fall"}
    assert all(e["zones"] == ["floor"] for e in events), events  # start, updates and end
    assert events[-1]["type"] == "end" and events[-1]["at_s"] <= 6.0  # the file's own clock


def test_the_same_fall_raises_nothing_where_it_is_required_by_the_door() -> None:
    assert _falls({"zones": [FLOOR, ZONES[1]], "required_zones": {"fall": ["door"]}}) == []
