"""The Keras model as an inference backend: one traced graph call per batch (needs TensorFlow).

The fallback for a model directory without a LiteRT export, and the reference the export is
checked against; a camera box normally runs the `litert` backend instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from har_daemon.core.logs import get_logger
from har_daemon.model.backends import as_batch
from har_daemon.model.keras.store import load_model_dir

log = get_logger(__name__)


class KerasBackend:
    """The Keras model through one traced graph call per batch (needs TensorFlow)."""

    name = "keras"

    def __init__(self, model_dir: Path | str, threads: int | None = None) -> None:
        if threads:
            _set_tf_threads(threads)
        self._loaded = load_model_dir(model_dir)
        self.meta = self._loaded.meta
        self.model = self._loaded.model
        """The Keras model itself: `bench` times its `model.predict`, the tutorial's way."""

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = as_batch(batch, self.meta)
        if not len(x):
            return np.zeros((0, len(self.meta.classes)), np.float32)
        return self._loaded.predict(x)


def _set_tf_threads(threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # TensorFlow already ran something in this process
        log.warning("keras.threads_not_applied", threads=threads)
