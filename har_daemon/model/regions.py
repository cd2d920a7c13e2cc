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
    regions = [square_region(g, frame_hw, rules) for g in groups]
    most = max((int((b[:, 4] >= rules.min_score).sum()) for b in boxes), default=0)
    extra = fallback_region(found, most, frame_hw, rules)
    if extra is not None and extra not in regions:
        regions.append(extra)
    return regions


def fallback_region(
    found: np.ndarray, most: int, frame_hw: tuple[int, int], rules: PersonRegion
) -> Region | None:
    """The one more region `rules.fallback` asks for when the busiest look found `most` <
    `fallback_below` people (`found`: every box kept over the window), else None. A detector
    that sees five fighters as one box crops one body; the frame's largest square, or the
    square around everyone seen, still holds the others."""
    if rules.fallback == "none" or most >= rules.fallback_below:
        return None
    everyone = group_boxes(found, math.inf)  # one group at most: the box around everyone seen
    if rules.fallback == "people":
        return square_region(everyone[0], frame_hw, rules) if everyone else None
    fh, fw = frame_hw
    box = everyone[0] if everyone else np.array([0.0, 0.0, fw, fh])
    return square_region(box, frame_hw, rules.model_copy(update={"min_side": min(fh, fw)}))


def crop_window(
    frames: np.ndarray,
    region: Region,
    size_hw: tuple[int, int],
    interpolation: Interpolation = "area",
) -> np.ndarray:
    """The window's frames (T, H, W, 3) cropped to `region` and resized to the model's size."""
    x1, y1, x2, y2 = region
    return np.stack([resize_frame(f[y1:y2, x1:x2], size_hw, interpolation) for f in frames])


KEPT_MARGIN = 0.5
"""How far around each recent region a person-centric ring keeps pixels, in the region's side
on each side: people walk about a body height (two thirds of a region's side) per window, so
the regions of the next window still fall inside what was kept."""


def kept_area(frame_hw: tuple[int, int], regions: Sequence[Region]) -> Region | None:
    """The box of a working frame that a person-centric ring keeps at full resolution: every
    recent region grown by `KEPT_MARGIN` of its side, their union, inside the frame; None when
    nobody was seen recently."""
    if not regions:
        return None
    fh, fw = frame_hw
    grown = [
        (x1 - m, y1 - m, x2 + m, y2 + m)
        for x1, y1, x2, y2 in regions
        for m in [KEPT_MARGIN * (x2 - x1)]
    ]
    x1 = max(0, math.floor(min(g[0] for g in grown)))
    y1 = max(0, math.floor(min(g[1] for g in grown)))
    x2 = min(fw, math.ceil(max(g[2] for g in grown)))
    y2 = min(fh, math.ceil(max(g[3] for g in grown)))
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def kept_budget(frame_hw: tuple[int, int]) -> int:
    """Pixels a person-centric ring keeps per frame: a quarter of the working frame, which
    holds the whole frame halved (sides are even: `working_size`)."""
    return (frame_hw[0] // 2) * (frame_hw[1] // 2)


def kept_view(frame_hw: tuple[int, int], area: Region | None) -> tuple[Region, int]:
    """(box, shrink): what a ring keeps of a working frame. The people's `kept_area` at full
    resolution when it fits `kept_budget`, else the whole frame halved by 2x2 box averages (the
    first step `resize_frame` takes for a region of 256 px or more anyway)."""
    fh, fw = frame_hw
    if area is not None:
        x1, y1, x2, y2 = max(area[0], 0), max(area[1], 0), min(area[2], fw), min(area[3], fh)
        if x2 > x1 and y2 > y1 and (x2 - x1) * (y2 - y1) <= kept_budget(frame_hw):
            return (x1, y1, x2, y2), 1
    return (0, 0, fw, fh), 2


def keep(frame: np.ndarray, box: Region, shrink: int) -> np.ndarray:
    """The pixels a ring keeps of `frame` for `kept_view`'s (box, shrink)."""
    x1, y1, x2, y2 = box
    part = frame[y1:y2, x1:x2]
    if shrink == 1:
        return part
    h, w = part.shape[0] // shrink, part.shape[1] // shrink
    return resize_frame(part[: h * shrink, : w * shrink], (h, w), "area")


def crop_kept(
    kept: np.ndarray,
    box: Region,
    shrink: int,
    region: Region,
    size_hw: tuple[int, int],
    interpolation: Interpolation = "area",
) -> np.ndarray | None:
    """`region` (working-frame pixels) of a frame kept as `kept` (`box`, shrunk by `shrink`),
    resized to the model's size. The part of the region outside the box repeats the box's edge
    (someone who walked in since the ring last learned where people are); None when the region
    and the box do not overlap at all."""
    bx1, by1 = box[0], box[1]
    rx1, ry1, rx2, ry2 = region
    x1, y1 = round((rx1 - bx1) / shrink), round((ry1 - by1) / shrink)
    x2, y2 = x1 + max(1, round((rx2 - rx1) / shrink)), y1 + max(1, round((ry2 - ry1) / shrink))
    h, w = kept.shape[:2]
    ix1, iy1, ix2, iy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
    if ix1 >= ix2 or iy1 >= iy2:
        return None
    part = kept[iy1:iy2, ix1:ix2]
    if (ix1, iy1, ix2, iy2) != (x1, y1, x2, y2):
        part = np.pad(part, ((iy1 - y1, y2 - iy2), (ix1 - x1, x2 - ix2), (0, 0)), mode="edge")
    return resize_frame(part, size_hw, interpolation)


def normalised(region: Region, frame_hw: tuple[int, int]) -> list[float]:
    """`region` as fractions of the frame (x1, y1, x2, y2), what events and snapshots carry."""
    fh, fw = frame_hw
    x1, y1, x2, y2 = region
    return [round(x1 / fw, 4), round(y1 / fh, 4), round(x2 / fw, 4), round(y2 / fh, 4)]


def detection_frames(sequence_length: int, rules: PersonRegion) -> list[int]:
    """Which of a window's frames the detector sees: every `detect_every`-th, ending on the
    newest, as the daemon detects on a live camera."""
    return list(range(sequence_length - 1, -1, -rules.detect_every))[::-1]
