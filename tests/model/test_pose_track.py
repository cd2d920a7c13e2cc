"""model.pose_track: where a tracked look runs the pose model. The box around the seen keypoints
grown by `TRACK_GROW` of its longer side; the last box grown the same when too few keypoints
were seen; clipped to the frame; and a tracked person's own box padded like a detector's."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.pose_track import (
    SEEN_PAD,
    TRACK_GROW,
    TRACK_MIN_KEYPOINTS,
    seen_box,
    track_region,
)

HW = (480, 640)


def _keypoints(points: list[tuple[float, float]], n_seen: int) -> np.ndarray:
    """17 keypoints: the first `n_seen` of `points` (cycled) seen, the rest unseen far away."""
    kp = np.zeros((17, 3), np.float32)
    kp[:, :2] = (600.0, 20.0)  # where an unseen keypoint must not pull the box
    for i in range(n_seen):
        kp[i] = (*points[i % len(points)], 0.9)
    return kp


def test_the_region_is_the_seen_keypoints_box_grown_by_its_longer_side():
    # a standing person: keypoints span x 300-340, y 100-300 (longer side 200)
    kp = _keypoints([(300.0, 100.0), (340.0, 300.0), (320.0, 200.0)], 12)
    region = track_region(kp, (0.0, 0.0, 10.0, 10.0), HW)
    pad = 200.0 * TRACK_GROW
    assert region == pytest.approx([300 - pad, 100 - pad, 340 + pad, 300 + pad, 1.0])


def test_too_few_keypoints_fall_back_to_the_last_box_grown():
    kp = _keypoints([(300.0, 100.0), (340.0, 300.0)], TRACK_MIN_KEYPOINTS - 1)
    last = (200.0, 150.0, 260.0, 250.0)  # longer side 100
    pad = 100.0 * TRACK_GROW
    assert track_region(kp, last, HW) == pytest.approx(
        [200 - pad, 150 - pad, 260 + pad, 250 + pad, 1.0]
    )


def test_the_region_is_clipped_to_the_frame_and_none_outside_it():
    kp = _keypoints([(10.0, 300.0), (60.0, 470.0)], 10)  # near the left and bottom edges
    x1, y1, x2, y2, _ = track_region(kp, (0.0, 0.0, 1.0, 1.0), HW)
    assert (x1, y2) == (0.0, 480.0)
    assert x2 == pytest.approx(60 + 170 * TRACK_GROW) and y1 == pytest.approx(
        300 - 170 * TRACK_GROW
    )
    assert track_region(np.zeros((17, 3)), (700.0, 10.0, 760.0, 50.0), HW) is None


def test_a_tracked_persons_box_is_padded_like_a_detector_box_and_clipped():
    kp = _keypoints([(300.0, 100.0), (340.0, 300.0)], 12)
    left, top, right, bottom = (p * 200.0 for p in SEEN_PAD)
    box = seen_box(kp, HW, score=0.5)
    assert box == pytest.approx([300 - left, 100 - top, 340 + right, 300 + bottom, 0.5])
    assert seen_box(_keypoints([(2.0, 5.0), (40.0, 90.0)], 6), HW)[:2] == pytest.approx([0, 0])
    assert seen_box(_keypoints([(5.0, 5.0)], 1), HW) is None


def test_exactly_track_min_keypoints_seen_are_enough_for_their_own_box():
    kp = _keypoints([(300.0, 100.0), (340.0, 300.0), (320.0, 200.0)], TRACK_MIN_KEYPOINTS)
    pad = 200.0 * TRACK_GROW
    region = track_region(kp, (0.0, 0.0, 10.0, 10.0), HW)
    assert region == pytest.approx([300 - pad, 100 - pad, 340 + pad, 300 + pad, 1.0])


def test_a_person_lying_across_the_view_is_grown_by_the_width_of_their_box():
    kp = _keypoints([(100.0, 300.0), (300.0, 340.0), (200.0, 320.0)], 12)  # 200 wide, 40 high
    pad = 200.0 * TRACK_GROW
    region = track_region(kp, (0.0, 0.0, 10.0, 10.0), HW)
    assert region == pytest.approx([100 - pad, 300 - pad, 300 + pad, 340 + pad, 1.0])


def test_a_box_of_no_size_is_grown_as_one_pixel():
    region = track_region(np.zeros((17, 3)), (100.0, 200.0, 100.0, 200.0), HW)
    grow = TRACK_GROW * 1.0
    assert region == pytest.approx([100 - grow, 200 - grow, 100 + grow, 200 + grow, 1.0])


def test_a_region_that_only_touches_the_frames_edge_is_none():
    # longer side 10, grown by 2.5: the region starts exactly on the right / bottom edge
    assert track_region(np.zeros((17, 3)), (642.5, 100.0, 652.5, 110.0), HW) is None
    assert track_region(np.zeros((17, 3)), (100.0, 482.5, 110.0, 492.5), HW) is None
    inside = track_region(np.zeros((17, 3)), (642.4, 100.0, 652.4, 110.0), HW)
    assert inside is not None and inside[0] == pytest.approx(639.9)


def test_each_side_of_a_tracked_persons_box_gets_its_own_pad(monkeypatch):
    monkeypatch.setattr("har_daemon.model.pose_track.SEEN_PAD", (0.1, 0.2, 0.3, 0.4))
    kp = _keypoints([(300.0, 100.0), (340.0, 200.0)], 12)  # longer side 100
    assert seen_box(kp, HW) == pytest.approx([290.0, 80.0, 370.0, 240.0, 1.0])
