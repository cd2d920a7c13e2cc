"""The input transform recorded in model.json is applied identically in training and serving."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.meta import ModelMeta
from har_daemon.model.preprocess import to_model_input


def _window(rng: np.random.Generator, batch: int = 2) -> np.ndarray:
    return rng.integers(0, 256, size=(batch, 20, 8, 8, 3), dtype=np.uint8)


def test_frame_diff_is_the_change_between_consecutive_scaled_frames() -> None:
    w = _window(np.random.default_rng(0))
    x = to_model_input(w, "BGR", 1 / 255, "frame_diff")
    frames = w.astype(np.float32) / 255
    assert x.shape == w.shape and x.dtype == np.float32
    assert np.all(x[:, 0] == 0)
    np.testing.assert_allclose(x[:, 1:], frames[:, 1:] - frames[:, :-1], atol=1e-6)


def test_frame_diff_of_a_static_scene_is_zero_whatever_the_background() -> None:
    still = np.repeat(_window(np.random.default_rng(1), 1)[:, :1], 20, axis=1)
    assert np.count_nonzero(to_model_input(still, transform="frame_diff")) == 0
    assert np.count_nonzero(to_model_input(still)) > 0


def test_frame_diff_honours_colour_order() -> None:
    w = _window(np.random.default_rng(2))
    rgb = to_model_input(w, "RGB", 1 / 255, "frame_diff")
    bgr = to_model_input(w, "BGR", 1 / 255, "frame_diff")
    np.testing.assert_array_equal(rgb, bgr[..., ::-1])


def test_unbatched_window_works_and_unknown_transform_is_refused() -> None:
    w = _window(np.random.default_rng(3), 1)[0]
    assert to_model_input(w, transform="frame_diff").shape == w.shape
    with pytest.raises(ValueError, match="unknown input transform"):
        to_model_input(w, transform="optical_flow")  # type: ignore[arg-type]


def test_model_json_defaults_to_frames_for_older_model_directories() -> None:
    meta = ModelMeta(name="m", classes=["a", "b"], frame_spacing_s=0.1, architecture="convlstm")
    assert meta.input_transform == "frames"
    assert ModelMeta.model_validate({**meta.model_dump(), "input_transform": "frame_diff"})


def test_inference_scheduler_feeds_the_model_what_training_fed_it() -> None:
    """The daemon's batches go through the same transform as training batches."""
    from har_daemon.runtime.events import ActivityTracker, TrackerConfig
    from har_daemon.runtime.inference import CameraPipeline, InferenceScheduler
    from har_daemon.runtime.ring import FrameRing, StrideSchedule
    from har_daemon.runtime.smoothing import Smoother

    meta = ModelMeta(
        name="m",
        classes=["a", "b"],
        frame_spacing_s=0.1,
        architecture="convlstm",
        frame_height=8,
        frame_width=8,
        input_transform="frame_diff",
    )
    seen: list[np.ndarray] = []

    class RecordingBackend:
        def predict(self, batch: np.ndarray) -> np.ndarray:
            seen.append(batch.copy())
            return np.tile(np.array([[0.5, 0.5]], np.float32), (len(batch), 1))

    ring = FrameRing(20, (8, 8, 3))
    frames = _window(np.random.default_rng(4), 1)[0]
    for i, f in enumerate(frames):
        ring.push(f, float(i))
    pipe = CameraPipeline(
        "cam",
        ring,
        StrideSchedule(1),
        Smoother("mean", 1),
        ActivityTracker(TrackerConfig(), meta.classes),
    )
    InferenceScheduler(RecordingBackend(), meta, [pipe], lambda r: None).run_once()
    assert len(seen) == 1
    np.testing.assert_allclose(seen[0][0], to_model_input(frames, transform="frame_diff"))
