"""Temporal smoothing of per-window class probabilities (one `Smoother` per camera).

"mean" averages the last `window` probability vectors (a moving average: a one-window glitch
moves the score by 1/window); "ema" is an exponential moving average, `alpha` being the weight
of the newest vector (1.0 = no smoothing). Both start from the first vector seen, so the first
smoothed value equals the first prediction.
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import numpy.typing as npt

from har_daemon.config import InferenceConfig, SmoothingMethod, default_of

METHODS: tuple[str, ...] = get_args(SmoothingMethod)
DEFAULT_METHOD: SmoothingMethod = default_of(InferenceConfig, "smoothing")
DEFAULT_WINDOW: int = default_of(InferenceConfig, "smoothing_window")
DEFAULT_ALPHA: float = default_of(InferenceConfig, "ema_alpha")


class Smoother:
    """Smooths a stream of equally long probability vectors."""

    def __init__(
        self,
        method: SmoothingMethod = DEFAULT_METHOD,
        window: int = DEFAULT_WINDOW,
        alpha: float = DEFAULT_ALPHA,
    ):
        if method not in METHODS:
            raise ValueError(f"smoothing method must be 'mean' or 'ema', got {method!r}")
        if window < 1:
            raise ValueError(f"smoothing window must be >= 1, got {window}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"ema alpha must be in (0, 1], got {alpha}")
        self.method: SmoothingMethod = method
        self.window = int(window)
        self.alpha = float(alpha)
        self._history: np.ndarray | None = None  # (window, n) for "mean"
        self._next = 0  # row of _history the next vector overwrites
        self._seen = 0  # vectors since the last reset
        self._value: np.ndarray | None = None

    def reset(self) -> None:
        """Forget all history (after a stream gap, or when an event source restarts)."""
        self._seen = 0
        self._next = 0
        self._value = None

    @property
    def value(self) -> np.ndarray | None:
        """The last smoothed vector (a copy), or None before the first update."""
        return None if self._value is None else self._value.copy()

    def update(self, probs: npt.ArrayLike) -> np.ndarray:
        """Add one probability vector; return the smoothed vector (a new float64 array)."""
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 1:
            raise ValueError(f"expected a 1-D probability vector, got shape {p.shape}")
        if self._value is not None and p.shape != self._value.shape:
            raise ValueError(f"vector length changed from {self._value.shape[0]} to {p.shape[0]}")
        if self.method == "ema":
            if self._value is None:
                self._value = p.copy()
            else:
                self._value = self.alpha * p + (1.0 - self.alpha) * self._value
        else:
            if self._history is None or self._history.shape[1] != p.shape[0]:
                self._history = np.zeros((self.window, p.shape[0]), dtype=np.float64)
            self._history[self._next] = p
            self._next = (self._next + 1) % self.window
            self._seen += 1
            n = min(self._seen, self.window)
            # Since the last reset rows [0, n) hold the vectors seen (all rows once it wraps).
            self._value = self._history[:n].mean(axis=0)
        return self._value.copy()
