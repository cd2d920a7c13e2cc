"""The inference figures of `har-daemon bench`, timed in this process.

The tutorial's `model.predict` on one window (the baseline), the keras backend's compiled call
and the litert backend, one window and a batch of 8; preprocessing is the shipped
`resize_frame` on a 1080p frame, next to OpenCV's exact INTER_AREA. The two Keras figures need
TensorFlow (the `[train]` extra): on a daemon-only install they are null, with the reason, and
the rest is measured all the same (the daemon serves litert).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon.core.errors import TRAIN_EXTRA_HINT
from har_daemon.core.stderr import native_stderr_held
from har_daemon.model.meta import read_meta
from har_daemon.model.preprocess import resize_frame
from har_daemon.model.registry import create_backend, has_tensorflow
from har_daemon.tools.streams import progress

__all__ = ["KERAS_SKIPPED", "measure_inference", "median_ms"]

KERAS_SKIPPED = f"skipped: TensorFlow is not installed ({TRAIN_EXTRA_HINT})"
"""`keras_baseline` where the Keras figures (predict_ms, keras_ms, speedup) cannot be taken."""


def median_ms(fn: Callable[[], object], runs: int, warmup: int = 3) -> float:
    """Median wall time of `fn` in milliseconds over `runs` calls, after `warmup` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _keras_ms(model_dir: Path, one: np.ndarray, runs: int) -> tuple[float, float]:
    """model.predict (the tutorial's way) and the keras backend's compiled call, in ms."""
    # Loading is where TensorFlow looks for a GPU: on a machine without one it prints a cuInit
    # error that says nothing about the measurement.
    with native_stderr_held():
        backend: Any = create_backend("keras", model_dir)
    progress("timing model.predict (the tutorial's way)")
    predict_ms = median_ms(lambda: backend.model.predict(one, verbose=0), max(10, runs // 3))
    progress("timing the keras backend")
    return predict_ms, median_ms(lambda: backend.predict(one), runs)


def measure_inference(model_dir: Path, runs: int, threads: int | None) -> dict[str, Any]:
    """Medians in ms per window: model.predict, keras compiled call, litert (1 and 8)."""
    meta = read_meta(model_dir)
    rng = np.random.default_rng(0)
    one = rng.random((1, *meta.input_shape), dtype=np.float32)
    eight = rng.random((8, *meta.input_shape), dtype=np.float32)
    predict_ms = keras_ms = None
    if has_tensorflow():
        predict_ms, keras_ms = _keras_ms(model_dir, one, runs)
    else:
        progress(f"Keras baseline {KERAS_SKIPPED}")
    progress("timing the litert backend")
    litert = create_backend("litert", model_dir, threads=threads)
    litert_ms = median_ms(lambda: litert.predict(one), runs)
    batch8_ms = median_ms(lambda: litert.predict(eight), runs) / 8.0
    timed = [("litert", litert_ms), *([] if keras_ms is None else [("keras", keras_ms)])]
    fast_backend, fast_ms = min(timed, key=lambda x: x[1])

    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    hw = meta.frame_size
    shipped_us = 1000 * median_ms(
        lambda: resize_frame(frame, hw, meta.resize_interpolation), runs * 4
    )
    exact_us = 1000 * median_ms(
        lambda: cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_AREA), runs
    )
    return {
        "keras_baseline": KERAS_SKIPPED if keras_ms is None else "measured",
        "predict_ms": _ms(predict_ms),
        "fast_ms": round(fast_ms, 2),
        "fast_backend": fast_backend,
        "keras_ms": _ms(keras_ms),
        "batch8_ms_per_window": round(batch8_ms, 2),
        "speedup": None if predict_ms is None else round(predict_ms / fast_ms, 2),
        "preprocess_us_1080p": round(shipped_us, 1),
        "preprocess_interpolation": meta.resize_interpolation,
        "preprocess_us_1080p_exact_inter_area": round(exact_us, 1),
        "inference_threads": getattr(litert, "threads", threads),
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
