"""runtime.calibration: a camera's threshold for a false-alert budget, stored per camera."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from har_daemon.config import load_config
from har_daemon.core.errors import ConfigError
from har_daemon.runtime.calibration import (
    Calibration,
    allowed_alerts,
    calibration_path,
    camera_thresholds,
    candidates,
    choose_threshold,
    read_calibrations,
    write_calibration,
)


def _cal(threshold: float) -> Calibration:
    return Calibration(threshold, 1.0, 3600.0, 0, 4, True, ("a.mp4",), "2026-12-05T00:00:00+00:00")


def test_candidates_run_from_the_configured_threshold_to_one() -> None:
    c = candidates(0.555)
    assert c[0] == 0.555 and c[1] == 0.56 and c[-1] == 1.0
    assert all(b > a for a, b in itertools.pairwise(c))
    assert candidates(1.0) == [1.0]


def test_a_budget_shorter_than_its_period_allows_no_alert_on_the_footage() -> None:
    assert allowed_alerts(1.0, 3600.0) == 0  # one per day, one hour watched
    assert allowed_alerts(1.0, 86400.0) == 1
    assert allowed_alerts(24.0, 7200.0) == 2  # one per hour, two hours


def test_the_lowest_threshold_within_the_budget_is_chosen() -> None:
    peaks = [0.62, 0.71, 0.71, 0.9]  # each alert's peak score: gone once the threshold passes it
    asked: list[float] = []

    def alerts_at(t: float) -> int:
        asked.append(t)
        return sum(p >= t for p in peaks)

    ts = candidates(0.5)
    assert choose_threshold(alerts_at, ts, 0) == (0.91, 0, True)
    assert asked == sorted(asked)  # climbs, never skips a lower threshold
    assert choose_threshold(alerts_at, ts, 1) == (0.72, 1, True)
    assert choose_threshold(alerts_at, ts, 10) == (0.5, 4, True)
    assert choose_threshold(lambda t: 3, ts, 0) == (1.0, 3, False)  # never within budget
    with pytest.raises(ValueError, match="^no thresholds to choose from$"):
        choose_threshold(alerts_at, [], 0)


def test_the_file_keeps_every_camera_and_is_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "state" / "calibration.json"
    assert read_calibrations(path) == {}
    write_calibration(path, "door", _cal(0.7))
    write_calibration(path, "yard", _cal(0.8))
    write_calibration(path, "door", _cal(0.75))
    got = read_calibrations(path)
    assert {k: v.enter_threshold for k, v in got.items()} == {"door": 0.75, "yard": 0.8}
    assert got["door"].sources == ("a.mp4",)
    assert [p.name for p in path.parent.iterdir()] == ["calibration.json"]  # no temporary left
    assert json.loads(path.read_text())["cameras"]["yard"]["budget_per_day"] == 1.0


@pytest.mark.parametrize("text", ["{not json", '{"cameras": {"door": {"x": 1}}}', "[]"])
def test_a_broken_file_is_one_line_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "calibration.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path)):
        read_calibrations(path)


def test_the_config_beats_the_calibration_which_beats_the_default(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        "[inference]\nenter_threshold = 0.6\nexit_threshold = 0.4\n"
        '[[cameras]]\nname = "a"\nsource = "a.mp4"\nenter_threshold = 0.9\n'
        '[[cameras]]\nname = "b"\nsource = "b.mp4"\n'
        '[[cameras]]\nname = "c"\nsource = "c.mp4"\n'
        '[[cameras]]\nname = "d"\nsource = "d.mp4"\n'
        '[[cameras]]\nname = "e"\nsource = "e.mp4"\n'
    )
    config = load_config(toml)
    # d: under the exit threshold raised since; e: at it (a camera may not enter where it exits)
    cals = {"a": _cal(0.7), "b": _cal(0.8), "d": _cal(0.35), "e": _cal(0.4)}
    assert camera_thresholds(config, cals) == {"a": 0.9, "b": 0.8, "c": 0.6, "d": 0.6, "e": 0.6}


def test_the_file_lives_in_the_state_directory(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(f'[spool]\npath = "{tmp_path / "state"}"\n')
    assert calibration_path(load_config(toml)) == tmp_path / "state" / "calibration.json"


def test_a_camera_threshold_at_or_under_the_exit_threshold_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text(
        '[inference]\nexit_threshold = 0.4\n[[cameras]]\nname = "a"\nsource = "a.mp4"\n'
        "enter_threshold = 0.4\n"
    )
    with pytest.raises(ConfigError, match="exit_threshold"):
        load_config(toml)
