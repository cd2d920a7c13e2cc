"""The scale-to-width rule."""

from __future__ import annotations

import pytest

from har_daemon.core.geometry import fit_width_size


@pytest.mark.parametrize(
    ("size", "max_width", "fitted"),
    [
        ((1920, 1080), 640, (640, 360)),
        ((640, 480), 640, (640, 480)),
        ((320, 240), 640, (320, 240)),  # never scaled up
        ((1920, 1080), None, (1920, 1080)),
        ((3840, 10), 640, (640, 2)),
        ((10000, 1), 100, (100, 1)),  # at least one row
        ((1001, 1000), 1000, (1000, 999)),  # rounded (999.0009...)
    ],
)
def test_fit_width_size(
    size: tuple[int, int], max_width: int | None, fitted: tuple[int, int]
) -> None:
    assert fit_width_size(*size, max_width) == fitted
