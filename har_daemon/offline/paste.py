"""The synthetic paste test's compositing: a held-out clip pasted into a real quiet scene, as a
camera far away would see it (pure: arrays in, arrays out; no I/O).

Training fights are close-up web videos; a deployed camera sees people 50-150 px tall. Pasting
a clip the model never trained on into a real fixed-camera scene, at a given fraction of the
frame width, asks whether it still finds a fight seen from afar and keeps quiet over everyday
footage at that size. A pasted region looks like a small part of a camera frame, not a sharp
thumbnail: it is shrunk to its size, blurred by a further downscale and upscale, JPEG
re-encoded, and its edge blended softly into the scene. The clip plays forward, backward,
forward (`pingpong`), so one 2-3 s clip gives several windows with no cut, and the scene runs
`pre_s` before and `post_s` after it. Everything random (scene, segment, position) comes from a
seeded generator per clip and size, so a run is repeatable and every size of one clip lands in
the same scene segment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

PASTE_FRACTIONS: tuple[float, ...] = (1 / 2, 1 / 3, 1 / 4)
"""Pasted clip width as a fraction of the frame width: the sizes the issue asks for."""


@dataclass(frozen=True)
class Look:
    """How a pasted region is degraded: a small part of a camera frame, not a thumbnail."""

    blur_factor: float = 2.0  # shrink by this below the pasted size, then back up (>= 1)
    jpeg_quality: int = 40  # 1-100; 100 ~ no compression
    feather_px: int = 3  # soft edge: alpha ramps from 0 to 1 over this many pixels (0: hard)

    def __post_init__(self) -> None:
        if not (self.blur_factor >= 1.0 and 1 <= self.jpeg_quality <= 100 and self.feather_px >= 0):
            raise ValueError(f"bad look {self}: blur_factor >= 1, jpeg 1-100, feather >= 0")


@dataclass(frozen=True)
class Placement:
    """Where the clip goes: its top-left corner and size in scene pixels."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Timeline:
    """A composite's frames at the scene's rate: scene alone, pasted clip, scene alone."""

    fps: float
    first: int  # composite frame where the paste begins
    indices: tuple[int, ...]  # clip frame shown at composite frames first, first + 1, ...
    total: int  # composite frames in all

    @property
    def interval_s(self) -> tuple[float, float]:
        """The pasted clip's span, seconds from the composite's start (closed-open)."""
        return self.first / self.fps, (self.first + len(self.indices)) / self.fps

    def clip_frame(self, k: int) -> int | None:
        """The clip frame pasted at composite frame `k`, None outside the paste."""
        i = k - self.first
        return self.indices[i] if 0 <= i < len(self.indices) else None


def case_rng(seed: int, *keys: int) -> np.random.Generator:
    """One generator per (seed, clip, size...): a case's draws do not depend on run order."""
    return np.random.default_rng([seed, *keys])


def place(
    frame_wh: tuple[int, int], clip_wh: tuple[int, int], fraction: float, rng: np.random.Generator
) -> Placement:
    """The clip at `fraction` of the frame width, aspect kept (shrunk further if it would be
    taller than the frame), at a uniformly drawn position wholly inside the frame."""
    fw, fh = frame_wh
    cw, ch = clip_wh
    if not (0 < fraction <= 1) or min(fw, fh, cw, ch) <= 0:
        raise ValueError(f"fraction {fraction} must be in (0, 1], sizes positive")
    width = max(2, round(fw * fraction))
    height = max(2, round(width * ch / cw))
    if height > fh:
        width, height = max(2, round(fh * cw / ch)), fh
    width = min(width, fw)
    x = int(rng.integers(0, fw - width + 1))
    y = int(rng.integers(0, fh - height + 1))
    return Placement(x, y, width, height)


def pingpong(n: int, repeats: int) -> list[int]:
    """Frame order forward, backward, forward... `repeats` times, the turning frame once."""
    if n <= 0 or repeats <= 0:
        raise ValueError("n and repeats must be positive")
    forward = list(range(n))
    out = list(forward)
    for r in range(1, repeats):
        leg = forward[::-1] if r % 2 else forward
        out.extend(leg[1:] if n > 1 else leg)
    return out


def resample(sequence: Sequence[int], src_fps: float, out_fps: float) -> list[int]:
    """`sequence` (frames at `src_fps`) as shown at `out_fps`: the frame on screen at each
    output frame's time."""
    if src_fps <= 0 or out_fps <= 0:
        raise ValueError("frame rates must be positive")
    count = max(1, math.floor(len(sequence) * out_fps / src_fps + 1e-9))
    return [
        sequence[min(len(sequence) - 1, int(k * src_fps / out_fps + 1e-9))] for k in range(count)
    ]


def timeline(
    clip_frames: int,
    clip_fps: float,
    scene_fps: float,
    *,
    repeats: int = 3,
    pre_s: float = 3.0,
    post_s: float = 2.0,
) -> Timeline:
    """The composite's plan: `pre_s` of scene, the clip ping-ponged `repeats` times, `post_s`."""
    indices = resample(pingpong(clip_frames, repeats), clip_fps, scene_fps)
    first = round(pre_s * scene_fps)
    total = first + len(indices) + round(post_s * scene_fps)
    return Timeline(scene_fps, first, tuple(indices), total)


def scene_start(scene_frames: int, needed: int, rng: np.random.Generator) -> int:
    """A uniformly drawn first scene frame with `needed` frames after it."""
    if needed > scene_frames:
        raise ValueError(f"scene of {scene_frames} frames is shorter than {needed}")
    return int(rng.integers(0, scene_frames - needed + 1))


def degrade(clip_frame: np.ndarray, width: int, height: int, look: Look) -> np.ndarray:
    """The clip frame at its pasted size with the blur and compression a small region gets."""
    patch = cv2.resize(clip_frame, (width, height), interpolation=cv2.INTER_AREA)
    if look.blur_factor > 1.0:
        small = (
            max(1, round(width / look.blur_factor)),
            max(1, round(height / look.blur_factor)),
        )
        patch = cv2.resize(patch, small, interpolation=cv2.INTER_AREA)
        patch = cv2.resize(patch, (width, height), interpolation=cv2.INTER_LINEAR)
    if look.jpeg_quality < 100:
        ok, buf = cv2.imencode(".jpg", patch, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg_quality])
        if not ok:
            raise ValueError("JPEG encoding failed")
        patch = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return patch


def feather_mask(width: int, height: int, feather_px: int) -> np.ndarray:
    """(height, width, 1) alpha in [0, 1]: 1 inside, ramping down over `feather_px` to the
    edge, so the paste has no hard seam (all ones when `feather_px` is 0)."""
    if feather_px <= 0:
        return np.ones((height, width, 1), np.float32)
    xs = np.minimum(np.arange(width), np.arange(width)[::-1]) + 0.5
    ys = np.minimum(np.arange(height), np.arange(height)[::-1]) + 0.5
    d = np.minimum(ys[:, None], xs[None, :])
    return np.clip(d / feather_px, 0.0, 1.0).astype(np.float32)[..., None]


def blend(frame: np.ndarray, patch: np.ndarray, at: Placement, mask: np.ndarray) -> np.ndarray:
    """A copy of `frame` with `patch` laid over it at `at` through `mask`."""
    if patch.shape[:2] != (at.height, at.width) or mask.shape[:2] != patch.shape[:2]:
        raise ValueError(f"patch {patch.shape[:2]} / mask {mask.shape[:2]} do not fit {at}")
    out = frame.copy()
    region = out[at.y : at.y + at.height, at.x : at.x + at.width].astype(np.float32)
    mixed = region + (patch.astype(np.float32) - region) * mask
    out[at.y : at.y + at.height, at.x : at.x + at.width] = np.rint(mixed).astype(frame.dtype)
    return out
