"""What every inference backend is: probabilities for a batch of windows, and how to feed it.

The backends themselves live in `model.litert` (the daemon's, no TensorFlow) and
`model.keras.backend` (needs TensorFlow); `model.registry` picks one.
"""

from __future__ import annotations

import os
from typing import Protocol, get_args

import numpy as np

from har_daemon.config import Backend
from har_daemon.model.meta import ModelMeta

BackendKind = Backend
BACKENDS: tuple[str, ...] = get_args(Backend)
"""`auto`: `litert` when the model directory has its LiteRT export, else `keras`."""


class Backend(Protocol):
    """What the inference thread needs: probabilities for a batch, and how to feed it."""

    name: str
    meta: ModelMeta

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities (N, classes) for float32 windows (N, T, H, W, 3)."""
        ...


def default_threads() -> int:
    """All cores up to 4: the model's per-step ops are small, more threads mostly synchronise."""
    return max(1, min(4, os.cpu_count() or 1))


def as_batch(batch: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """Contiguous float32 (N, T, H, W, C) windows; a single window gets its batch axis."""
    x = np.asarray(batch, dtype=np.float32)
    if x.ndim == 4:
        x = x[None]
    if x.ndim != 5 or tuple(x.shape[1:]) != meta.input_shape:
        raise ValueError(
            f"expected windows of shape (N, {', '.join(map(str, meta.input_shape))}), got {x.shape}"
        )
    return np.ascontiguousarray(x)
