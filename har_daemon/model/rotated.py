"""A second, turned look at a region of the frame: for people lying down.

COCO-trained detectors and single-pose models learned on mostly upright people, and they lose
a person lying across the view (GMDCSA24 actor 3: the detector drops the lying actor within
0.2-0.8 s of the fall). Turned by 90 degrees, a lying person stands (or hangs) upright, which
is what those models know. Here: the region around a person's last box, the region turned by
a quarter turn either way, and points and boxes found in the turned image mapped back to frame
pixels. Pure (no model, no I/O); runtime.lying decides when to look and calls the models.

Coordinates are continuous pixels (pixel i spans [i, i+1)), as the models' outputs are, so a
point mapped to the turned image and back lands exactly where it was.
"""

from __future__ import annotations

import cv2
import numpy as np

from har_daemon.model.pose import MIN_KEYPOINT_SCORE

LOOK_SCALE = 1.75
"""The region looked at: the person's last box grown this much about its centre (a person who
is going down ends up beside or below where their box was), clipped to the frame."""

Region = tuple[int, int, int, int]
"""x0, y0, x1, y1 in whole frame pixels, inside the frame, not empty."""


def look_region(
    box: np.ndarray | tuple[float, ...], frame_hw: tuple[int, int], scale: float = LOOK_SCALE
) -> Region | None:
    """The square of `scale` times the box's longer side about its centre, clipped to the
    frame; None when nothing of it is inside the frame."""
    x1, y1, x2, y2 = (float(v) for v in list(box)[:4])
    half = max(x2 - x1, y2 - y1, 1.0) * scale / 2.0
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    h, w = frame_hw
    x0, y0 = max(0, int(np.floor(cx - half))), max(0, int(np.floor(cy - half)))
    xe, ye = min(w, int(np.ceil(cx + half))), min(h, int(np.ceil(cy + half)))
    return (x0, y0, xe, ye) if xe > x0 and ye > y0 else None


def turn_crop(frame: np.ndarray, region: Region, clockwise: bool) -> np.ndarray:
    """The region's pixels turned a quarter turn (a copy, `region`'s height wide)."""
    x0, y0, x1, y1 = region
    code = cv2.ROTATE_90_CLOCKWISE if clockwise else cv2.ROTATE_90_COUNTERCLOCKWISE
    return cv2.rotate(np.ascontiguousarray(frame[y0:y1, x0:x1]), code)


def to_turned(points: np.ndarray, region: Region, clockwise: bool) -> np.ndarray:
    """(N, >=2) frame points `x, y, ...` -> the same points in `turn_crop`'s image."""
    x0, y0, x1, y1 = region
    p = np.array(points, np.float64)
    x, y = p[:, 0] - x0, p[:, 1] - y0
    if clockwise:  # (x, y) -> (h - y, x)
        p[:, 0], p[:, 1] = (y1 - y0) - y, x
    else:  # (x, y) -> (y, w - x)
        p[:, 0], p[:, 1] = y, (x1 - x0) - x
    return p


def to_frame(points: np.ndarray, region: Region, clockwise: bool) -> np.ndarray:
    """(N, >=2) points `x, y, ...` of `turn_crop`'s image -> frame pixels (other columns kept)."""
    x0, y0, x1, y1 = region
    p = np.array(points, np.float64)
    u, v = p[:, 0].copy(), p[:, 1].copy()
    if clockwise:  # inverse of (x, y) -> (h - y, x)
        p[:, 0], p[:, 1] = x0 + v, y0 + (y1 - y0) - u
    else:  # inverse of (x, y) -> (y, w - x)
        p[:, 0], p[:, 1] = x0 + (x1 - x0) - v, y0 + u
    return p


def box_to_frame(box: np.ndarray, region: Region, clockwise: bool) -> np.ndarray:
    """An `x1, y1, x2, y2[, score]` box of the turned image -> the frame box holding it."""
    b = np.asarray(box, np.float64)
    corners = to_frame(np.array([[b[0], b[1]], [b[2], b[3]]]), region, clockwise)
    lo, hi = corners.min(axis=0), corners.max(axis=0)
    return np.array([lo[0], lo[1], hi[0], hi[1], *b[4:5]], np.float32)


def keypoint_box(keypoints: np.ndarray, score: float = 1.0) -> np.ndarray | None:
    """The `x1, y1, x2, y2, score` box around the seen keypoints (None with under two): the
    person's extent when no detector box was found."""
    kp = np.asarray(keypoints, np.float32)
    seen = kp[kp[:, 2] >= MIN_KEYPOINT_SCORE]
    if len(seen) < 2:
        return None
    lo, hi = seen[:, :2].min(axis=0), seen[:, :2].max(axis=0)
    return np.array([lo[0], lo[1], hi[0], hi[1], score], np.float32)
