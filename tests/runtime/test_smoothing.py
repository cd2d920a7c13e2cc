"""Smoother: moving mean and EMA numbers."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.runtime.smoothing import Smoother

A = [1.0, 0.0]
B = [0.0, 1.0]
C = [0.5, 0.5]


def test_mean_averages_the_last_k_vectors() -> None:
    s = Smoother("mean", window=3)
    np.testing.assert_allclose(s.update(A), [1.0, 0.0])  # first value = first vector
    np.testing.assert_allclose(s.update(B), [0.5, 0.5])
    np.testing.assert_allclose(s.update(B), [1 / 3, 2 / 3])
    np.testing.assert_allclose(s.update(C), [(0 + 0 + 0.5) / 3, (1 + 1 + 0.5) / 3])  # A left
    np.testing.assert_allclose(s.update(A), [(0 + 0.5 + 1) / 3, (1 + 0.5 + 0) / 3])


def test_mean_window_one_is_identity() -> None:
    s = Smoother("mean", window=1)
    for v in (A, B, C):
        np.testing.assert_allclose(s.update(v), v)


def test_ema_numbers() -> None:
    s = Smoother("ema", alpha=0.25)
    np.testing.assert_allclose(s.update(A), [1.0, 0.0])
    np.testing.assert_allclose(s.update(B), [0.75, 0.25])
    np.testing.assert_allclose(s.update(B), [0.5625, 0.4375])
    s1 = Smoother("ema", alpha=1.0)
    s1.update(A)
    np.testing.assert_allclose(s1.update(B), B)


def test_reset_forgets_history() -> None:
    for s in (Smoother("mean", window=4), Smoother("ema", alpha=0.5)):
        s.update(A)
        s.update(A)
        s.reset()
        assert s.value is None
        np.testing.assert_allclose(s.update(B), B)


def test_returns_copies_and_keeps_value() -> None:
    s = Smoother("mean", window=2)
    out = s.update(A)
    out[:] = 7
    np.testing.assert_allclose(s.value, A)
    np.testing.assert_allclose(s.update(np.array(B, dtype=np.float32)), [0.5, 0.5])


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        Smoother("median")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Smoother("mean", window=0)
    with pytest.raises(ValueError):
        Smoother("ema", alpha=0.0)
    s = Smoother()
    s.update(A)
    with pytest.raises(ValueError, match="length changed"):
        s.update([0.2, 0.3, 0.5])
    with pytest.raises(ValueError, match="1-D"):
        Smoother().update([[1.0, 0.0]])


def test_refusals_say_what_is_wrong() -> None:
    """The config's bounds are checked again here: alpha is a weight, at most 1."""
    with pytest.raises(ValueError, match="^smoothing method must be 'mean' or 'ema', got 'x'$"):
        Smoother("x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="^smoothing window must be >= 1, got 0$"):
        Smoother("mean", window=0)
    for alpha in (0.0, 1.5, -0.5):
        with pytest.raises(ValueError, match=rf"^ema alpha must be in \(0, 1\], got {alpha}$"):
            Smoother("ema", alpha=alpha)
    assert Smoother("ema", alpha=1.0).alpha == 1.0  # the bound itself is allowed


@pytest.mark.parametrize("method", ["mean", "ema"])
def test_the_first_value_is_float64_whatever_came_in(method: str) -> None:
    """A float32 or integer vector from a model is smoothed, and returned, as float64."""
    for probs in (np.array([0.25, 0.75], dtype=np.float32), [1, 0]):
        s = Smoother(method, window=3, alpha=0.5)  # type: ignore[arg-type]
        first = s.update(probs)
        assert first.dtype == np.float64 and s.value is not None and s.value.dtype == np.float64
        np.testing.assert_array_equal(first, np.asarray(probs, dtype=np.float64))
