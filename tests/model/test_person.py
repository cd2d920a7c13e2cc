"""model.person: NanoDet decoding on hand-made head outputs, and the shipped detector on real
frames (people found where they are, none on a black frame)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.model import person as nd
from tests.shared_data import SHARED_DATA, require

HW = (416, 416)


def _raw_outputs(hw=HW, hits=()):
    """Six zero-score head tensors, shuffled; hits: (stride, row, col, score, l, t, r, b)."""
    outs = {}
    for s in nd.STRIDES:
        n = (hw[0] // s) * (hw[1] // s)
        cls = np.zeros((1, n, 80), np.float32)
        reg = np.full((1, n, 44), -20.0, np.float32)
        outs[s] = (cls, reg)
    for s, row, col, score, *dist in hits:
        cls, reg = outs[s]
        i = row * (hw[1] // s) + col
        cls[0, i, nd.PERSON_CLASS] = score
        cls[0, i, 2] = 0.99  # a car in the same cell must not leak into person boxes
        for side, d in enumerate(dist):  # one-hot distribution at bin d (in strides)
            reg[0, i, side * 11 + d] = 20.0
    flat = [t for s in nd.STRIDES for t in outs[s]]
    return [flat[k] for k in (5, 0, 3, 1, 4, 2)]


def test_center_priors_row_major_cell_centres():
    p = nd.center_priors((64, 96), 32)
    assert p.shape == (2 * 3, 2)
    np.testing.assert_allclose(p[:4], [[16, 16], [48, 16], [80, 16], [16, 48]])


def test_distribution_to_distance_is_softmax_expectation():
    reg = np.full((2, 44), -30.0, np.float32)
    for side, d in enumerate([0, 3, 7, 10]):
        reg[0, side * 11 + d] = 30.0
    reg[1, :11] = 0.0  # uniform over 0..10 -> mean 5
    out = nd.distribution_to_distance(reg)
    np.testing.assert_allclose(out[0], [0, 3, 7, 10], atol=1e-4)
    assert out[1, 0] == pytest.approx(5.0, abs=1e-5)


def test_split_outputs_matches_by_shape_not_order():
    parts = nd.split_outputs(_raw_outputs(), HW)
    assert [(s, c.shape, r.shape) for s, c, r in parts] == [
        (8, (2704, 80), (2704, 44)),
        (16, (676, 80), (676, 44)),
        (32, (169, 80), (169, 44)),
    ]


def test_split_outputs_rejects_wrong_input_size():
    with pytest.raises(ValueError):
        nd.split_outputs(_raw_outputs(), (320, 320))


def test_decode_outputs_box_geometry_and_threshold():
    # stride 16, cell (row 10, col 5): centre (88, 168); distances 2,3,4,5 strides
    raw = _raw_outputs(hits=[(16, 10, 5, 0.8, 2, 3, 4, 5), (8, 0, 0, 0.2, 1, 1, 1, 1)])
    boxes, scores = nd.decode_outputs(raw, HW, score_threshold=0.3)
    assert boxes.shape == (1, 4) and scores.tolist() == pytest.approx([0.8])
    np.testing.assert_allclose(boxes[0], [88 - 32, 168 - 48, 88 + 64, 168 + 80], atol=1e-3)
    boxes, _ = nd.decode_outputs(raw, HW, score_threshold=0.1)
    assert len(boxes) == 2
    # the box at the top-left corner is clipped to the input
    assert boxes[:, :2].min() >= 0


def test_nms_keeps_best_of_overlapping_boxes():
    b = np.array([[0, 0, 10, 20], [1, 0, 11, 20], [50, 50, 60, 70]], np.float32)
    s = np.array([0.5, 0.9, 0.4], np.float32)
    keep = nd.nms(b, s, iou_threshold=0.5, score_threshold=0.3)
    assert keep.tolist() == [1, 2]


def test_letterbox_round_trip_to_frame_coordinates():
    frame = np.full((720, 1280, 3), 255, np.uint8)
    x, tr = nd.preprocess(frame, HW)
    assert x.shape == (1, 416, 416, 3) and x.dtype == np.float32
    assert tr.scale_x == pytest.approx(416 / 1280) and tr.pad_y == (416 - 234) // 2
    assert np.all(x[0, 0] == 0)  # padding is the mean colour, zero after normalisation
    np.testing.assert_allclose(x[0, 208, 208], (255 - nd.MEAN_BGR) * nd.INV_STD_BGR, rtol=1e-6)
    frame_box = np.array([[100, 200, 300, 600]], np.float32)
    inp_box = frame_box.copy()
    inp_box[:, 0::2] = frame_box[:, 0::2] * tr.scale_x + tr.pad_x
    inp_box[:, 1::2] = frame_box[:, 1::2] * tr.scale_y + tr.pad_y
    np.testing.assert_allclose(nd.to_frame_coords(inp_box, tr, (720, 1280)), frame_box, atol=1e-3)


def test_postprocess_returns_frame_pixel_person_boxes():
    raw = _raw_outputs(hits=[(16, 10, 5, 0.8, 2, 3, 4, 5)])
    tr = nd.Transform(0.5, 0.5)  # frame twice the input size, stretched
    out = nd.postprocess(raw, HW, tr, (832, 832), score_threshold=0.35, nms_iou=0.5)
    assert out.dtype == np.float32 and out.shape == (1, 5)
    np.testing.assert_allclose(out[0], [112, 240, 304, 496, 0.8], atol=1e-3)


def test_shipped_detector_finds_people_in_real_cctv() -> None:
    clip = require(SHARED_DATA / "surveillance-fight" / "noFight" / "nofi001.mp4")
    cap = cv2.VideoCapture(str(clip))
    ok, frame = cap.read()
    cap.release()
    assert ok
    det = nd.PersonDetector(threads=1)
    assert det.input_hw == (352, 640)
    found = det.detect(frame)
    # Three people stand at the counter of this 480x360 frame (checked by eye).
    assert len(found) >= 3, found
    assert np.all(found[:, 4] >= nd.DEFAULT_SCORE)
    assert np.all((found[:, 2] > found[:, 0]) & (found[:, 3] > found[:, 1]))
    assert len(det.detect(np.zeros((480, 640, 3), np.uint8))) == 0  # nobody in a black frame


def test_missing_or_broken_detector_is_a_model_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ModelError, match="does not exist"):
        nd.PersonDetector(tmp_path / "nope.tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a flatbuffer")
    with pytest.raises(ModelError, match="cannot load person detector"):
        nd.PersonDetector(bad)
