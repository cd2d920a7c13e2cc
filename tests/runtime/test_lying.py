"""runtime.lying: when the turned second look fires (a fast way down within `look_s`, then lost
or poorly seen; its edges), how its find continues the person's track, and the look itself
with the real MoveNet on a real person turned to lie across the picture."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from har_daemon.model import rotated
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import KP, PoseEstimator
from har_daemon.model.pose_features import Features
from har_daemon.runtime.falls import DETECT_SCORE
from har_daemon.runtime.lying import (
    DOWN_DROP,
    DOWN_SPEED,
    LOOK_MIN_PX,
    POOR_COVERAGE,
    LookStats,
    RotatedLook,
    advance,
    estimate_posable,
    should_look,
    went_down,
)
from har_daemon.runtime.poses import PoseTracks
from har_daemon.video.frames import TimedFrames
from tests.shared_data import FALLS_DATA, require


def f(t, drop=0.0, top=0.0, at_edge=False, px=200.0):
    return Features(t=t, torso_deg=10.0, hip_drop=drop, hip_speed=0.0, coverage=0.9,
                    aspect=0.4, height_ratio=0.9, height_px=px, at_edge=at_edge,
                    top_drop=top)  # fmt: skip


# hips DOWN_SPEED x 0.2 s lower in 0.2 s: exactly DOWN_SPEED, and that is DOWN_DROP
DROP = DOWN_SPEED * 0.2
DOWN = [f(0.0), f(0.2), f(0.4, drop=DROP)]


def test_went_down_fires_at_down_speed_and_not_below():
    assert pytest.approx(DOWN_DROP) == DROP  # the edge case below is both edges at once
    assert went_down(DOWN, 0.4, 1.6)
    assert not went_down([f(0.0), f(0.2), f(0.4, drop=0.98 * DROP)], 0.4, 1.6)
    assert went_down([f(0.0), f(0.2), f(0.4, top=DROP)], 0.4, 1.6)  # the box top alone
    # a box cut by the frame's edge says nothing about its top
    assert not went_down([f(0.0), f(0.2), f(0.4, top=0.3, at_edge=True)], 0.4, 1.6)
    assert not went_down([f(0.0), f(0.2, drop=-0.1), f(0.4, drop=-0.2)], 0.4, 1.6)  # rising
    # fast, but not below standing: a jitter
    assert not went_down([f(0.0), f(0.2, drop=-DROP), f(0.4, drop=0.0)], 0.4, 1.6)
    assert went_down([f(0.0), f(0.2), f(0.4, drop=DROP, px=LOOK_MIN_PX)], 0.4, 1.6)
    assert not went_down([f(0.0), f(0.2), f(0.4, drop=DROP, px=LOOK_MIN_PX - 1)], 0.4, 1.6)


def test_should_look_only_within_look_s_and_when_lost_or_poorly_seen():
    assert should_look(DOWN, 2.0, None, 1.6)  # lost 1.6 s after going down: the edge
    assert not should_look(DOWN, 2.2, None, 1.6)  # 1.8 s after
    assert not should_look(DOWN, 0.6, None, 0.0)  # off
    assert should_look(DOWN, 0.6, POOR_COVERAGE - 0.06, 1.6)  # 10 of 17 seen
    assert not should_look(DOWN, 0.6, POOR_COVERAGE, 1.6)  # well seen: no look
    assert not should_look([f(0.0), f(0.2), f(0.4)], 0.6, None, 1.6)  # walked out of view
    assert not should_look([], 0.6, None, 1.6)


def _keypoints(hip_y, coverage=1.0, x=200.0):
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0], kp[:, 1] = x, hip_y
    kp[: round(17 * coverage), 2] = 0.9
    for side in ("left", "right"):
        kp[KP[f"{side}_shoulder"], 1] = hip_y - 60
    return kp


class Looker:
    """Records what it is asked and answers with a lying person (or nobody)."""

    def __init__(self, found=True, coverage=1.0):
        self.asked: list[tuple[int, tuple]] = []
        self.found, self.coverage = found, coverage

    def __call__(self, track_id, box):
        self.asked.append((track_id, tuple(round(float(v)) for v in box)))
        if not self.found:
            return None
        kp = _keypoints(300, self.coverage)
        kp[KP["left_shoulder"], :2] = kp[KP["right_shoulder"], :2] = (140, 300)
        return np.array([120, 280, 300, 320, 0.5], np.float32), kp


def _walk_then_fall(tracks, looker, look_s=1.6):
    """A person standing at hips 200, then 0.3 standing heights lower (a fall) in 0.2 s."""
    out = []
    for i, hip in enumerate([200.0] * 5 + [260.0]):
        box = np.array([[170, hip - 110, 230, hip + 90, 0.9]], np.float32)
        out.append(advance(tracks, i * 0.2, box, [_keypoints(hip)], (480, 640), look_s, looker))
    return out


def test_a_person_lost_right_after_going_down_is_found_again_on_the_same_track():
    tracks, looker = PoseTracks(), Looker()
    _walk_then_fall(tracks, looker)
    assert looker.asked == []  # seen well all along: no second look
    track = tracks.tracks[0]
    seen = advance(tracks, 1.2, np.zeros((0, 5)), [], (480, 640), 1.6, looker)
    assert looker.asked == [(track.id, (170, 150, 230, 350))]  # around the last box
    assert [tr.id for tr in seen] == [track.id] and track.missed == 0
    assert track.ring[-1].torso_deg == pytest.approx(90.0)  # the turned look's lying keypoints
    assert track.box == (120.0, 280.0, 300.0, 320.0)


def test_no_second_look_when_off_or_for_a_person_who_walked_away():
    tracks, looker = PoseTracks(), Looker()
    _walk_then_fall(tracks, looker, look_s=0.0)
    assert advance(tracks, 1.2, np.zeros((0, 5)), [], (480, 640), 0.0, looker) == []
    walker, looker = PoseTracks(), Looker()
    for i in range(6):
        box = np.array([[170, 90, 230, 290, 0.9]], np.float32)
        advance(walker, i * 0.2, box, [_keypoints(200)], (480, 640), 1.6, looker)
    assert advance(walker, 1.2, np.zeros((0, 5)), [], (480, 640), 1.6, looker) == []
    assert looker.asked == [] and walker.tracks[0].missed == 1


def test_a_second_look_that_sees_too_little_is_not_taken():
    tracks, looker = PoseTracks(), Looker(coverage=0.4)
    _walk_then_fall(tracks, looker)
    assert advance(tracks, 1.2, np.zeros((0, 5)), [], (480, 640), 1.6, looker) == []
    assert len(looker.asked) == 1 and tracks.tracks[0].missed == 1


def test_a_poorly_seen_person_takes_the_look_keypoints_only_when_more_are_seen():
    tracks, looker = PoseTracks(), Looker(coverage=0.8)
    _walk_then_fall(tracks, looker)
    box = np.array([[150, 250, 290, 330, 0.4]], np.float32)
    advance(tracks, 1.2, box, [_keypoints(290, coverage=0.5)], (480, 640), 1.6, looker)
    track = tracks.tracks[0]
    assert looker.asked == [(track.id, (150, 250, 290, 330))]  # around the box seen now
    assert track.ring[-1].coverage == pytest.approx(round(17 * 0.8) / 17)
    assert track.box == (150.0, 250.0, 290.0, 330.0)  # the detector's box kept
    looker.coverage = 0.4
    advance(tracks, 1.4, box, [_keypoints(290, coverage=0.5)], (480, 640), 1.6, looker)
    assert track.ring[-1].coverage == pytest.approx(round(17 * 0.5) / 17)


@pytest.mark.parametrize(("mode", "calls"), [("pose", 2), ("detect", 4)])
def test_the_turned_look_sees_a_real_person_lying_across_the_picture(mode, calls):
    # GMDCSA24 actor 1 standing at 0.4 s; the frame turned a quarter turn: now they lie.
    path = require(FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4")
    frame = next(fr for t, fr in TimedFrames(path) if t >= 0.0)
    pose = PoseEstimator()
    h, w = frame.shape[:2]
    standing_kp = pose.estimate(frame, np.array([[0, 0, w, h, 1.0]], np.float32))[0]
    seen = standing_kp[standing_kp[:, 2] >= 0.3]
    assert len(seen) >= 10  # the person is there, standing
    lying = cv2.rotate(frame, cv2.ROTATE_90_COUNTERCLOCKWISE)
    box_pts = rotated.to_turned(
        np.array([seen[:, :2].min(0), seen[:, :2].max(0)]), (0, 0, w, h), False
    )
    box = (*box_pts.min(0), *box_pts.max(0))
    again = RotatedLook(PersonDetector(score_threshold=DETECT_SCORE), pose, mode)
    found = again.look(lying, box)
    assert found is not None and again.stats.looks == 1 and again.stats.calls == calls
    _, kp = found
    assert np.mean(kp[:, 2] >= 0.3) >= 0.5
    sh = kp[[KP["left_shoulder"], KP["right_shoulder"]], :2].mean(0)
    hip = kp[[KP["left_hip"], KP["right_hip"]], :2].mean(0)
    assert abs(sh[0] - hip[0]) > 2 * abs(sh[1] - hip[1])  # the torso lies across the picture


class RecordingPose:
    """Records the boxes it is called with; every keypoint at the box's centre, seen."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []
        self.frames: list[np.ndarray] = []

    def estimate(self, frame_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.calls.append(np.asarray(boxes).copy())
        self.frames.append(frame_bgr)
        kp = np.zeros((len(boxes), 17, 3), np.float32)
        kp[:, :, 0] = ((boxes[:, 0] + boxes[:, 2]) / 2)[:, None]
        kp[:, :, 1] = ((boxes[:, 1] + boxes[:, 3]) / 2)[:, None]
        kp[:, :, 2] = 0.9
        return kp


def test_estimate_posable_calls_the_pose_model_on_the_big_boxes_only_in_order():
    pose = RecordingPose()
    boxes = np.array(
        [[0, 0, 30, 50, 0.5], [100, 0, 160, 200, 0.9], [0, 300, 100, 340, 0.8]], np.float32
    )
    kps, big = estimate_posable(pose, np.zeros((480, 640, 3), np.uint8), boxes, 64.0)
    assert big.tolist() == [False, True, True]
    assert len(pose.calls) == 1 and pose.calls[0][:, :4].tolist() == boxes[1:, :4].tolist()
    assert kps.shape == (3, 17, 3)
    assert not kps[0].any()  # too small: nothing seen, no call
    assert kps[1, 0, :2].tolist() == [130.0, 100.0] and kps[2, 0, :2].tolist() == [50.0, 320.0]
    none, big = estimate_posable(pose, np.zeros((480, 640, 3), np.uint8), boxes[:1], 64.0)
    assert len(pose.calls) == 1 and none.shape == (1, 17, 3) and not none.any()
    assert big.tolist() == [False]
    frame = np.ones((480, 640, 3), np.uint8)
    every, big = estimate_posable(pose, frame, boxes, 30.0)  # every box is 30 px or more
    assert big.all() and pose.calls[-1][:, :4].tolist() == boxes[:, :4].tolist()
    assert pose.frames[-1] is frame and every[0, 0, :2].tolist() == [15.0, 25.0]


def test_went_down_needs_the_drop_between_the_two_samples_not_the_drop_so_far():
    # sitting low and still: far below standing, but not going anywhere
    assert not went_down([f(0.0, drop=0.1), f(0.2, drop=0.15)], 0.2, 1.6)
    assert not went_down([f(0.0, top=0.1), f(0.2, top=0.15)], 0.2, 1.6)
    assert not went_down([f(0.0), f(0.2), f(0.2, drop=0.3)], 0.2, 1.6)  # two at the same time


def test_look_s_zero_is_off_even_at_the_way_down_and_under_a_second_works():
    assert not should_look(DOWN, 0.4, None, 0.0)
    assert should_look(DOWN, 0.6, None, 0.5)
    tracks, looker = PoseTracks(), Looker()
    _walk_then_fall(tracks, looker, look_s=0.8)
    advance(tracks, 1.2, np.zeros((0, 5)), [], (480, 640), 0.8, looker)
    assert len(looker.asked) == 1 and tracks.tracks[0].missed == 0


def test_a_person_seen_well_right_after_going_down_gets_no_second_look():
    tracks, looker = PoseTracks(), Looker()
    _walk_then_fall(tracks, looker)
    box = np.array([[170, 150, 230, 350, 0.9]], np.float32)
    advance(tracks, 1.2, box, [_keypoints(260)], (480, 640), 1.6, looker)
    assert looker.asked == []


class LookerFor(Looker):
    """Finds a lying person around the tracks in `finds` only, at `box`."""

    def __init__(self, finds: set[int], box=(120, 280, 300, 320)):
        super().__init__()
        self.finds, self.box = finds, np.array([*box, 0.5], np.float32)

    def __call__(self, track_id, box):
        found = super().__call__(track_id, box)
        return (self.box, found[1]) if found is not None and track_id in self.finds else None


def _two_people(tracks, looker, falls=(True, True)):
    """Two people at x 200 and 400; each falls at t 1.0 when `falls` says so."""
    for i in range(6):
        hips = [260.0 if fell and i == 5 else 200.0 for fell in falls]
        boxes = np.array([[170 + 200 * k, h - 110, 230 + 200 * k, h + 90, 0.9]
                          for k, h in enumerate(hips)], np.float32)  # fmt: skip
        kps = [_keypoints(h, x=200.0 + 200 * k) for k, h in enumerate(hips)]
        advance(tracks, i * 0.2, boxes, kps, (480, 640), 1.6, looker)
    return tracks.tracks


def test_every_track_that_needs_a_second_look_gets_one():
    tracks = PoseTracks()
    fell = _two_people(tracks, Looker(), falls=(False, True))[1]
    looker = LookerFor({fell.id})
    box, kp = np.array([[170, 90, 230, 290, 0.9]], np.float32), _keypoints(200.0)
    advance(tracks, 1.2, box, [kp], (480, 640), 1.6, looker)  # the first stands, seen well
    assert [a[0] for a in looker.asked] == [fell.id] and fell.missed == 0
    tracks = PoseTracks()
    first, second = _two_people(tracks, Looker())
    looker = LookerFor({second.id}, box=(300, 280, 480, 320))
    advance(tracks, 1.2, np.zeros((0, 5)), [], (480, 640), 1.6, looker)
    assert [a[0] for a in looker.asked] == [first.id, second.id]  # nobody around the first
    assert (first.missed, second.missed) == (1, 0)


def test_a_person_found_off_their_last_box_continues_their_track():
    tracks = PoseTracks()
    _walk_then_fall(tracks, Looker())
    track = tracks.tracks[0]
    looker = LookerFor({track.id}, box=(300, 300, 420, 340))  # neither centre in the other
    seen = advance(tracks, 1.2, np.zeros((0, 5)), [], (480, 640), 1.6, looker)
    assert [tr.id for tr in seen] == [track.id] and len(tracks.tracks) == 1


def test_a_second_look_seeing_as_many_keypoints_leaves_the_detectors():
    tracks, looker = PoseTracks(), Looker(coverage=0.5)
    _walk_then_fall(tracks, looker)
    mine = _keypoints(290, coverage=0.5)
    box = np.array([[150, 250, 290, 330, 0.4]], np.float32)
    advance(tracks, 1.2, box, [mine], (480, 640), 1.6, looker)
    assert len(looker.asked) == 1
    np.testing.assert_array_equal(tracks.tracks[0].poses[-1].keypoints, mine)


def test_advance_marks_a_box_at_the_frames_edge():
    box = np.array([[0, 90, 60, 290, 0.9]], np.float32)
    (track,) = advance(PoseTracks(), 0.0, box, [_keypoints(200)], (480, 640), 1.6, Looker())
    assert track.ring[-1].at_edge


FRAME = (np.arange(480 * 640 * 3) % 251).astype(np.uint8).reshape(480, 640, 3)
NEAR_LEFT = (20.0, 100.0, 80.0, 300.0)  # its look region: (0, 25, 225, 375), not square
REGION = rotated.look_region(NEAR_LEFT, (480, 640))


def _turned_kp(n_seen: int, score: float = 0.9) -> np.ndarray:
    """Keypoints in a turned image (350 wide, 225 high): the first `n_seen` seen."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, 0], kp[:, 1] = np.linspace(20, 330, 17), np.linspace(30, 200, 17)
    kp[:n_seen, 2], kp[n_seen:, 2] = score, 0.1
    return kp


class Scripted:
    """A detector and a pose model answering from lists, recording what they were shown."""

    def __init__(self, boxes: list[list[list[float]]], poses: list[np.ndarray]) -> None:
        self.boxes, self.poses = list(boxes), list(poses)
        self.detected: list[np.ndarray] = []
        self.posed: list[tuple[np.ndarray, np.ndarray]] = []

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.detected.append(frame)
        return np.asarray(self.boxes.pop(0), np.float32).reshape(-1, 5)

    def estimate(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        self.posed.append((frame, np.asarray(boxes).copy()))
        return self.poses.pop(0)[None]


def _look(models: Scripted, mode: str = "detect", box=NEAR_LEFT):
    again = RotatedLook(models, models, mode)
    return again.look(FRAME, box), again.stats


def test_the_turned_look_shows_the_detector_both_turns_and_poses_its_best_box():
    models = Scripted(
        [[[10, 20, 100, 60, 0.5], [30, 40, 200, 120, 0.8]], [[5, 5, 50, 50, 0.9]]],
        [_turned_kp(12), _turned_kp(9)],
    )
    (box, kp), stats = _look(models)
    turns = [rotated.turn_crop(FRAME, REGION, clockwise) for clockwise in (True, False)]
    assert turns[0].shape == (225, 350, 3)
    for shown, turn in zip(models.detected, turns, strict=True):
        np.testing.assert_array_equal(shown, turn)
    np.testing.assert_array_equal(models.posed[0][0], turns[0])
    assert models.posed[0][1].tolist() == [[30, 40, 200, 120, pytest.approx(0.8)]]
    # the clockwise turn saw more keypoints: its box and keypoints, back in the frame
    np.testing.assert_allclose(
        box, rotated.box_to_frame(np.float32([30, 40, 200, 120, 0.8]), REGION, True)
    )
    np.testing.assert_allclose(kp, rotated.to_frame(_turned_kp(12), REGION, True))
    assert stats == LookStats(looks=1, calls=4)


@pytest.mark.parametrize(
    ("clockwise", "anticlockwise", "winner"),
    [
        (_turned_kp(9), _turned_kp(12), False),  # more keypoints seen
        (_turned_kp(12, 0.5), _turned_kp(12, 0.9), False),  # as many: the higher mean score
        (_turned_kp(12), _turned_kp(12), True),  # a tie: the first turn
    ],
)
def test_the_better_turn_wins(clockwise, anticlockwise, winner):
    boxes = [[[0, 0, 350, 225, 0.9]]] * 2
    (_, kp), _ = _look(Scripted(boxes, [clockwise, anticlockwise]))
    expected = clockwise if winner else anticlockwise
    np.testing.assert_allclose(kp, rotated.to_frame(expected, REGION, winner))


def test_a_turn_where_the_detector_finds_nobody_costs_no_pose_call():
    (box, kp), stats = _look(Scripted([[], [[0, 0, 350, 225, 0.9]]], [_turned_kp(5)]))
    assert stats == LookStats(looks=1, calls=3)
    np.testing.assert_allclose(
        box, rotated.box_to_frame(np.float32([0, 0, 350, 225, 0.9]), REGION, False)
    )
    np.testing.assert_allclose(kp, rotated.to_frame(_turned_kp(5), REGION, False))
    assert _look(Scripted([[], []], [])) == (None, LookStats(looks=1, calls=2))


def test_the_pose_mode_poses_each_whole_turn_and_boxes_its_keypoints():
    models = Scripted([], [_turned_kp(1), _turned_kp(6)])
    (box, kp), stats = _look(models, "pose")
    assert models.detected == [] and stats == LookStats(looks=1, calls=2)
    assert [b.tolist() for _, b in models.posed] == [[[0, 0, 350, 225, 1.0]]] * 2
    np.testing.assert_allclose(kp, rotated.to_frame(_turned_kp(6), REGION, False))
    np.testing.assert_allclose(box, rotated.keypoint_box(kp))  # one keypoint seen clockwise: no box
    assert _look(Scripted([], [_turned_kp(1)] * 2), "pose")[0] is None


def test_no_look_at_a_box_outside_the_frame():
    models = Scripted([], [])
    assert _look(models, box=(700.0, 10.0, 760.0, 50.0)) == (None, LookStats())
    assert models.detected == [] and models.posed == []


def test_a_look_near_the_frames_bottom_maps_back_through_the_clipped_region():
    near_bottom = (300.0, 380.0, 360.0, 470.0)  # its region reaches past the bottom: clipped
    region = rotated.look_region(near_bottom, (480, 640))
    assert region[3] == 480
    models = Scripted([[[0, 0, 50, 40, 0.9]], [], [], []], [_turned_kp(12)])
    again = RotatedLook(models, models)
    _, kp = again.look(FRAME, near_bottom)
    np.testing.assert_allclose(kp, rotated.to_frame(_turned_kp(12), region, True))
    again.look(FRAME, near_bottom)  # nobody this time: a look all the same
    assert again.stats == LookStats(looks=2, calls=5)
