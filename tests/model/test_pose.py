"""model.pose: crop and decode maths on hand-made numbers, and the shipped MoveNet on a real
frame of a standing person (keypoints inside the box, head above hips above ankles)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.core.paths import DEMO_MODEL_DIR
from har_daemon.model import pose as mp
from har_daemon.model.person import PersonDetector
from tests.shared_data import FALLS_DATA, require


def test_crop_square_is_centred_with_margin_on_the_longer_side():
    crop = mp.crop_square(np.array([100, 50, 140, 250, 0.9]), margin=0.1)
    assert crop.side == pytest.approx(200 * 1.2)
    assert crop.x0 + crop.side / 2 == pytest.approx(120)
    assert crop.y0 + crop.side / 2 == pytest.approx(150)


def test_crop_matrix_maps_the_crop_onto_the_input_square():
    crop = mp.Crop(x0=-20.0, y0=10.0, side=96.0)
    m = mp.crop_matrix(crop, side=192)
    corners = np.array([[-20, 10, 1], [76, 106, 1]], np.float64)
    np.testing.assert_allclose(corners @ m.T, [[0, 0], [192, 192]])


def test_crop_input_is_rgb_int32_and_black_outside_the_frame():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:] = (255, 0, 0)  # pure blue in BGR
    x = mp.crop_input(frame, mp.Crop(x0=50.0, y0=0.0, side=100.0), side=192)
    assert x.shape == (1, 192, 192, 3) and x.dtype == np.int32
    assert tuple(x[0, 96, 40]) == (0, 0, 255)  # inside the frame: blue, now in RGB order
    assert tuple(x[0, 96, 150]) == (0, 0, 0)  # past the frame's right edge


def test_decode_maps_normalised_yx_back_to_frame_pixels():
    raw = np.zeros((1, 1, 17, 3), np.float32)
    raw[0, 0, mp.KP["nose"]] = (0.25, 0.5, 0.9)  # y, x, score
    raw[0, 0, mp.KP["left_ankle"]] = (1.0, 0.0, 0.4)
    kp = mp.decode(raw, mp.Crop(x0=10.0, y0=-20.0, side=200.0))
    np.testing.assert_allclose(kp[mp.KP["nose"]], [110.0, 30.0, 0.9])
    np.testing.assert_allclose(kp[mp.KP["left_ankle"]], [10.0, 180.0, 0.4])


def test_a_missing_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        mp.PoseEstimator(tmp_path / "none.tflite")


def test_no_boxes_no_keypoints():
    out = mp.PoseEstimator().estimate(np.zeros((48, 64, 3), np.uint8), np.zeros((0, 5)))
    assert out.shape == (0, 17, 3)


def _frame(path, t_s):
    cap = cv2.VideoCapture(str(path))
    cap.set(cv2.CAP_PROP_POS_MSEC, t_s * 1000)
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def test_real_standing_person_gets_a_plausible_skeleton():
    # GMDCSA24 actor 3 stands facing the camera for the first 1.9 s of this clip.
    frame = _frame(require(FALLS_DATA / "gmdcsa24" / "fall" / "s3_fall_19.mp4"), 1.0)
    boxes = PersonDetector().detect(frame)
    assert len(boxes) >= 1
    box = boxes[0]
    kp = mp.PoseEstimator().estimate(frame, box[None])[0]
    seen = kp[:, 2] >= mp.MIN_KEYPOINT_SCORE
    assert seen.mean() >= 0.8
    pad = 0.1 * (box[3] - box[1])
    inside = (
        (kp[seen, 0] >= box[0] - pad) & (kp[seen, 0] <= box[2] + pad)
        & (kp[seen, 1] >= box[1] - pad) & (kp[seen, 1] <= box[3] + pad)
    )  # fmt: skip
    assert inside.all()
    y = {name: kp[mp.KP[name], 1] for name in ("nose", "left_hip", "right_hip", "left_ankle")}
    assert y["nose"] < min(y["left_hip"], y["right_hip"]) < y["left_ankle"]
    # the hips sit near the middle of a standing body
    assert 0.35 < (y["left_hip"] - box[1]) / (box[3] - box[1]) < 0.65


def test_posable_judges_a_box_by_its_longer_side():
    boxes = np.array(
        [
            [0, 0, 40, 63, 0.9],  # small standing
            [0, 0, 40, 64, 0.9],  # just tall enough
            [0, 0, 120, 30, 0.9],  # lying across the view: wide and low
            [10, 10, 50, 50, 0.9],  # small all round
        ],
        np.float32,
    )
    assert mp.posable(boxes).tolist() == [False, True, True, False]
    assert mp.posable(boxes, 30.0).tolist() == [True, True, True, True]
    assert mp.posable(np.zeros((0, 5), np.float32)).shape == (0,)


def test_crop_square_takes_the_longer_side_of_a_wide_box_and_one_pixel_at_least():
    wide = mp.crop_square(np.array([100, 50, 300, 90, 0.9]), margin=0.1)
    assert wide.side == pytest.approx(200 * 1.2)
    assert (wide.x0 + wide.side / 2, wide.y0 + wide.side / 2) == pytest.approx((200, 70))
    assert mp.crop_square(np.array([50, 60, 50, 60]), margin=0.1).side == pytest.approx(1.2)


def test_crop_input_maps_the_crop_onto_an_input_of_the_side_asked():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:50] = (0, 255, 0)  # the top half green
    x = mp.crop_input(frame, mp.Crop(x0=0.0, y0=0.0, side=100.0), side=96)
    assert x.shape == (1, 96, 96, 3)
    assert tuple(x[0, 10, 48]) == (0, 255, 0) and tuple(x[0, 86, 48]) == (0, 0, 0)


def test_posable_measures_boxes_away_from_the_origin_and_takes_a_single_flat_box():
    boxes = np.array(
        [[100, 200, 140, 263, 0.9], [100, 20, 140, 83, 0.9], [300, 200, 364, 210, 0.9]]
    )
    assert mp.posable(boxes[:, :4]).tolist() == [False, False, True]
    assert mp.posable(np.array([300, 200, 364, 210, 0.9])).tolist() == [True]
    assert mp.posable([]).shape == (0,)


def test_the_estimator_gives_each_box_keypoints_inside_its_crop():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 255, (240, 320, 3), np.uint8)
    box = np.array([100, 40, 160, 200, 0.9], np.float32)
    estimator = mp.PoseEstimator()
    kp = estimator.estimate(frame, box[None])
    assert kp.shape == (1, 17, 3) and kp.dtype == np.float32
    crop = mp.crop_square(box)
    assert (kp[0, :, 0] >= crop.x0).all() and (kp[0, :, 0] <= crop.x0 + crop.side).all()
    assert (kp[0, :, 1] >= crop.y0).all() and (kp[0, :, 1] <= crop.y0 + crop.side).all()
    assert ((kp[0, :, 2] >= 0) & (kp[0, :, 2] <= 1)).all()
    np.testing.assert_array_equal(estimator.estimate(frame, box), kp)  # one box, flat
    other = estimator.estimate(frame, np.array([[0, 0, 320, 240, 0.9]], np.float32))
    assert not np.array_equal(other, kp)  # another crop: the model saw another picture


def test_a_file_that_is_not_the_pose_model_is_a_model_error_naming_it(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    with pytest.raises(ModelError, match=r"cannot load pose model .*junk\.tflite: "):
        mp.PoseEstimator(junk)
    other = DEMO_MODEL_DIR / "model.tflite"  # a clip classifier: another input
    with pytest.raises(ModelError, match=r"model\.tflite: expected one \[1, 192, 192, 3\] input"):
        mp.PoseEstimator(other)
