"""Model directories: round trip, every mismatch error, and Keras 2 tutorial models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from har_daemon.core.errors import ModelError
from har_daemon.model.keras.arch import build_convlstm, build_lrcn
from har_daemon.model.keras.store import import_keras2_h5, load_model_dir, save_model_dir
from har_daemon.model.meta import FORMAT_VERSION, ModelMeta, read_meta
from tests.shared_data import TUTORIAL_CLASSES, TUTORIAL_H5, require

CLASSES = ["HorseRace", "Biking", "Swing", "PizzaTossing"]


def _meta(**overrides: object) -> ModelMeta:
    fields: dict[str, object] = {
        "name": "test",
        "classes": CLASSES,
        "frame_spacing_s": 0.1,
        "architecture": "convlstm",
        "training": {"epochs": 3},
        "evaluation": {"accuracy": 0.9},
    }
    fields.update(overrides)
    return ModelMeta.model_validate(fields)


@pytest.fixture(scope="module")
def saved_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model")
    save_model_dir(out, build_convlstm(4), _meta())
    return out


def _window(seed: int = 0, n: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 20, 64, 64, 3), dtype=np.float32)


def test_round_trip_keeps_metadata_and_outputs(saved_dir: Path) -> None:
    loaded = load_model_dir(saved_dir)
    assert loaded.meta.classes == CLASSES
    assert loaded.meta.frame_spacing_s == 0.1
    assert loaded.meta.format_version == FORMAT_VERSION
    assert loaded.meta.training == {"epochs": 3}
    assert loaded.meta.evaluation == {"accuracy": 0.9}
    x = _window()
    direct = np.asarray(loaded.model(x, training=False))
    np.testing.assert_allclose(loaded.predict(x), direct, atol=1e-6)
    # A single window without the batch axis is accepted too.
    np.testing.assert_allclose(loaded.predict(x[0]), direct[:1], atol=1e-6)


def test_lrcn_round_trip(tmp_path: Path) -> None:
    model = build_lrcn(4)
    save_model_dir(tmp_path, model, _meta(architecture="lrcn"))
    loaded = load_model_dir(tmp_path)
    x = _window(1, 1)
    np.testing.assert_allclose(loaded.predict(x), np.asarray(model(x, training=False)), atol=1e-6)


def _copy(saved_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "m"
    shutil.copytree(saved_dir, dst)
    return dst


def _edit_meta(model_dir: Path, **changes: object) -> None:
    path = model_dir / "model.json"
    raw = json.loads(path.read_text())
    raw.update(changes)
    path.write_text(json.dumps(raw))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sequence_length": 16}, "sequence_length = 16 but the model's input has 20"),
        ({"frame_height": 32}, "frame_height = 32 but the model's input has 64"),
        ({"frame_width": 128}, "frame_width = 128 but the model's input has 64"),
        ({"classes": ["a", "b", "c"]}, "lists 3 classes but the model outputs shape"),
        ({"classes": ["a", "a", "b", "c"]}, "class names must be unique"),
        ({"classes": "HorseRace"}, "field 'classes'"),
        ({"frame_spacing_s": -1}, "field 'frame_spacing_s'"),
        ({"color_order": "YUV"}, "field 'color_order'"),
        ({"surprise": 1}, "field 'surprise': Extra inputs are not permitted"),
        ({"format_version": FORMAT_VERSION + 1}, "this har-daemon reads up to"),
        ({"model_file": "missing.keras"}, "model file missing.keras is missing"),
    ],
)
def test_metadata_mismatch_is_a_clear_error(
    saved_dir: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    model_dir = _copy(saved_dir, tmp_path)
    _edit_meta(model_dir, **changes)
    with pytest.raises(ModelError, match=message) as err:
        load_model_dir(model_dir)
    assert "\n" not in str(err.value)


def test_missing_and_corrupt_files(saved_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model_dir(tmp_path / "nowhere")
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(ModelError, match="is not a directory"):
        load_model_dir(a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="has no model.json"):
        load_model_dir(empty)

    model_dir = _copy(saved_dir, tmp_path)
    (model_dir / "model.json").write_text("{not json")
    with pytest.raises(ModelError, match="is not valid JSON"):
        read_meta(model_dir)

    model_dir = _copy(saved_dir, tmp_path / "b")
    (model_dir / "model.keras").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelError, match=r"cannot load model file .*model.keras"):
        load_model_dir(model_dir)

    model_dir = _copy(saved_dir, tmp_path / "c")
    keras_file = model_dir / "model.keras"
    keras_file.write_bytes(keras_file.read_bytes()[: keras_file.stat().st_size // 2])
    with pytest.raises(ModelError, match="cannot load model file"):
        load_model_dir(model_dir)


def test_save_refuses_metadata_that_does_not_fit(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="lists 2 classes"):
        save_model_dir(tmp_path, build_convlstm(4), _meta(classes=["a", "b"]))
    assert not (tmp_path / "model.json").exists()


# --- Keras 2 tutorial models -----------------------------------------------------------------


def _keras2_reference(h5: Path, x: np.ndarray) -> np.ndarray:
    """What Keras 2 itself computes for the file: tf_keras is Keras 2, maintained."""
    import tf_keras

    model = tf_keras.models.load_model(h5, compile=False)
    return np.asarray(model(x, training=False))


def _real_windows() -> np.ndarray:
    """Two windows of real CCTV frames, preprocessed the tutorial's way."""
    import cv2

    from har_daemon.model.preprocess import resize_frame, to_model_input

    clips = sorted((TUTORIAL_H5.parents[1] / "surveillance-fight" / "fight").glob("*.mp4"))[:2]
    windows = []
    for clip in clips:
        cap = cv2.VideoCapture(str(clip))
        frames = []
        while len(frames) < 20:
            ok, frame = cap.read()
            if not ok:
                break
            frames.append(resize_frame(frame, (64, 64), "linear"))
        cap.release()
        while len(frames) < 20:
            frames.append(frames[-1])
        windows.append(to_model_input(np.stack(frames)))
    return np.stack(windows)


def test_import_keras2_tutorial_model_matches_keras2(tmp_path: Path) -> None:
    h5 = require(TUTORIAL_H5)
    loaded = import_keras2_h5(h5, TUTORIAL_CLASSES, tmp_path / "imported", frame_spacing_s=0.2)
    assert (tmp_path / "imported" / "model.keras").is_file()
    assert loaded.meta.classes == list(TUTORIAL_CLASSES)
    assert loaded.meta.resize_interpolation == "linear"
    assert loaded.meta.frame_spacing_s == 0.2
    assert loaded.meta.provenance["source_keras_version"] == "2.15.0"
    x = np.concatenate([_window(3, 2), _real_windows()])
    reference = _keras2_reference(h5, x)
    ours = load_model_dir(tmp_path / "imported").predict(x)
    np.testing.assert_allclose(ours, reference, atol=1e-5)


def test_keras3_hard_sigmoid_would_differ(tmp_path: Path) -> None:
    """Guards the test above: without the Keras 2 gate the outputs really change."""
    import keras

    from har_daemon.model.keras import compat as model_module

    h5 = require(TUTORIAL_H5)
    objects = dict(model_module.KERAS2_CUSTOM_OBJECTS)
    del objects["hard_sigmoid"]
    naive = keras.models.load_model(h5, compile=False, custom_objects=objects)
    x = _window(5, 2)
    assert np.abs(np.asarray(naive(x, training=False)) - _keras2_reference(h5, x)).max() > 1e-3


def test_h5_with_hand_written_model_json_loads(tmp_path: Path) -> None:
    h5 = require(TUTORIAL_H5)
    model_dir = tmp_path / "tutorial"
    model_dir.mkdir()
    shutil.copy(h5, model_dir / "model.h5")
    (model_dir / "model.json").write_text(
        json.dumps(
            {
                "name": "tutorial",
                "classes": list(TUTORIAL_CLASSES),
                "sequence_length": 20,
                "frame_height": 64,
                "frame_width": 64,
                "color_order": "BGR",
                "resize_interpolation": "linear",
                "frame_spacing_s": 0.2,
                "architecture": "convlstm",
                "model_file": "model.h5",
            }
        )
    )
    loaded = load_model_dir(model_dir)
    x = _window(6, 1)
    np.testing.assert_allclose(loaded.predict(x), _keras2_reference(h5, x), atol=1e-5)
    _edit_meta(model_dir, classes=["a", "b"])
    with pytest.raises(ModelError, match="lists 2 classes"):
        load_model_dir(model_dir)


def test_import_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        import_keras2_h5(tmp_path / "x.h5", ["a", "b"], tmp_path / "out", frame_spacing_s=0.1)
