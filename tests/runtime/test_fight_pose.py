"""runtime.fight_pose and model.fight_pose: pose speaks for a region only where it is reliable,
and the numpy model reads what the training script writes."""

from __future__ import annotations

import json
import re
import warnings
from collections import deque

import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.model.fight_pose import FightPoseModel, load
from har_daemon.model.fight_pose_features import FEATURE_NAMES, Pose, window_features
from har_daemon.runtime.fight_pose import FightPoseStage, combine, fused, window_tracks
from har_daemon.runtime.poses import PersonTrack
from tests.model.test_fight_pose_features import body, pose, strike, walk_together

WRIST = FEATURE_NAMES.index("wrist_speed_max")


def wrist_model() -> FightPoseModel:
    """P(fight) rises with the fastest wrist: 0.5 at 2 body heights a second."""
    n = len(FEATURE_NAMES)
    coef = np.zeros(n)
    coef[WRIST] = 3.0
    return FightPoseModel("logistic", 0.5, np.zeros(n), np.ones(n), coef, intercept=-6.0)


def stage(tracks: list[list[Pose]], rule="replace", **kw) -> FightPoseStage:
    st = FightPoseStage(wrist_model(), 0, kw.get("min_people", 2), kw.get("min_height", 80.0),
                        kw.get("min_coverage", 0.6), 0.35, rule)  # fmt: skip
    for i, seq in enumerate(tracks):
        tr = PersonTrack(i + 1, seq[-1].box)
        tr.poses.extend(seq)
        st.tracks.tracks.append(tr)
    return st


APPEARANCE = np.array([0.9, 0.1], np.float32)  # the appearance model is sure it is a fight
EVERYWHERE = (0.0, 0.0, 5000.0, 5000.0)


def test_reliable_people_walking_together_are_scored_by_pose():
    tracks = walk_together()
    st = stage(tracks)
    prob, sig = st.signal(EVERYWHERE, tracks[0][-1].t, APPEARANCE)
    assert sig.used == "pose" and sig.reliable_people == 2
    assert st.pose_windows == 1  # counted for stats: the windows pose scored
    assert sig.appearance == pytest.approx(0.9)
    assert sig.pose is not None and sig.pose < 0.1
    assert prob[0] == pytest.approx(sig.pose) and prob.sum() == pytest.approx(1.0)


def test_reliable_people_striking_are_scored_by_pose():
    tracks = strike()
    prob, sig = stage(tracks).signal(EVERYWHERE, tracks[0][-1].t, np.array([0.1, 0.9]))
    assert sig.used == "pose" and sig.pose is not None and sig.pose > 0.9
    assert prob[0] > 0.9


def test_people_too_small_leave_the_appearance_score():
    tracks = walk_together(h=50.0)
    st = stage(tracks)
    prob, sig = st.signal(EVERYWHERE, tracks[0][-1].t, APPEARANCE)
    assert sig.used == "appearance" and sig.reliable_people == 0 and sig.pose is None
    assert prob is APPEARANCE
    assert st.pose_windows == 0


def test_one_person_is_not_enough_for_pose():
    tracks = strike()[:1]
    _, sig = stage(tracks).signal(EVERYWHERE, tracks[0][-1].t, APPEARANCE)
    assert sig.used == "appearance" and sig.reliable_people == 1 and sig.pose is None


def test_reliable_people_far_apart_leave_the_appearance_score():
    h, a, b = 200.0, [], []
    for i in range(10):
        a.append(pose(i * 0.2, body(100, 50, h), h))
        b.append(pose(i * 0.2, body(100 + 3 * h, 50, h), h))  # 3 body heights apart
    _, sig = stage([a, b]).signal(EVERYWHERE, a[-1].t, APPEARANCE)
    assert sig.used == "appearance" and sig.reliable_people == 2 and sig.pose is None


def test_a_region_without_tracked_people_has_no_pose_score():
    tracks = strike()
    _, sig = stage(tracks).signal((0.0, 0.0, 10.0, 10.0), tracks[0][-1].t, APPEARANCE)
    assert sig == type(sig)("appearance", pytest.approx(0.9), None, 0)


def test_the_window_reads_only_the_last_seconds():
    tracks = strike()
    late = [[pose(p.t + 10.0, p.keypoints, 200.0) for p in seq] for seq in tracks]
    both = [a + b for a, b in zip(tracks, late, strict=True)]
    st = stage(both)
    window = window_tracks(st.tracks.tracks, late[0][-1].t)
    assert all(p.t >= 10.0 for seq in window for p in seq)
    np.testing.assert_allclose(window_features(window), window_features(late), atol=1e-5)


def test_fused_scores_keep_summing_to_one():
    out = fused(np.array([0.2, 0.5, 0.3]), 1, 0.9)
    np.testing.assert_allclose(out, [0.04, 0.9, 0.06], atol=1e-6)
    np.testing.assert_allclose(fused(np.array([1.0, 0.0]), 0, 0.3), [0.3, 0.7], atol=1e-6)


STUMP = {"left": [1, -1, -1], "right": [2, -1, -1], "feature": [2, -2, -2],
         "threshold": [1.5, -2.0, -2.0], "value": [0.0, -1.0, 3.0]}  # fmt: skip
"""A stump on feature 2: the left leaf (-1) when it is <= 1.5, else the right one (3)."""


def test_the_model_file_round_trips_both_kinds(tmp_path):
    n = len(FEATURE_NAMES)
    x = np.arange(n, dtype=np.float64)
    logistic = {
        "kind": "logistic",
        "threshold": 0.5,
        "features": list(FEATURE_NAMES),
        "mean": [1.0] * n,
        "scale": [2.0] * n,
        "coef": [0.1] * n,
        "intercept": -1.0,
    }
    (tmp_path / "model.json").write_text(json.dumps(logistic))
    z = float(((x - 1.0) / 2.0).sum() * 0.1 - 1.0)
    assert load(tmp_path).score(x) == pytest.approx(1 / (1 + np.exp(-z)))
    trees = {"kind": "trees", "threshold": 0.5, "features": list(FEATURE_NAMES), "init": 0.5,
             "learning_rate": 0.1, "trees": [STUMP, STUMP]}  # fmt: skip
    (tmp_path / "model.json").write_text(json.dumps(trees))
    model = load(tmp_path)
    assert (model.kind, model.threshold) == ("trees", 0.5)
    assert model.score(x) == pytest.approx(1 / (1 + np.exp(-(0.5 + 0.1 * 6.0))))  # x[2] = 2
    x[2] = 1.5  # at the threshold: left, as scikit-learn's trees go
    assert model.score(x) == pytest.approx(1 / (1 + np.exp(-(0.5 + 0.1 * -2.0))))
    (tmp_path / "model.json").write_text(json.dumps({**logistic, "threshold": 0.7}))
    assert (load(tmp_path).kind, load(tmp_path).threshold) == ("logistic", 0.7)


def test_a_log_odds_far_out_scores_0_or_1_without_overflow():
    n = len(FEATURE_NAMES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for intercept, want in ((-1000.0, 0.0), (1000.0, 1.0)):
            model = FightPoseModel("logistic", 0.5, np.zeros(n), np.ones(n), np.zeros(n), intercept)
            assert model.score(np.zeros(n)) == pytest.approx(want)


PAST = "tree refers past its arrays or the features"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"kind": "forest"}, "unknown kind 'forest'"),
        ({"kind": "logistic", "mean": [0.0], "scale": [1.0], "coef": [0.0], "intercept": 0.0},
         "mean, scale and coef need one number per feature"),
        ({"trees": [{**STUMP, "value": [0.0, 1.0]}]}, "tree arrays differ in length"),
        ({"trees": [{**STUMP, "left": [3, -1, -1]}]}, PAST),
        ({"trees": [{**STUMP, "right": [3, -1, -1]}]}, PAST),
        ({"trees": [{**STUMP, "feature": [len(FEATURE_NAMES), -2, -2]}]}, PAST),
    ],
)  # fmt: skip
def test_a_bad_model_file_says_what_is_wrong(tmp_path, change, reason):
    good = {"kind": "trees", "threshold": 0.5, "features": list(FEATURE_NAMES), "init": 0.0,
            "learning_rate": 0.1, "trees": [STUMP]}  # fmt: skip
    (tmp_path / "model.json").write_text(json.dumps(good))
    load(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({**good, **change}))
    with pytest.raises(ModelError, match=f"model.json: {re.escape(reason)}$"):
        load(tmp_path)


def test_a_model_for_other_features_is_refused(tmp_path):
    (tmp_path / "model.json").write_text(json.dumps({"kind": "trees", "features": ["x"]}))
    with pytest.raises(
        ModelError, match=r": its features are not model\.fight_pose_features\.FEATURE_NAMES$"
    ):
        load(tmp_path)
    with pytest.raises(ModelError, match="model.json"):
        load(tmp_path / "missing")


def test_the_rule_says_how_pose_and_appearance_make_the_score():
    assert combine("replace", 0.9, 0.2) == 0.2
    assert combine("mean", 0.9, 0.2) == pytest.approx(0.55)
    assert combine("min", 0.9, 0.2) == 0.2 and combine("min", 0.3, 0.8) == 0.3


def test_with_min_pose_vetoes_but_does_not_raise():
    calm, fight = walk_together(), strike()
    prob, sig = stage(calm, "min").signal(EVERYWHERE, calm[0][-1].t, APPEARANCE)
    assert sig.used == "pose" and prob[0] == pytest.approx(sig.pose) and prob[0] < 0.1
    quiet = np.array([0.1, 0.9])
    prob, sig = stage(fight, "min").signal(EVERYWHERE, fight[0][-1].t, quiet)
    assert sig.used == "pose" and sig.pose is not None and sig.pose > 0.9
    assert prob[0] == pytest.approx(0.1)


def test_max_takes_the_higher_score_and_fused_keeps_the_dtype():
    assert combine("max", 0.9, 0.2) == 0.9 and combine("max", 0.3, 0.8) == 0.8
    out = fused(np.array([0.2, 0.8], np.float32), 0, 0.6)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [0.6, 0.4], atol=1e-6)


class ScriptedPose:
    """Our PoseModel interface: a standing body in each box; logs the boxes it was given."""

    def __init__(self) -> None:
        self.given: list[np.ndarray] = []

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        assert frame is FRAME
        self.given.append(boxes)
        return [body((b[0] + b[2]) / 2, b[1], b[3] - b[1]) for b in boxes]


class FixedDetector:
    def __init__(self, boxes: list[list[float]]) -> None:
        self.boxes, self.calls = np.array(boxes, np.float32), 0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        assert frame is FRAME
        self.calls += 1
        return self.boxes


FRAME = np.zeros((100, 300, 3), np.uint8)


def own_stage(boxes: list[list[float]]) -> FightPoseStage:
    st = stage([])
    st.detector, st.pose = FixedDetector(boxes), ScriptedPose()
    return st


def test_a_stage_of_its_own_looks_every_spacing_and_again_after_a_reset():
    assert not stage([]).due(0.0)  # the fall stage's tracks: it never looks itself
    st = own_stage([])
    assert st.due(0.0)
    st.look(FRAME, 1.0)
    assert not st.due(1.0 + st.spacing_s - 0.01) and st.due(1.0 + st.spacing_s)
    st.reset()
    assert st.due(1.05)


def test_a_look_poses_the_detectors_people_above_min_score_in_the_frame():
    near_right, middle, faint = [200, 20, 297, 90, 0.35], [60, 20, 150, 90, 0.9], [0, 0, 9, 9, 0.3]
    st = own_stage([middle, near_right, faint])
    st.look(FRAME, 1.0)
    st.look(FRAME, 1.2)
    assert (st.looks, st.detector.calls) == (2, 2)  # type: ignore[union-attr]
    want = np.array([middle, near_right], np.float32)  # 0.35 kept: at min_score
    np.testing.assert_array_equal(st.pose.given[0], want)  # type: ignore[union-attr]
    a, b = st.tracks.tracks
    assert len(a.poses) == len(b.poses) == 2
    # The frame's own width (not its height) says who touches its right edge.
    assert (a.ring[-1].at_edge, b.ring[-1].at_edge) == (False, True)
    st.reset()
    assert st.tracks.tracks == []


def test_a_look_takes_the_person_stages_boxes_and_poses_no_one_when_there_is_none():
    st = own_stage([[60, 20, 150, 90, 0.9]])
    st.look(FRAME, 1.0, np.array([[60, 20, 150, 90, 0.4]], np.float32))
    assert st.detector.calls == 0 and len(st.tracks.tracks) == 1  # type: ignore[union-attr]
    st.look(FRAME, 1.2, np.zeros((0, 5), np.float32))
    assert len(st.pose.given) == 1  # type: ignore[union-attr]


def test_the_fall_stages_tracks_are_not_reset_here():
    tracks = strike()
    st = stage(tracks)
    st.reset()
    assert len(st.tracks.tracks) == 2


def test_the_window_holds_the_poses_of_the_last_window_s_edges_included():
    times = [0.2 * k for k in range(22)]
    track = PersonTrack(1, (0.0, 0.0, 1.0, 1.0))
    track.poses = deque(pose(t, body(300, 50, 200.0), 200.0) for t in times)  # type: ignore[assignment]
    (window,) = window_tracks([track], times[16])
    assert [p.t for p in window] == times[1:17]  # exactly WINDOW_S before in, later out


def test_fused_shares_an_empty_rest_evenly_among_the_other_classes():
    np.testing.assert_allclose(fused(np.array([1.0, 0.0, 0.0]), 0, 0.4), [0.4, 0.3, 0.3])


def test_too_few_reliable_people_leave_appearance_but_report_the_pose_score():
    tracks = strike()
    st = stage(tracks, min_people=3)
    prob, sig = st.signal(EVERYWHERE, tracks[0][-1].t, APPEARANCE)
    assert prob is APPEARANCE and sig.used == "appearance" and sig.reliable_people == 2
    assert sig.pose is not None and sig.pose > 0.9 and st.pose_windows == 0


def test_each_window_pose_scores_is_counted():
    tracks = strike()
    st = stage(tracks)
    for _ in range(3):
        st.signal(EVERYWHERE, tracks[0][-1].t, APPEARANCE)
    assert st.pose_windows == 3
