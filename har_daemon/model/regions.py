"""Person-centric windows: where the people are, and the crop the activity model sees (pure).

A person 80 px tall in a 576-line CCTV frame is 9 px in the whole frame shrunk to 64x64: a
model fed that learns scene texture, not what people do. So the people found over a window are
grouped, each group becomes one square region, and the window's frames are cropped to it. One
region per group keeps the motion between nearby people (a fight) in one crop, while groups
far apart are classified separately. Training, evaluation, `predict` and the daemon all cut
their windows with these functions and the model's `PersonRegion` rules.

Boxes are float arrays `x1, y1, x2, y2[, score]` in working-frame pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from har_daemon.model.meta import ModelMeta, PersonRegion
from har_daemon.model.preprocess import Interpolation, resize_frame

Region = tuple[int, int, int, int]
"""x1, y1, x2, y2 in working-frame pixels (x2, y2 exclusive): a square inside the frame."""


MIN_FRAME_SIDE = 2
"""Pixels a source's frame needs on each side: `working_size` keeps even sides, so a 1-pixel
side would become 0 and no crop or resize could be made of it."""


def frame_size_problem(frame_hw: tuple[int, int]) -> str | None:
    """Why frames of this (height, width) cannot feed the model, or None when they can."""
    h, w = frame_hw
    if min(h, w) >= MIN_FRAME_SIDE:
        return None
    return (
        f"frames of {w}x{h} px are too small for the model "
        f"(at least {MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} px)"
    )


def working_size(frame_hw: tuple[int, int], width: int) -> tuple[int, int]:
    """(height, width) of a frame scaled to `width` (never up), aspect kept, even sides."""
    h, w = frame_hw
    if w <= width:
        return h - h % 2, w - w % 2
    return max(2, round(h * width / w / 2) * 2), width - width % 2


def ring_frame(frame: np.ndarray, meta: ModelMeta) -> np.ndarray:
    """What a camera's ring keeps of a sampled frame: the model's input frame for whole-frame
    models, the working-resolution frame (cropped per window) for person-centric ones."""
    if meta.person_region is None:
        return resize_frame(frame, meta.frame_size, meta.resize_interpolation)
    size = working_size(frame.shape[:2], meta.person_region.working_width)
    return resize_frame(frame, size, "area")


def box_gap(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two boxes are, in body heights: the larger of their horizontal and
    vertical gaps over the taller box's height (<= 0 when they touch or overlap)."""
    apart = max(
        max(a[0], b[0]) - min(a[2], b[2]),
        max(a[1], b[1]) - min(a[3], b[3]),
    )
    height = max(a[3] - a[1], b[3] - b[1])
    if height <= 0:
        return -math.inf if apart <= 0 else math.inf
    return float(apart / height)


def close_pair(boxes: np.ndarray, max_gap: float) -> bool:
    """True when two of `boxes` (people seen on one frame) are at most `max_gap` body heights
    apart (`box_gap`): the least a fight between people needs."""
    b = np.asarray(boxes, dtype=np.float64)
    n = len(b) if b.ndim == 2 else 0
    return any(box_gap(b[i], b[j]) <= max_gap for i in range(n) for j in range(i + 1, n))


def inside(boxes: np.ndarray, region: Region) -> np.ndarray:
    """The boxes whose centre lies in `region`."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return b.reshape(0, 5)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    x1, y1, x2, y2 = region
    return b[(cx >= x1) & (cx < x2) & (cy >= y1) & (cy < y2)]


def group_boxes(boxes: np.ndarray, gap: float) -> list[np.ndarray]:
    """The union box of each group of boxes that lie within `gap` x the taller one's height of
    each other (single linkage), largest group area first."""
    b = np.asarray(boxes, dtype=np.float64)
    if b.size == 0:
        return []
    b = b.reshape(len(b), -1)
    n = len(b)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if box_gap(b[i], b[j]) <= gap:
                parent[find(i)] = find(j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(find(i), []).append(i)
    unions = [
        np.array([b[m, 0].min(), b[m, 1].min(), b[m, 2].max(), b[m, 3].max()])
        for m in groups.values()
    ]
    return sorted(unions, key=lambda u: -(u[2] - u[0]) * (u[3] - u[1]))


def square_region(box: np.ndarray, frame_hw: tuple[int, int], rules: PersonRegion) -> Region:
    """The square around `box`: its longer side plus `pad` of it on each side, at least
    `min_side`, shifted (not shrunk) to lie inside the frame, at most the frame's shorter side."""
    fh, fw = frame_hw
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1) * (1 + 2 * rules.pad)
    side = round(min(max(side, rules.min_side), fh, fw))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left = round(min(max(cx - side / 2, 0), fw - side))
    top = round(min(max(cy - side / 2, 0), fh - side))
    return left, top, left + side, top + side


def window_regions(
    detections: Sequence[np.ndarray], frame_hw: tuple[int, int], rules: PersonRegion
) -> list[Region]:
    """The regions of a window from the person boxes found on its frames, largest first."""
    boxes = [np.asarray(d, dtype=np.float32).reshape(-1, 5) for d in detections]
    found = np.concatenate(boxes) if boxes else np.zeros((0, 5), np.float32)
    found = found[found[:, 4] >= rules.min_score]
    groups = group_boxes(found, rules.group_gap)[: rules.max_regions]
    return [square_region(g, frame_hw, rules) for g in groups]


def crop_window(
    frames: np.ndarray,
    region: Region,
    size_hw: tuple[int, int],
    interpolation: Interpolation = "area",
) -> np.ndarray:
    """The window's frames (T, H, W, 3) cropped to `region` and resized to the model's size."""
    x1, y1, x2, y2 = region
    return np.stack([resize_frame(f[y1:y2, x1:x2], size_hw, interpolation) for f in frames])


def normalised(region: Region, frame_hw: tuple[int, int]) -> list[float]:
    """`region` as fractions of the frame (x1, y1, x2, y2), what events and snapshots carry."""
    fh, fw = frame_hw
    x1, y1, x2, y2 = region
    return [round(x1 / fw, 4), round(y1 / fh, 4), round(x2 / fw, 4), round(y2 / fh, 4)]


def detection_frames(sequence_length: int, rules: PersonRegion) -> list[int]:
    """Which of a window's frames the detector sees: every `detect_every`-th, ending on the
    newest, as the daemon detects on a live camera."""
    return list(range(sequence_length - 1, -1, -rules.detect_every))[::-1]
