"""Where points lie in zones and which pixels masks cover (pure: numpy and OpenCV, no I/O).

The polygons are normalised and already valid (`core.polygons.polygon_problem` checked them
when the configuration was read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import cv2
import numpy as np

from har_daemon.core.polygons import Point, Polygon, open_ring


def contains(points: Polygon, x: float, y: float) -> bool:
    """True when the normalised point (x, y) lies inside or on the edge of the polygon."""
    contour = np.asarray(open_ring(points), np.float32).reshape(-1, 1, 2)
    return cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0


def zones_at(zones: Mapping[str, Polygon], x: float, y: float) -> list[str]:
    """The names of the zones holding the normalised point (x, y), in the zones' order."""
    return [name for name, pts in zones.items() if contains(pts, x, y)]


def mask_raster(masks: Iterable[Polygon], frame_hw: tuple[int, int]) -> np.ndarray | None:
    """An HxW bool array, True where any mask covers the frame; None without masks."""
    polys = [
        np.round(np.asarray(open_ring(p), np.float64) * (frame_hw[1], frame_hw[0])).astype(np.int32)
        for p in masks
    ]
    if not polys:
        return None
    raster = np.zeros(frame_hw, np.uint8)
    cv2.fillPoly(raster, polys, 1)
    return raster.astype(bool)


def foot_point(box: Sequence[float], frame_hw: tuple[int, int]) -> Point:
    """Where a person box's person stands: the middle of its bottom edge, normalised."""
    x1, _y1, x2, y2 = (float(v) for v in box[:4])
    return (x1 + x2) / 2 / frame_hw[1], y2 / frame_hw[0]
