"""runtime.poses: people keep their track (and its feature ring) across samples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from har_daemon.model.pose import KP
from har_daemon.model.pose_features import HEIGHT_DECAY_PER_S, RING
from har_daemon.runtime.people import iou
from har_daemon.runtime.poses import (
    MATCH_IOU,
    MISSED_SAMPLES,
    PersonTrack,
    PoseTracks,
    box_centre,
    inside_box,
)


def _person(x, hip_y=160.0):
    kp = np.zeros((17, 3), np.float32)
    kp[:, 2] = 0.9
    kp[:, 0] = x
    for name in ("left_shoulder", "right_shoulder"):
        kp[KP[name], 1] = hip_y - 60
    for name in ("left_hip", "right_hip"):
        kp[KP[name], 1] = hip_y
    box = np.array([x - 30, hip_y - 110, x + 30, hip_y + 90, 0.9], np.float32)
    return box, kp


def _frame(*people):
    boxes = np.stack([b for b, _ in people]) if people else np.zeros((0, 5), np.float32)
    return boxes, [k for _, k in people]


def test_two_people_keep_their_tracks_and_rings():
    tracks = PoseTracks()
    for step in range(RING + 5):
        a, b = tracks.update(step * 0.2, *_frame(_person(100 + step), _person(400 - step)))
    assert (a.id, b.id) == (1, 2)
    assert len(a.ring) == RING  # bounded: the window the recognisers read
    assert a.ring[-1].t == pytest.approx((RING + 4) * 0.2)
    assert [p.t for p in a.poses] == [f.t for f in a.ring]  # the keypoints behind each
    assert a.poses[-1].keypoints[0, 0] == pytest.approx(100 + RING + 4)
    assert a.poses[-1].height_px == a.ring[-1].height_px


def test_hips_falling_are_measured_against_the_upright_reference():
    tracks = PoseTracks()
    tracks.update(0.0, *_frame(_person(100)))
    (track,) = tracks.update(0.2, *_frame(_person(100, hip_y=180)))
    assert track.ring[-1].hip_drop == pytest.approx(20 / 200)
    assert track.ring[-1].hip_speed == pytest.approx(20 / 0.2 / 200)


def test_an_unseen_track_is_forgotten_after_missed_samples():
    tracks = PoseTracks()
    tracks.update(0.0, *_frame(_person(100)))
    for step in range(MISSED_SAMPLES):
        tracks.update(0.2 * (step + 1), *_frame())
    assert len(tracks.tracks) == 1
    tracks.update(5.0, *_frame())
    assert tracks.tracks == []
    (new,) = tracks.update(5.2, *_frame(_person(100)))
    assert new.id == 2


def test_a_box_holds_its_edges_and_its_centre_is_the_middle() -> None:
    box = (0.0, 2.0, 10.0, 6.0)
    assert box_centre(box) == (5.0, 4.0)
    assert all(inside_box(p, box) for p in [(0.0, 2.0), (10.0, 6.0), (0.0, 6.0), (10.0, 2.0)])
    outside = [(-0.01, 4.0), (10.01, 4.0), (5.0, 1.99), (5.0, 6.01)]
    assert not any(inside_box(p, box) for p in outside)


def _tracks(*boxes: tuple[float, float, float, float]) -> PoseTracks:
    return PoseTracks([PersonTrack(i + 1, b) for i, b in enumerate(boxes)], len(boxes) + 1)


def _row(*box: float) -> np.ndarray:
    return np.array([[*box, 0.9]], np.float32)


def test_an_overlap_of_match_iou_beats_a_nearer_centre() -> None:
    """The new box's centre (50, 50) is the small track's, but the wide track overlaps it."""
    new = _row(0, 0, 100, 100)
    for overlapping in [(30.0, 0.0, 130.0, 100.0), (0.0, 0.0, 100.0, 30.0)]:  # IoU 0.54, 0.3
        tracks = _tracks(overlapping, (45.0, 45.0, 55.0, 55.0))
        assert iou(overlapping, (0, 0, 100, 100)) >= MATCH_IOU
        assert [tr.id if tr else None for tr in tracks.match(new)] == [1]


def test_a_box_overlapping_little_continues_the_nearest_track_it_holds_or_is_held_by() -> None:
    fallen = _tracks((40.0, 0.0, 60.0, 100.0))  # standing; now wide, centre inside the old box
    assert fallen.match(_row(0, 60, 100, 80))[0] is fallen.tracks[0]
    small = _tracks((10.0, 10.0, 20.0, 20.0))  # the old box's centre inside the new one
    assert small.match(_row(0, 0, 100, 100))[0] is small.tracks[0]
    assert small.match(_row(200, 200, 210, 210)) == [None]  # neither: a new person
    both = _tracks((0.0, 0.0, 100.0, 100.0), (60.0, 60.0, 80.0, 80.0))  # centres 40 and 0 away
    assert both.match(_row(65, 65, 75, 75))[0] is both.tracks[1]


def test_two_boxes_never_continue_one_track_and_a_new_person_starts_now() -> None:
    tracks = PoseTracks()
    tracks.update(0.0, *_frame(_person(100)))
    a, b = tracks.update(0.2, *_frame(_person(100), _person(101)))
    assert (a.id, a.first_t, b.id, b.first_t) == (1, 0.0, 2, 0.2)


def test_a_box_continues_the_track_the_caller_assigned_it() -> None:
    tracks = PoseTracks()
    (a,) = tracks.update(0.0, *_frame(_person(100)))
    (b,) = tracks.update(0.2, *_frame(_person(400)), assigned=[a])
    assert b is a and a.box[0] == 370.0 and len(a.ring) == 2


def test_a_reset_forgets_every_person_and_ids_are_not_reused() -> None:
    tracks = PoseTracks()
    tracks.update(0.0, *_frame(_person(100)))
    tracks.reset()
    assert tracks.tracks == []
    (new,) = tracks.update(0.2, *_frame(_person(100)))
    assert (new.id, len(new.ring)) == (2, 1)


def _shorter(x: float) -> tuple[np.ndarray, np.ndarray]:
    """`_person` upright at half the torso and a 100 px box: 100 px tall where it stands."""
    box, kp = _person(x)
    for name in ("left_shoulder", "right_shoulder"):
        kp[KP[name], 1] = 130
    box[1], box[3] = 110, 210
    return box, kp


@pytest.mark.parametrize("gap", [0.2, 10.0])
def test_the_standing_height_is_forgotten_over_the_time_between_samples(gap: float) -> None:
    tracks = PoseTracks()
    tracks.update(100.0, *_frame(_person(100)))  # 200 px tall
    (track,) = tracks.update(100.0 + gap, *_frame(_shorter(100)))
    assert track.reference is not None
    want = max(100.0, 200.0 * math.exp(-HEIGHT_DECAY_PER_S * gap))  # 196 after 0.2 s, 100 after 10
    assert track.reference.height_px == pytest.approx(want)


def test_a_pose_keeps_its_box_float32_keypoints_and_whether_it_touches_the_frames_edge() -> None:
    tracks = PoseTracks()
    box, kp = _person(100)
    (track,) = tracks.update(0.0, box[None], [kp.astype(np.float64)], (400, 131))
    assert track.poses[-1].box == (70.0, 50.0, 130.0, 250.0)
    assert track.poses[-1].keypoints.dtype == np.float32
    assert track.ring[-1].at_edge  # x2 = 130 within EDGE_PX of the 131 px wide frame
