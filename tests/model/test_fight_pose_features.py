"""The fight's pose window features on hand-built keypoint sequences: a strike and people
walking side by side stand equally close, and must differ in what their limbs do."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from har_daemon.model.fight_pose_features import (
    FAR,
    FEATURE_NAMES,
    MAX_STEP_S,
    NEAR,
    PAIR_NEAR,
    Pose,
    near_pairs,
    reliable_people,
    torso_deg,
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
    assert s["pair_distance_mean"] == pytest.approx(0.6, abs=0.01)


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
    quiet = {n: FAR if n.startswith("pair_distance") else 0.0 for n in FEATURE_NAMES}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no mean of nothing
        assert feats([]) == quiet
    f = feats([strike()[0]])  # one person: no pair
    assert [f[n] for n in FEATURE_NAMES[11:]] == [FAR, FAR, 0, 0, 0, 0, 0]


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
    assert reliable_people(tracks, 200, 1.0) == 2  # exactly as tall and as seen as needed
    assert reliable_people([tracks[0][:1]], 60, 0.6) == 1  # one sample is enough
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reliable_people([[]], 0, 0) == 0
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


def still(cx: float, h: float = 200.0, n: int = 3, top: float = 50.0) -> list[Pose]:
    """A person standing still at `cx` for `n` samples."""
    return [pose(i * SPACING, body(cx, top, h), h) for i in range(n)]


def test_the_torso_angle_is_from_vertical_and_needs_shoulders_and_hips():
    h = 200.0
    kp = body(300, 50, h)
    assert torso_deg(pose(0, kp, h)) == 0.0  # upright
    lean = kp.copy()
    lean[[KP["left_shoulder"], KP["right_shoulder"]], 0] += 0.3 * h  # as far right as up
    assert torso_deg(pose(0, lean, h)) == pytest.approx(45.0)
    for part in (("left_hip", "right_hip"), ("left_shoulder", "right_shoulder")):
        unseen = kp.copy()
        unseen[[KP[n] for n in part], 2] = 0.1
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert math.isnan(torso_deg(pose(0, unseen, h)))


def turning(angles: list[float | None], h: float = 200.0) -> list[Pose]:
    """One person whose torso stands at each of `angles` (degrees from vertical) in turn;
    None: the shoulders unseen."""
    out = []
    for i, a in enumerate(angles):
        kp = body(300, 50, h)
        shoulders = [KP["left_shoulder"], KP["right_shoulder"]]
        if a is None:
            kp[shoulders, 2] = 0.1
        else:
            hips = kp[[KP["left_hip"], KP["right_hip"]], :2].mean(axis=0)
            rad = math.radians(a)
            kp[shoulders, :2] = hips + 0.3 * h * np.array([math.sin(rad), -math.cos(rad)])
        out.append(pose(i * SPACING, kp, h))
    return out


def test_torso_turns_take_the_short_way_round_and_skip_unseen_torsos():
    f = feats([turning([170.0, -170.0])])  # 20 degrees across the bottom, in 0.2 s
    assert f["torso_turn_max"] == pytest.approx(100.0, abs=0.01)
    assert f["torso_turn_mean"] == pytest.approx(100.0, abs=0.01)
    f = feats([turning([0.0, None, 10.0, 20.0])])  # only the last step has both ends
    assert f["torso_turn_max"] == pytest.approx(50.0, abs=0.01)
    assert f["torso_turn_mean"] == pytest.approx(50.0, abs=0.01)


def test_the_same_window_later_in_the_stream_gives_the_same_features():
    for tracks in (strike(), walk_together()):
        later = [[Pose(p.t + 1000.0, p.keypoints, p.height_px, p.box) for p in s] for s in tracks]
        np.testing.assert_allclose(
            window_features(later), window_features(tracks), rtol=1e-4, atol=1e-4
        )


def _retimed(tracks: list[list[Pose]], times: list[float]) -> list[list[Pose]]:
    return [
        [Pose(t, p.keypoints, p.height_px, p.box) for t, p in zip(times, s, strict=True)]
        for s in tracks
    ]


def test_a_step_of_max_step_s_gives_a_speed_and_a_longer_gap_skips_only_itself():
    two = [s[:2] for s in strike()]
    quick, slow = feats(_retimed(two, [0.0, 0.2])), feats(_retimed(two, [0.0, MAX_STEP_S]))
    for name in ("wrist_speed_max", "body_speed_max", "pair_relative_speed"):
        assert quick[name] > 0 and slow[name] == pytest.approx(quick[name] / 3, rel=1e-5)
    gapped, whole = feats([[s[0], *s[4:]] for s in strike()]), feats(strike())
    for name in ("wrist_speed_max", "body_speed_max", "limb_near_speed_max", "pair_closing_max"):
        assert whole[name] > 0 and gapped[name] == pytest.approx(whole[name])


def test_a_repeated_sample_adds_no_speed():
    twice = [[*s[:3], s[2], *s[3:]] for s in strike()]
    f, once = feats(twice), feats(strike())
    for name in ("wrist_speed_max", "body_speed_max", "pair_closing_max", "limb_near_speed_max"):
        assert f[name] == pytest.approx(once[name])


def test_a_limb_seen_at_one_sample_only_has_no_speed():
    h = 200.0
    a, b = body(300, 50, h), body(300, 50, h)
    b[[KP["left_wrist"], KP["right_wrist"]]] = (0.0, 0.0, 0.1)  # unseen, placed anywhere
    f = feats([[pose(0.0, a, h), pose(0.2, b, h)]])
    assert f["wrist_speed_max"] == 0 and f["coverage_min"] < 1


def test_a_person_whose_torso_is_unseen_is_placed_at_their_box_centre():
    h, torso = 200.0, [KP[n] for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip")]
    tracks = []
    for cx, top in ((300.0, 50.0), (300.0 + 0.6 * h, 50.0 + 0.2 * h)):  # B: right and lower
        kp = body(cx, top, h)
        kp[torso, 2] = 0.1
        tracks.append([pose(i * SPACING, kp, h) for i in range(3)])
    assert feats(tracks)["pair_distance_min"] == pytest.approx(math.hypot(0.6, 0.2), rel=1e-5)


def test_a_kick_at_the_others_shin_is_near_them_and_counts_after_the_kick():
    """A kicks B's shin (near B's ankle, not B's torso) once, then stands still; B is one body
    height away, out of reach otherwise. A's wrist moves too, away from B."""
    h, a = 200.0, []
    for i in range(5):
        kp = body(300, 50, h)
        if i == 1:
            kp = body(300, 50, h, wrist=(-0.3, 0.0))
            kp[KP["right_ankle"], 0] = 300 + 0.85 * h
        a.append(pose(i * SPACING, kp, h))
    f = feats([a, still(300 + h, n=5)])
    assert f["ankle_speed_max"] == pytest.approx(0.75 / SPACING, rel=1e-4)
    assert f["wrist_speed_max"] > 3 and f["limb_near_speed_max"] == f["ankle_speed_max"]
    # B entirely unseen: near B's box centre instead (the kick ends 0.5 heights from it)
    hidden = [pose(p.t, body(300 + h, 50, h, score=0.1), h) for p in a]
    assert feats([a, hidden])["limb_near_speed_max"] == f["ankle_speed_max"]


def test_a_limb_exactly_near_heights_from_the_others_nearest_keypoint_is_near():
    # Standing still NEAR apart: each side's outer limbs are exactly NEAR from the other's.
    f = feats([still(300.0), still(300.0 + NEAR * 200.0)])
    assert f["limb_near_share"] == 1.0 and f["limb_near_speed_max"] == 0.0


def test_people_exactly_one_height_apart_are_close_and_pair_near_is_inclusive():
    a = still(300.0)
    assert feats([a, still(500.0)])["pairs_close"] == 1
    assert feats([a, still(600.0)])["pairs_close"] == 0
    assert len(near_pairs([a, still(300.0 + PAIR_NEAR * 200.0)])) == 1
    assert near_pairs([a, still(302.0 + PAIR_NEAR * 200.0)]) == []


def test_the_pair_features_are_the_closest_pairs():
    a, b = strike()
    far = [pose(p.t, body(900.0, 50, 200.0), 200.0) for p in a]  # 2.4 heights right of B
    pair = slice(
        FEATURE_NAMES.index("pair_distance_min"), FEATURE_NAMES.index("pair_relative_speed") + 1
    )
    np.testing.assert_allclose(window_features([far, a, b])[pair], window_features([a, b])[pair])


def test_people_are_counted_per_moment_and_clocks_a_fraction_of_a_millisecond_apart_agree():
    a, b = ([Pose(p.t + off, p.keypoints, p.height_px, p.box) for p in s] for s, off in
            zip(strike(), (0.0002, -0.0001), strict=True))  # fmt: skip
    f = feats([a, b[10:]])  # B only in the last third; their clocks 0.3 ms apart
    assert f["people_max"] == 2 and f["people_mean"] == pytest.approx((10 * 1 + 5 * 2) / 15)
    assert f["pair_distance_min"] == pytest.approx(feats(strike())["pair_distance_min"])
