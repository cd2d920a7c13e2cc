"""model.appearance: the shipped MobileNetV2 encoder on real pictures: its shapes, its match with
the upstream network (a golden embedding from the numpy reference of
scripts/appearance_model/reference.py), that its features tell people and scenes apart, and
that a bad file is refused with one clear line."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.model import appearance as ma
from har_daemon.model.person import PersonDetector
from tests.shared_data import FALLS_DATA, SHARED_DATA, require

GOLDEN = Path(__file__).parent / "data"
"""appearance_check.png (a chart from models/demo) and the embedding the numpy reference of the
upstream PyTorch module gives it; `convert_appearance_model.py --golden tests/model/data`."""
SAME_PERSON = FALLS_DATA / "gmdcsa24" / "fall" / "s3_fall_19.mp4"  # actor 3 stands, 0-1.9 s


@pytest.fixture(scope="module")
def encoder() -> ma.AppearanceEncoder:
    return ma.load_encoder()


@pytest.fixture(scope="module")
def detector() -> PersonDetector:
    return PersonDetector()


def _frame(path: Path, t_s: float) -> np.ndarray:
    cap = cv2.VideoCapture(str(require(path)))
    cap.set(cv2.CAP_PROP_POS_MSEC, t_s * 1000)
    ok, frame = cap.read()
    cap.release()
    assert ok, (path, t_s)
    return frame


def _person(detector: PersonDetector, path: Path, t_s: float) -> np.ndarray:
    frame = _frame(path, t_s)
    boxes = detector.detect(frame)
    assert len(boxes), (path, t_s)
    x1, y1, x2, y2 = (int(v) for v in max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))[:4])
    return frame[max(y1, 0) : y2, max(x1, 0) : x2]


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_crops_of_any_size_give_float32_rows_of_1280(encoder, detector):
    crops = [_person(detector, SAME_PERSON, t) for t in (0.5, 1.5)]
    crops.append(_frame(SAME_PERSON, 0.5))  # a whole 640x480 frame
    assert len({c.shape for c in crops}) == 3
    emb = encoder.embed(crops)
    assert emb.shape == (3, ma.EMBED_DIM) and emb.dtype == np.float32
    assert np.isfinite(emb).all() and (emb >= 0).all()  # a mean over ReLU6 outputs
    assert (emb.max(axis=1) > 0).all()
    same_size = np.stack([cv2.resize(c, (90, 200)) for c in crops[:2]])
    assert encoder.embed(same_size).shape == (2, ma.EMBED_DIM)
    assert encoder.embed([]).shape == (0, ma.EMBED_DIM)


def test_input_is_the_models_square_in_rgb(encoder):
    assert encoder.input_side % 32 == 0
    blue = np.zeros((50, 70, 3), np.uint8)
    blue[..., 0] = 255  # BGR
    x = encoder.prepare(blue)
    assert x.shape == (1, encoder.input_side, encoder.input_side, 3) and x.dtype == np.float32
    assert tuple(x[0, 5, 5]) == (0.0, 0.0, 255.0)
    with pytest.raises(ValueError, match="uint8"):
        encoder.prepare(blue.astype(np.float32))


@pytest.mark.parametrize("side", [None, 96])
def test_the_shipped_file_matches_the_upstream_network(encoder, side):
    """At the file's own side and at 96, which the same file serves with its input resized."""
    image = cv2.imread(str(GOLDEN / "appearance_check.png"), cv2.IMREAD_COLOR)
    if side is None:
        want = np.load(GOLDEN / "appearance_check.npy")
    else:
        want = np.load(GOLDEN / f"appearance_check_{side}.npy")
        encoder = ma.load_encoder(side=side)
        assert encoder.input_side == side
        assert encoder.prepare(image).shape == (1, side, side, 3)
    got = encoder.embed([image])[0]
    rel = np.abs(got - want).max() / np.abs(want).max()
    assert rel < 1e-3, rel
    assert _cos(got, want) > 0.9999


def test_the_same_person_is_closer_than_people_of_other_scenes(encoder, detector):
    same = [_person(detector, SAME_PERSON, t) for t in (0.4, 1.0, 1.3)]
    other = [
        _person(detector, SHARED_DATA / "quiet" / "meva_school_gym_G330.mp4", 5.0),
        _person(detector, SHARED_DATA / "quiet" / "intel_office_one_by_one.mp4", 8.0),
        _person(detector, FALLS_DATA / "gmdcsa24" / "adl" / "s2_adl_23.mp4", 1.0),
    ]
    emb = encoder.embed(same + other)
    within = [_cos(emb[i], emb[j]) for i in range(3) for j in range(i + 1, 3)]
    across = [_cos(emb[i], emb[j]) for i in range(3) for j in range(3, 6)]
    assert min(within) > max(across) + 0.1, (within, across)


def test_the_side_differs_from_the_files_and_changes_the_features(encoder):
    """The resized input is really used: 96 and 128 give different (but close) features."""
    image = cv2.imread(str(GOLDEN / "appearance_check.png"), cv2.IMREAD_COLOR)
    at_96 = ma.load_encoder(side=96).embed([image])[0]
    at_file = encoder.embed([image])[0]
    assert encoder.input_side == 128
    assert not np.allclose(at_96, at_file, rtol=1e-2)
    assert _cos(at_96, at_file) > 0.8


@pytest.mark.parametrize("side", [0, 100, 16, 1024])
def test_a_side_that_is_not_a_multiple_of_32_in_range_is_a_model_error(side):
    with pytest.raises(ModelError, match=f"input side {side}: expected a multiple of 32"):
        ma.load_encoder(side=side)


def test_a_missing_directory_or_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="directory .* does not exist"):
        ma.load_encoder(tmp_path / "nowhere")
    with pytest.raises(ModelError, match=f"{ma.MODEL_FILE} does not exist"):
        ma.load_encoder(tmp_path)


def test_a_corrupt_or_foreign_model_file_is_a_model_error(tmp_path):
    (tmp_path / ma.MODEL_FILE).write_bytes(b"not a flatbuffer" * 64)
    with pytest.raises(ModelError, match="cannot load appearance model") as err:
        ma.load_encoder(tmp_path)
    assert "\n" not in str(err.value)
    pose = ma.APPEARANCE_DIR.parent / "pose" / "pose_model.tflite"  # int32 [1, 192, 192, 3] in
    (tmp_path / ma.MODEL_FILE).write_bytes(pose.read_bytes())
    with pytest.raises(ModelError, match="expected one float32"):
        ma.load_encoder(tmp_path)
