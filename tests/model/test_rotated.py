"""model.rotated: the turned look's geometry. A point turned into the quarter-turned crop and
back lands exactly where it was, both ways; the crop's pixels are where `to_turned` says; the
region is the grown box clipped to the frame."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.rotated import (
    box_to_frame,
    keypoint_box,
    look_region,
    to_frame,
    to_turned,
    turn_crop,
)

REGION = (32, 62, 208, 238)


@pytest.mark.parametrize("clockwise", [True, False])
def test_a_point_turned_and_back_lands_exactly_where_it_was(clockwise):
    pts = np.array([[100.25, 70.5, 0.9], [32.0, 62.0, 0.1], [207.75, 237.0, 0.5]])
    turned = to_turned(pts, REGION, clockwise)
    assert not np.allclose(turned[:, :2], pts[:, :2])
    back = to_frame(turned, REGION, clockwise)
    np.testing.assert_array_equal(back, pts)  # scores kept, positions exact


@pytest.mark.parametrize("clockwise", [True, False])
def test_float32_model_points_turn_and_back_exactly(clockwise):
    # The pose model's keypoints are float32, found in the turned image or in the frame.
    rng = np.random.default_rng(0)
    pts = np.column_stack(
        [rng.uniform(32, 208, 50), rng.uniform(62, 238, 50), rng.uniform(0, 1, 50)]
    ).astype(np.float32)
    np.testing.assert_array_equal(
        to_frame(to_turned(pts, REGION, clockwise), REGION, clockwise), pts
    )
    np.testing.assert_array_equal(
        to_turned(to_frame(pts, REGION, clockwise), REGION, clockwise), pts
    )


def test_the_turns_move_a_point_a_quarter_turn_each_way():
    # region 176 wide, 176 tall; (100, 70) is 68 right of and 8 below its top-left corner
    np.testing.assert_array_equal(to_turned(np.array([[100.0, 70.0]]), REGION, True), [[168, 68]])
    np.testing.assert_array_equal(to_turned(np.array([[100.0, 70.0]]), REGION, False), [[8, 108]])


@pytest.mark.parametrize("clockwise", [True, False])
def test_the_turned_crop_has_each_pixel_where_to_turned_puts_it(clockwise):
    frame = np.zeros((300, 400, 3), np.uint8)
    region = (50, 40, 250, 160)  # 200 wide, 120 tall: the turned crop is 120 wide, 200 tall
    frame[100, 70] = (255, 255, 255)  # pixel x 70, y 100: centre (70.5, 100.5)
    img = turn_crop(frame, region, clockwise)
    assert img.shape == (200, 120, 3)
    ys, xs = np.nonzero(img[:, :, 0])
    centre = to_turned(np.array([[70.5, 100.5]]), region, clockwise)[0]
    assert (xs[0] + 0.5, ys[0] + 0.5) == (centre[0], centre[1])


def test_look_region_grows_the_box_and_clips_it_to_the_frame():
    # 100 px * 1.75 about (120, 150): 32.5-207.5, 62.5-237.5, widened to whole pixels
    assert look_region((100, 100, 140, 200), (480, 640)) == REGION
    # 70 px * 1.75 about (30, 435): -31.25-91.25, 373.75-496.25, clipped
    assert look_region((0, 400, 60, 470), (480, 640)) == (0, 373, 92, 480)
    # 70 px * 1.75 about (430, 35): the top clipped at row 0
    assert look_region((400, 0, 460, 70), (480, 640)) == (368, 0, 492, 97)
    assert look_region((700, 10, 760, 60), (480, 640)) is None  # all outside


def test_look_region_squares_a_lying_persons_wide_box_from_its_first_four_numbers():
    # a detector box with its score: 100 wide, 40 tall about (150, 170): 175 a side
    assert look_region(np.array([100, 150, 200, 190, 0.9]), (480, 640)) == (62, 82, 238, 258)
    # a box shrunk to a point still gives the pixels around it (at least 1 px * 1.75)
    assert look_region((10, 10, 10, 10), (480, 640)) == (9, 9, 11, 11)


@pytest.mark.parametrize(
    "box",
    [
        (-82.5, 100, -22.5, 140),  # its square ends exactly at the left edge: x 0 to 0
        (662.5, 100, 722.5, 140),  # ... starts exactly at the right edge: x 640 to 640
        (100, -82.5, 140, -22.5),  # ... ends exactly at the top
        (100, 502.5, 140, 562.5),  # ... starts exactly at the bottom
    ],
)
def test_a_square_that_only_touches_the_frame_is_no_region(box):
    assert look_region(box, (480, 640)) is None


def test_a_turned_box_maps_back_to_the_frame_box_around_it():
    turned = np.array([10.0, 20.0, 50.0, 100.0, 0.7])
    box = box_to_frame(turned, REGION, clockwise=True)
    corners = to_frame(np.array([[10.0, 20.0], [50.0, 100.0]]), REGION, True)
    np.testing.assert_allclose(box[:4], [*corners.min(0), *corners.max(0)])
    assert box[2] - box[0] == pytest.approx(80) and box[3] - box[1] == pytest.approx(40)
    assert box[4] == pytest.approx(0.7)


def test_keypoint_box_holds_only_the_seen_keypoints():
    kp = np.zeros((17, 3), np.float32)
    kp[:, :2] = 500.0  # unseen: far away
    kp[3] = (10, 40, 0.9)
    kp[9] = (60, 20, 0.31)
    np.testing.assert_allclose(keypoint_box(kp), [10, 20, 60, 40, 1.0])
    kp[3], kp[9] = (40, 10, 0.9), (20, 60, 0.9)  # the corners are per axis, not per keypoint
    np.testing.assert_allclose(keypoint_box(kp, 0.5), [20, 10, 40, 60, 0.5])
    kp[9, 2] = 0.29
    assert keypoint_box(kp) is None
