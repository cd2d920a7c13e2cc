"""LiteRT export: the fused, unrolled twin computes what the Keras model computes.

Checked on real CCTV windows and random ones, for the paper's ConvLSTM, the LRCN, the real
Keras 2 tutorial model (Keras 2 hard sigmoid gates) and small variants of every option the
twin reproduces (padding, strides, bias, return_sequences, Keras 3 hard sigmoid).
"""

from __future__ import annotations

import functools
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import layers

from har_daemon.core.errors import ModelError
from har_daemon.model.keras.arch import build_convlstm, build_lrcn
from har_daemon.model.keras.compat import keras2_hard_sigmoid
from har_daemon.model.keras.export import (
    EXPORT_ATOL,
    TFLITE_FILE,
    build_inference_twin,
    convert_to_tflite,
    export_tflite,
    run_tflite,
)
from har_daemon.model.keras.store import import_keras2_h5, load_model_dir, save_model_dir
from har_daemon.model.meta import ModelMeta, read_meta, write_meta
from har_daemon.model.preprocess import Interpolation
from har_daemon.video.frames import extract_clip
from tests.shared_data import FIGHT_DATA, TUTORIAL_CLASSES, TUTORIAL_H5, require

CLASSES = ["fight", "walk", "run", "idle"]
REAL_CLIPS = ("fight/fi001.mp4", "noFight/nofi004.mp4", "fight/fi075.mp4")


def real_windows(meta: ModelMeta) -> np.ndarray:
    """Windows from real CCTV clips, read the way serving reads them (skips if data absent)."""
    require(FIGHT_DATA)
    frames = _clip_frames(meta.sequence_length, meta.frame_size, meta.resize_interpolation)
    return frames.astype(np.float32) * np.float32(meta.input_scale)


@functools.cache
def _clip_frames(seq: int, size_hw: tuple[int, int], interpolation: Interpolation) -> np.ndarray:
    clips = [extract_clip(FIGHT_DATA / c, seq, size_hw, interpolation) for c in REAL_CLIPS]
    return np.stack([clip.frames for clip in clips])


def random_windows(meta: ModelMeta, n: int = 2, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *meta.input_shape), dtype=np.float32)


def sharpened(model: keras.Model, factor: float = 20.0) -> keras.Model:
    """Scale the output layer so an untrained model's probabilities are far from uniform.

    Near-uniform outputs would hide feature differences of 1e-3 behind a 1e-4 tolerance.
    """
    dense = model.layers[-1]
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel * factor, bias])
    return model


def save_random(out: Path, arch: str, seed: int = 0) -> Path:
    keras.utils.set_random_seed(seed)
    model = sharpened(build_convlstm(4) if arch == "convlstm" else build_lrcn(4))
    meta = ModelMeta(name=f"random-{arch}", classes=CLASSES, frame_spacing_s=0.2, architecture=arch)
    return save_model_dir(out, model, meta)


def import_tutorial(out: Path) -> Path:
    require(TUTORIAL_H5)
    import_keras2_h5(TUTORIAL_H5, list(TUTORIAL_CLASSES), out, frame_spacing_s=0.2)
    return out


def model_dir_for(kind: str, factory: pytest.TempPathFactory, *, exported: bool = False) -> Path:
    """A model directory ("convlstm", "lrcn" random; "tutorial" real), built once per session.

    Cached on disk under the session's temporary root, so test_backends reuses what this
    module built (saving, loading and converting are the slow part of these tests).
    """
    out = factory.getbasetemp() / "shared-models" / kind
    if not (out / "model.json").is_file():
        if kind == "tutorial":
            import_tutorial(out)
        else:
            save_random(out, kind)
    if exported and not (out / TFLITE_FILE).is_file():
        export_tflite(out)
    return out


@pytest.fixture(params=["convlstm", "tutorial", "lrcn"])
def model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return model_dir_for(request.param, tmp_path_factory)


def test_twin_matches_keras_on_real_and_random_windows(model_dir: Path) -> None:
    loaded = load_model_dir(model_dir)
    twin = build_inference_twin(loaded.model)
    x = np.concatenate([real_windows(loaded.meta), random_windows(loaded.meta)])
    ref = loaded.predict(x)
    assert ref.max(axis=1).min() > 0.3 and np.ptp(ref, axis=1).min() > 0.05  # not uniform
    np.testing.assert_allclose(np.asarray(twin(x)), ref, atol=EXPORT_ATOL, rtol=0)


def test_twin_has_no_recurrent_loop_and_no_3d_pooling(model_dir: Path) -> None:
    twin = build_inference_twin(load_model_dir(model_dir).model)
    kinds = {type(stage).__name__ for stage in twin.stages}
    assert kinds <= {"FusedConvLSTM2D", "UnrolledLSTM", "Framewise", "Flat", "Apply"}
    applied = {type(s.source).__name__ for s in twin.stages if type(s).__name__ == "Apply"}
    assert applied == {"Dense"}


def test_export_writes_builtin_only_tflite_and_records_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    model_dir = model_dir_for("lrcn", tmp_path_factory)
    (model_dir / TFLITE_FILE).unlink(missing_ok=True)
    write_meta(model_dir, read_meta(model_dir).model_copy(update={"tflite_file": None}))
    before = read_meta(model_dir)
    out = export_tflite(model_dir)
    assert out == model_dir / TFLITE_FILE and out.read_bytes()[4:8] == b"TFL3"
    meta = read_meta(model_dir)
    assert meta.tflite_file == TFLITE_FILE
    assert meta.model_dump(exclude={"tflite_file"}) == before.model_dump(exclude={"tflite_file"})
    assert sorted(p.name for p in model_dir.iterdir()) == ["model.json", "model.keras", TFLITE_FILE]
    # Readable by a service user other than the one who exported it, like model.keras.
    assert out.stat().st_mode & 0o777 == 0o644
    load_model_dir(model_dir)  # the Keras side still loads

    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # The plain builtin resolver (no Flex/Select TF ops, no custom ops) runs it; without the
    # default delegate the op list is the file's own.
    interp = Interpreter(
        model_path=str(out),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    ops = {op["op_name"] for op in interp._get_ops_details()}
    assert not {"WHILE", "CUSTOM", "DELEGATE"} & ops and not any("Flex" in o for o in ops)
    assert tuple(interp.get_input_details()[0]["shape_signature"]) == (-1, 20, 64, 64, 3)


def _tiny_convlstm(**options: object) -> keras.Model:
    """A small ConvLSTM model exercising the options the twin must reproduce."""
    return_sequences = bool(options.pop("return_sequences", True))
    inputs = keras.Input((5, 17, 15, 3))
    x = layers.ConvLSTM2D(3, (3, 3), return_sequences=True, name="a", **options)(inputs)
    x = layers.MaxPooling3D((1, 2, 2), padding="same")(x)
    x = layers.ConvLSTM2D(5, (3, 3), return_sequences=return_sequences, name="b")(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def _tiny_lstm() -> keras.Model:
    inputs = keras.Input((6, 10, 12, 3))
    x = layers.TimeDistributed(layers.Conv2D(4, 3, activation="relu"))(inputs)
    x = layers.TimeDistributed(layers.AveragePooling2D(2))(x)
    x = layers.TimeDistributed(layers.Flatten())(x)
    x = layers.LSTM(7, return_sequences=True, recurrent_activation="hard_sigmoid")(x)
    x = layers.TimeDistributed(layers.Dense(5, activation="tanh"))(x)
    x = layers.LSTM(6, activation="relu", use_bias=False)(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs)


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: _tiny_convlstm(padding="same"), id="same-padding"),
        pytest.param(lambda: _tiny_convlstm(strides=(2, 2)), id="strides"),
        pytest.param(lambda: _tiny_convlstm(dilation_rate=(2, 2)), id="dilation"),
        pytest.param(lambda: _tiny_convlstm(use_bias=False), id="no-bias"),
        pytest.param(
            lambda: _tiny_convlstm(recurrent_activation="hard_sigmoid", activation="relu"),
            id="keras3-hard-sigmoid-relu",
        ),
        pytest.param(
            lambda: _tiny_convlstm(recurrent_activation=keras2_hard_sigmoid),
            id="keras2-hard-sigmoid",
        ),
        pytest.param(lambda: _tiny_convlstm(return_sequences=False), id="last-step-only"),
        pytest.param(_tiny_lstm, id="lstm"),
    ],
)
def test_twin_and_tflite_reproduce_layer_options(build) -> None:  # type: ignore[no-untyped-def]
    keras.utils.set_random_seed(3)
    model = build()
    # Large random weights: gates away from their linear region, so any mistake shows.
    model.set_weights([w * 3.0 for w in model.get_weights()])
    x = np.random.default_rng(4).random((3, *model.input_shape[1:]), dtype=np.float32)
    ref = np.asarray(model(x, training=False))
    twin = build_inference_twin(model)
    np.testing.assert_allclose(np.asarray(twin(x)), ref, atol=1e-5, rtol=0)
    flat = convert_to_tflite(twin, tuple(model.input_shape[1:]))
    np.testing.assert_allclose(run_tflite(flat, x), ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (layers.GRU(4), "GRU is not supported"),
        (layers.ConvLSTM2D(2, 3, go_backwards=True), "unsupported go_backwards"),
        (layers.MaxPooling3D((2, 2, 2)), "pools over time"),
    ],
)
def test_unsupported_layers_are_refused_by_name(layer: layers.Layer, message: str) -> None:
    inputs = keras.Input((4, 8, 8, 3))
    x = inputs
    if isinstance(layer, layers.GRU):
        x = layers.TimeDistributed(layers.Flatten())(x)
    x = layer(x)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(x)))
    with pytest.raises(ModelError, match=message) as err:
        build_inference_twin(model)
    assert layer.name in str(err.value) and "\n" not in str(err.value)


def test_branching_model_is_refused() -> None:
    inputs = keras.Input((4, 8, 8, 3))
    a = layers.ConvLSTM2D(2, 3, return_sequences=False)(inputs)
    b = layers.ConvLSTM2D(2, 3, return_sequences=False)(inputs)
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(layers.Add()([a, b]))))
    with pytest.raises(ModelError, match="straight chains"):
        build_inference_twin(model)


def test_export_of_a_missing_model_directory_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        export_tflite(tmp_path / "nope")
