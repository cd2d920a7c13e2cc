"""The fight's pose window features on hand-built keypoint sequences: a strike and people
walking side by side stand equally close, and must differ in what their limbs do."""

from __future__ import annotations

import math

import numpy as np
import pytest

from har_daemon.model.fight_pose_features import (
    FAR,
    FEATURE_NAMES,
    PAIR_NEAR,
    Pose,
    near_pairs,
    reliable_people,
    window_features,
)
from har_daemon.model.pose import KP

SPACING = 0.2
STEPS = 15


def body(cx: float, top: float, h: float, wrist=(0.15, 0.45), score: float = 0.9) -> np.ndarray:
    """(17, 3) keypoints of a person standing `h` px tall with the head top at `top`; `wrist`
    is the right wrist's offset from the torso centre, in body heights."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = score
    y = {"nose": 0.06, "left_eye": 0.05, "right_eye": 0.05, "left_ear": 0.06, "right_ear": 0.06,
         "left_shoulder": 0.18, "right_shoulder": 0.18, "left_elbow": 0.33, "right_elbow": 0.33,
         "left_wrist": 0.45, "right_wrist": 0.45, "left_hip": 0.48, "right_hip": 0.48,
         "left_knee": 0.72, "right_knee": 0.72, "left_ankle": 0.97, "right_ankle": 0.97,
    }  # fmt: skip
    for name, fy in y.items():
        side = -1 if name.startswith("left") else 1 if name.startswith("right") else 0
        kp[KP[name], 0] = cx + side * 0.1 * h
        kp[KP[name], 1] = top + fy * h
    centre_y = top + 0.33 * h
    kp[KP["right_wrist"], 0] = cx + wrist[0] * h
    kp[KP["right_wrist"], 1] = centre_y + wrist[1] * h - 0.15 * h
    return kp


def pose(t: float, kp: np.ndarray, h: float) -> Pose:
    x1, y1 = float(kp[:, 0].min()), float(kp[:, 1].min()) - 0.05 * h
    return Pose(t, kp, h, (x1, y1, float(kp[:, 0].max()), y1 + h))


def strike(h: float = 200.0, x0: float = 300.0) -> list[list[Pose]]:
    """A stands still and punches B, 0.6 body heights to their right, every other sample."""
    a, b = [], []
    for i in range(STEPS):
        t = i * SPACING
        reach = (0.6, 0.05) if i % 2 else (0.1, 0.3)  # fist at B's chest, then back
        a.append(pose(t, body(x0, 50, h, reach), h))
        b.append(pose(t, body(x0 + 0.6 * h, 50 + 0.02 * h * (i % 2), h), h))
    return [a, b]


def walk_together(h: float = 200.0, x0: float = 300.0) -> list[list[Pose]]:
    """A and B walk side by side, 0.6 body heights apart, at 1 body height a second, arms
    swinging gently."""
    a, b = [], []
    for i in range(STEPS):
        t = i * SPACING
        dx = 1.0 * h * t
        swing = (0.15 + 0.05 * math.sin(i), 0.3)
        a.append(pose(t, body(x0 + dx, 50, h, swing), h))
        b.append(pose(t, body(x0 + 0.6 * h + dx, 50, h, swing), h))
    return [a, b]


def feats(tracks) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, window_features(tracks).tolist(), strict=True))


def test_a_strike_and_walking_together_are_equally_close_but_differ_in_limbs():
    s, w = feats(strike()), feats(walk_together())
    assert s["pair_distance_min"] == pytest.approx(w["pair_distance_min"], abs=0.05)
    assert s["pair_distance_min"] < 1.0 and s["pairs_close"] == w["pairs_close"] == 1
    assert s["wrist_speed_max"] > 4 * w["wrist_speed_max"]
    assert s["limb_near_speed_max"] > 4 * w["limb_near_speed_max"]
    assert w["body_speed_max"] == pytest.approx(1.0, abs=0.05)  # the walk, in heights per s
    assert s["body_speed_max"] < 0.2
    assert w["pair_relative_speed"] == pytest.approx(0.0, abs=1e-3)  # moving as one


def test_walking_is_not_a_fast_limb_because_the_limb_moves_with_the_body():
    w = feats(walk_together())
    assert w["wrist_speed_max"] < 0.5  # the gentle swing only, not the 1 height/s walk


def test_the_same_strike_at_a_quarter_of_the_size_gives_the_same_features():
    near, far = window_features(strike(200.0)), window_features(strike(50.0, x0=80.0))
    np.testing.assert_allclose(near, far, rtol=1e-3, atol=1e-3)


def test_people_approaching_close_in():
    h, a, b = 200.0, [], []
    for i in range(STEPS):
        t = i * SPACING
        a.append(pose(t, body(100 + 0.5 * h * t, 50, h), h))
        b.append(pose(t, body(1100 - 0.5 * h * t, 50, h), h))
    f = feats([a, b])
    assert f["pair_closing_max"] == pytest.approx(1.0, abs=0.01)
    assert f["pair_relative_speed"] == pytest.approx(1.0, abs=0.01)
    assert f["pairs_close"] == 0


def test_one_person_has_no_pair_and_counts_one():
    f = feats([strike()[0]])
    assert f["people_max"] == 1 and f["pair_distance_min"] == FAR
    assert f["limb_near_speed_max"] == 0 and f["wrist_speed_max"] > 1.0


def test_an_empty_window_is_all_quiet():
    f = feats([])
    assert f["people_max"] == 0 and f["pair_distance_min"] == FAR and f["wrist_speed_max"] == 0


def test_unseen_limbs_give_no_speed_and_low_coverage():
    a = [pose(p.t, body(300, 50, 200, score=0.1), 200) for p in strike()[0]]
    f = feats([a])
    assert f["wrist_speed_max"] == 0 and f["coverage_mean"] == 0


def test_a_long_gap_gives_no_speed():
    a = strike()[0]
    gapped = [a[0], Pose(a[1].t + 5.0, a[1].keypoints, 200, a[1].box)]
    assert feats([gapped])["wrist_speed_max"] == 0


def test_reliable_people_need_height_and_coverage():
    tracks = strike()
    assert reliable_people(tracks, 60, 0.6) == 2
    assert reliable_people(tracks, 250, 0.6) == 0
    dim = [pose(p.t, body(300, 50, 200, score=0.1), 200) for p in tracks[0]]
    assert reliable_people([dim, tracks[1]], 60, 0.6) == 1


def test_near_pairs_are_the_people_who_come_within_reach():
    a, b = strike()
    h = 200.0
    far = [pose(p.t, body(300 + (PAIR_NEAR + 1) * h, 50, h), h) for p in a]
    pairs = near_pairs([a, b, far])
    assert [(x is a, y is b) for x, y in pairs] == [(True, True)]
    assert near_pairs([a]) == [] and near_pairs([]) == []
