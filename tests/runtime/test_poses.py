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
