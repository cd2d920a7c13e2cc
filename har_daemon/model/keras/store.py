"""Model directories: the Keras file plus `model.json`, checked against each other on load.

A model that is fed frames of the wrong size, order or scale still returns confident-looking
probabilities, so every mismatch we can detect is a hard error at load time, not a bad event at
3 a.m.
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf

from har_daemon.core.errors import ModelError
from har_daemon.model.keras import compat
from har_daemon.model.meta import ModelMeta, read_meta, write_meta

KERAS_FILE = "model.keras"


@dataclass
class LoadedModel:
    """A Keras model with the metadata that says how to feed it."""

    model: keras.Model
    meta: ModelMeta
    path: Path

    def __post_init__(self) -> None:
        self._fn: Callable[[np.ndarray], np.ndarray] | None = None

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Probabilities for a batch (N, T, H, W, 3) float32, or a single window (T, H, W, 3)."""
        if self._fn is None:
            self._fn = compiled_predictor(self.model, self.meta.input_shape)
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 4:
            x = x[None]
        return self._fn(x)


def compiled_predictor(
    model: object, input_shape: tuple[int, ...]
) -> Callable[[np.ndarray], np.ndarray]:
    """One traced graph call per batch.

    `model.predict` builds a data pipeline on every call and an eager call dispatches every op
    from Python (tens to hundreds of ms per window); a `tf.function` with a fixed signature costs
    only the arithmetic.
    """
    spec = tf.TensorSpec((None, *input_shape), tf.float32)

    @tf.function(input_signature=[spec], reduce_retracing=True)
    def infer(batch):  # type: ignore[no-untyped-def]
        return model(batch, training=False)  # type: ignore[operator]

    return lambda x: np.asarray(infer(np.asarray(x, dtype=np.float32)))


def _load_keras_file(path: Path) -> object:
    try:
        if path.suffix == ".h5":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return keras.models.load_model(
                    path, compile=False, custom_objects=compat.KERAS2_CUSTOM_OBJECTS
                )
        if path.suffix == ".keras" and not zipfile.is_zipfile(path):
            raise ModelError(f"cannot load model file {path}: not a valid .keras archive")
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except ModelError:
        raise
    except Exception as exc:
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"cannot load model file {path}: {msg[:300]}") from None


def check_model_against_meta(model: object, meta: ModelMeta, where: Path) -> None:
    """Raise ModelError if the network's input/output shapes disagree with `model.json`."""
    in_shape = tuple(model.input_shape)  # type: ignore[attr-defined]
    out_shape = tuple(model.output_shape)  # type: ignore[attr-defined]
    expected_in = (None, *meta.input_shape)
    if len(in_shape) != 5:
        raise ModelError(
            f"{where}: model input has shape {in_shape}; expected (batch, frames, height, "
            "width, channels)"
        )
    names = ("batch", "sequence_length", "frame_height", "frame_width", "channels")
    for name, got, want in zip(names, in_shape, expected_in, strict=True):
        if name != "batch" and got is not None and got != want:
            raise ModelError(
                f"{where}: model.json says {name} = {want} but the model's input has {got} "
                f"(input shape {in_shape})"
            )
    if len(out_shape) != 2 or out_shape[-1] != len(meta.classes):
        raise ModelError(
            f"{where}: model.json lists {len(meta.classes)} classes but the model outputs "
            f"shape {out_shape}"
        )


def load_model_dir(path: Path | str) -> LoadedModel:
    """Load a model directory, failing with one clear line on anything inconsistent."""
    path = Path(path)
    meta = read_meta(path)
    model_file = path / meta.model_file
    if not model_file.is_file():
        raise ModelError(f"model directory {path}: model file {meta.model_file} is missing")
    model = _load_keras_file(model_file)
    check_model_against_meta(model, meta, path)
    return LoadedModel(model=model, meta=meta, path=path)


def save_model_dir(out_dir: Path | str, model: object, meta: ModelMeta) -> Path:
    """Write the Keras file and `model.json`; the metadata is checked against the model first."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # A LiteRT export of the previous weights would silently serve the old model.
    meta = meta.model_copy(update={"model_file": KERAS_FILE, "tflite_file": None})
    (out_dir / "model.tflite").unlink(missing_ok=True)
    check_model_against_meta(model, meta, out_dir)
    tmp = out_dir / (KERAS_FILE + ".tmp.keras")
    model.save(tmp)  # type: ignore[attr-defined]
    tmp.replace(out_dir / KERAS_FILE)
    write_meta(out_dir, meta)
    return out_dir


def import_keras2_h5(
    h5_path: Path | str,
    classes: Sequence[str],
    out_dir: Path | str,
    *,
    frame_spacing_s: float,
    name: str | None = None,
    resize_interpolation: str = "linear",
    color_order: str = "BGR",
) -> LoadedModel:
    """Turn a Keras 2 `.h5` (tutorial code) into a normal model directory.

    Defaults describe the tutorial's preprocessing: BGR frames from OpenCV, `cv2.resize`'s
    default (bilinear) filter, scaled to [0, 1].
    """
    h5_path = Path(h5_path)
    if not h5_path.is_file():
        raise ModelError(f"model file {h5_path} does not exist")
    model = _load_keras_file(h5_path)
    in_shape = tuple(model.input_shape)  # type: ignore[attr-defined]
    if len(in_shape) != 5:
        raise ModelError(f"{h5_path}: input shape {in_shape} is not a video model's")
    _, seq, h, w, _ = in_shape
    if None in (seq, h, w):
        raise ModelError(f"{h5_path}: input shape {in_shape} must fix frames, height and width")

    meta = ModelMeta(
        name=name or h5_path.stem,
        classes=list(classes),
        sequence_length=seq,
        frame_height=h,
        frame_width=w,
        color_order=color_order,  # type: ignore[arg-type]
        resize_interpolation=resize_interpolation,  # type: ignore[arg-type]
        frame_spacing_s=frame_spacing_s,
        architecture="imported-keras2",
        provenance={
            "imported_from": h5_path.name,
            "source_keras_version": _h5_keras_version(h5_path),
            "imported_with_keras": keras.__version__,
        },
    )
    out_dir = Path(out_dir)
    check_model_against_meta(model, meta, h5_path)
    save_model_dir(out_dir, model, meta)
    return load_model_dir(out_dir)


def _h5_keras_version(path: Path) -> str | None:
    with h5py.File(path, "r") as f:
        v = f.attrs.get("keras_version")
    return v.decode() if isinstance(v, bytes) else (str(v) if v is not None else None)
