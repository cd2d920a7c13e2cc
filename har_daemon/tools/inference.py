"""The inference figures of `har-daemon bench`, timed in this process.

The tutorial's `model.predict` on one window (the baseline), the keras backend's compiled call
and the litert backend, one window and a batch of 8; preprocessing is the shipped
`resize_frame` on a 1080p frame, next to OpenCV's exact INTER_AREA.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon.core.stderr import native_stderr_held
from har_daemon.model.keras.store import load_model_dir
from har_daemon.model.preprocess import resize_frame
from har_daemon.model.registry import create_backend
from har_daemon.tools.streams import progress

__all__ = ["measure_inference", "median_ms"]


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


def measure_inference(model_dir: Path, runs: int, threads: int | None) -> dict[str, Any]:
    """Medians in ms per window: model.predict, keras compiled call, litert (1 and 8)."""
    # Loading is where TensorFlow looks for a GPU: on a machine without one it prints a cuInit
    # error that says nothing about the measurement.
    with native_stderr_held():
        loaded = load_model_dir(model_dir)
    meta = loaded.meta
    rng = np.random.default_rng(0)
    one = rng.random((1, *meta.input_shape), dtype=np.float32)
    eight = rng.random((8, *meta.input_shape), dtype=np.float32)
    model: Any = loaded.model

    progress("timing model.predict (the tutorial's way)")
    predict_ms = median_ms(lambda: model.predict(one, verbose=0), max(10, runs // 3))
    progress("timing the keras backend")
    keras_ms = median_ms(lambda: loaded.predict(one), runs)
    progress("timing the litert backend")
    litert = create_backend("litert", model_dir, threads=threads)
    litert_ms = median_ms(lambda: litert.predict(one), runs)
    batch8_ms = median_ms(lambda: litert.predict(eight), runs) / 8.0
    fast_backend, fast_ms = min((("litert", litert_ms), ("keras", keras_ms)), key=lambda x: x[1])

    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    hw = meta.frame_size
    shipped_us = 1000 * median_ms(
        lambda: resize_frame(frame, hw, meta.resize_interpolation), runs * 4
    )
    exact_us = 1000 * median_ms(
        lambda: cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_AREA), runs
    )
    return {
        "predict_ms": round(predict_ms, 2),
        "fast_ms": round(fast_ms, 2),
        "fast_backend": fast_backend,
        "keras_ms": round(keras_ms, 2),
        "batch8_ms_per_window": round(batch8_ms, 2),
        "speedup": round(predict_ms / fast_ms, 2),
        "preprocess_us_1080p": round(shipped_us, 1),
        "preprocess_interpolation": meta.resize_interpolation,
        "preprocess_us_1080p_exact_inter_area": round(exact_us, 1),
        "inference_threads": getattr(litert, "threads", threads),
    }
