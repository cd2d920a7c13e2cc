"""Where to look for a tracked person between the detector's looks: from their last keypoints.

MoveNet's own single-pose tracking (Google's tutorial, `determine_crop_region`) crops each
frame around the keypoints of the frame before instead of running a detector. Here: the box
around the person's confidently seen keypoints (model.rotated.keypoint_box), grown by
`TRACK_GROW` of its longer side on every side so that someone walking or falling in the 0.2 s
between looks stays inside; with fewer than `TRACK_MIN_KEYPOINTS` seen, their last box grown
the same; clipped to the frame. The pose model's crop (model.pose.crop_square) adds its own
room around what this returns. Pure (no model, no I/O); runtime.falls calls the models.
"""

from __future__ import annotations

import numpy as np

from har_daemon.model.pose import MIN_KEYPOINT_SCORE
from har_daemon.model.rotated import keypoint_box

TRACK_GROW = 0.25
"""Room around the last keypoints, a fraction of their box's longer side on every side: a fall
drops the hips ~0.3 of the body height in 0.2 s, walking moves a person ~0.15."""
TRACK_MIN_KEYPOINTS = 5
"""Fewer keypoints seen than this say too little about where the body is: the last box then."""
SEEN_PAD = (0.05, 0.10, 0.05, 0.05)
"""The box of a person found by tracking: their seen keypoints' box grown by these fractions
of its longer side (left, top, right, bottom), so that it matches the detector's (the head's
top above the eyes, the feet below the ankles) and box features (height, top) mean the same on
both kinds of look. Measured: the median room between the detector's best box and MoveNet's
keypoints on it, 49 well-seen people of 7 GMDCSA24 and ASSIST-IoT everyday clips, was
0.049 / 0.105 / 0.044 / 0.047."""

Pad = tuple[float, float, float, float]


def _grow(
    box: np.ndarray | tuple[float, ...], pad: Pad, frame_hw: tuple[int, int]
) -> np.ndarray | None:
    """`box` grown by `pad` (fractions of its longer side) and clipped to the frame."""
    x1, y1, x2, y2 = (float(v) for v in list(box)[:4])
    side = max(x2 - x1, y2 - y1, 1.0)
    h, w = frame_hw
    x1, y1 = max(x1 - pad[0] * side, 0.0), max(y1 - pad[1] * side, 0.0)
    x2, y2 = min(x2 + pad[2] * side, float(w)), min(y2 + pad[3] * side, float(h))
    if x2 <= x1 or y2 <= y1:
        return None
    return np.array([x1, y1, x2, y2], np.float32)


def track_region(
    keypoints: np.ndarray,
    last_box: np.ndarray | tuple[float, ...],
    frame_hw: tuple[int, int],
    grow: float = TRACK_GROW,
) -> np.ndarray | None:
    """The `x1, y1, x2, y2, 1` box to run the pose model on for a person whose last keypoints
    ((17, 3) `x, y, score`, frame pixels) and box these are; None when none of it is inside
    the frame."""
    kp = np.asarray(keypoints, np.float32)
    seen = int(np.sum(kp[:, 2] >= MIN_KEYPOINT_SCORE))
    around = keypoint_box(kp) if seen >= TRACK_MIN_KEYPOINTS else None
    box = _grow(last_box if around is None else around, (grow,) * 4, frame_hw)
    return None if box is None else np.array([*box, 1.0], np.float32)


def seen_box(
    keypoints: np.ndarray, frame_hw: tuple[int, int], score: float = 1.0
) -> np.ndarray | None:
    """The `x1, y1, x2, y2, score` box of a person found by tracking (`SEEN_PAD`, clipped to
    the frame); None with under two keypoints seen."""
    around = keypoint_box(keypoints, score)
    box = None if around is None else _grow(around, SEEN_PAD, frame_hw)
    return None if box is None else np.array([*box, score], np.float32)
