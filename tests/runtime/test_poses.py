"""runtime.poses: people keep their track (and its feature ring) across samples."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.pose import KP
from har_daemon.model.pose_features import RING
from har_daemon.runtime.poses import MISSED_SAMPLES, PoseTracks


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


def _estimate_counting(people, calls):
    """An `estimate` for PoseTracks.keypoints that records which boxes it was asked for."""

    def estimate(idx):
        calls.append(list(idx))
        return np.stack([people[i][1] for i in idx])

    return estimate


def test_a_still_upright_person_keeps_their_keypoints_moved_with_the_box():
    tracks = PoseTracks()
    first = _person(100)
    tracks.update(0.0, *_frame(first))
    moved = _person(103)  # 3 px sideways: same height, same top
    calls: list[list[int]] = []
    boxes, _ = _frame(moved)
    kps, estimated = tracks.keypoints(boxes, _estimate_counting([moved], calls))
    assert calls == [] and estimated == [False]
    np.testing.assert_allclose(kps[0], moved[1], atol=1e-4)  # carried and shifted by 3 px
    (track,) = tracks.update(0.2, boxes, kps, None, estimated)
    assert track.pose_box == tuple(float(v) for v in first[0][:4])  # still the estimated box


def test_a_box_that_shrinks_or_drops_or_a_person_not_upright_is_estimated_again():
    base = _person(100)
    lower = (base[0] + np.array([0, 25, 0, 25, 0], np.float32), base[1])  # top 12 % lower
    shorter = (base[0] + np.array([0, 30, 0, 0, 0], np.float32), base[1])  # 15 % shorter
    for nxt in (lower, shorter):
        tracks = PoseTracks()
        tracks.update(0.0, *_frame(base))
        calls: list[list[int]] = []
        _kps, estimated = tracks.keypoints(_frame(nxt)[0], _estimate_counting([nxt], calls))
        assert calls == [[0]] and estimated == [True]
    bent = _person(100)
    bent[1][[KP["left_shoulder"], KP["right_shoulder"]], 0] += 60  # torso 45 degrees
    tracks = PoseTracks()
    tracks.update(0.0, *_frame(bent))
    calls = []
    tracks.keypoints(_frame(bent)[0], _estimate_counting([bent], calls))
    assert calls == [[0]]


def test_only_the_boxes_that_need_it_are_estimated_in_one_call():
    tracks = PoseTracks()
    a, b = _person(100), _person(400)
    tracks.update(0.0, *_frame(a, b))
    newcomer = _person(700)
    b_lower = (b[0] + np.array([0, 40, 0, 0, 0], np.float32), b[1])
    people = [a, b_lower, newcomer]
    calls: list[list[int]] = []
    _kps, estimated = tracks.keypoints(_frame(*people)[0], _estimate_counting(people, calls))
    assert calls == [[1, 2]] and estimated == [False, True, True]
