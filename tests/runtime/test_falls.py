"""runtime.falls: the fall stage on scripted people (start, "down for N s" updates, end when
they get up), and with the real detector, pose model and shipped rule on real clips: a real
fall raises one fall within seconds, lying down slowly on a sofa raises nothing."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import KP, PoseEstimator
from har_daemon.runtime.falls import FallStage, load_rule, play_file
from tests.shared_data import FALLS_DATA, require


class ScriptedPeople:
    """Detector and pose model at once: one person whose hips sit at `hip_y` (set by the test),
    standing (torso upright, tall box) above `down_at`, lying (torso level, wide box) below."""

    def __init__(self) -> None:
        self.hip_y = 200.0
        self.down_at = 260.0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        if self.hip_y >= self.down_at:
            return np.array([[100, self.hip_y - 40, 300, self.hip_y + 20, 0.9]], np.float32)
        return np.array([[170, self.hip_y - 110, 230, self.hip_y + 90, 0.9]], np.float32)

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        kp = np.zeros((len(boxes), 17, 3), np.float32)
        kp[:, :, 2] = 0.9
        kp[:, :, 0], kp[:, :, 1] = 200, self.hip_y
        lying = self.hip_y >= self.down_at
        for side in ("left", "right"):
            sh = kp[:, KP[f"{side}_shoulder"]]
            sh[:, 0], sh[:, 1] = (140, self.hip_y) if lying else (200, self.hip_y - 60)
        return kp


FRAME = np.zeros((480, 640, 3), np.uint8)


def test_load_rule_reads_the_shipped_thresholds_and_names_a_bad_file(tmp_path):
    rule = load_rule()
    assert 0 < rule.hip_drop < 1 and rule.hold_s > 0
    (tmp_path / "rule.json").write_text('{"hip_drop": 0.2, "colour": 1}')
    with pytest.raises(ModelError, match="rule.json.*colour"):
        load_rule(tmp_path)
    with pytest.raises(ModelError, match="cannot read"):
        load_rule(tmp_path / "none")


def test_scripted_fall_starts_updates_and_ends_when_the_person_gets_up():
    people = ScriptedPeople()
    stage = FallStage(people, people, load_rule())
    script = [200.0] * 10 + [230.0, 275.0, 290.0] + [290.0] * 15 + [200.0] * 12
    changes = []
    for i, hip in enumerate(script):
        people.hip_y = hip
        t = i * 0.2
        assert stage.due(t)
        changes += stage.look(FRAME, t)
    kinds = [c.change for c in changes]
    assert kinds[0] == "start" and kinds[-1] == "end" and set(kinds[1:-1]) == {"update"}
    start = changes[0]
    assert 2.0 <= start.t <= 2.4 + load_rule().hold_s + 0.4  # down from ~2.2 s
    downs = [c.down_s for c in changes if c.change == "update"]
    assert downs == sorted(downs) and downs[-1] > 2.0  # "down for N s" grows
    assert changes[-1].t >= 28 * 0.2  # ends only after the person is up again


def _real_stage():
    return FallStage(PersonDetector(score_threshold=0.2), PoseEstimator(), load_rule())


def test_a_real_fall_raises_one_fall_within_seconds_and_keeps_it_open():
    # GMDCSA24 actor 1 falls backwards from standing; the authors mark the fall 0.3-5.0 s.
    changes = play_file(require(FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4"), _real_stage())
    starts = [c for c in changes if c.change == "start"]
    assert len(starts) == 1
    assert 0.3 <= starts[0].t <= 5.0 + 3.0
    assert any(c.change == "update" and c.down_s >= 2.0 for c in changes)


def test_lying_down_slowly_on_a_sofa_raises_nothing():
    clip = FALLS_DATA / "assist-iot" / "adl" / "11_sitting_laying_down_slowly.mp4"
    assert play_file(require(clip), _real_stage()) == []
