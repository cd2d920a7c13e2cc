"""Frame sizes: the one rule for scaling a frame down to a width, shared by the frame history,
snapshots and clips so that all three agree on a frame's size."""

from __future__ import annotations


def fit_width_size(width: int, height: int, max_width: int | None) -> tuple[int, int]:
    """(width, height) of a `width` x `height` frame scaled down to at most `max_width` pixels
    wide, aspect kept (height rounded, at least 1); unchanged when narrow enough or no limit."""
    if max_width is None or width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))
