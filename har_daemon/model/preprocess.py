"""The one preprocessing path shared by training, evaluation and serving.

Train/serve skew is a silent accuracy bug, so every frame that reaches a model goes through
`resize_frame` and `to_model_input` with the parameters recorded in the model's `model.json`.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

Interpolation = Literal["area", "linear"]
ColorOrder = Literal["BGR", "RGB"]
InputTransform = Literal["frames", "frame_diff"]

_CV2_INTERPOLATION = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}

AREA_HALVING_MIN_FACTOR = 2
""""area" halves a frame while the result stays at least this many times the target size."""

RESIZE_VERSION = 2
"""Bumped whenever `resize_frame` changes its output (2: "area" halves before INTER_AREA), so
caches of resized frames (the training clip cache) can key on it."""


def resize_frame(
    frame: np.ndarray, size_hw: tuple[int, int], interpolation: Interpolation = "area"
) -> np.ndarray:
    """Resize a decoded BGR uint8 frame to the model's (height, width).

    "linear" is cv2's INTER_LINEAR, what the widely copied tutorial models saw: ~15 µs, but
    shrinking 1080p to 64x64 it reads 4 source pixels per output pixel and aliases.

    "area" (what our models are trained with) averages every source pixel, so nothing aliases.
    cv2's INTER_AREA does that exactly but slowly at fractional ratios (1080p -> 64x64: ~6 ms,
    more than the model's inference on a whole window). So the frame is first halved by 2x2
    box averages (OpenCV's vectorised exact-ratio path; the first halving of 1080p takes
    ~0.5 ms) while the result stays at least `AREA_HALVING_MIN_FACTOR` times the target, then
    INTER_AREA does the rest: ~0.8 ms in all at 1080p, ~0.45 ms at 720p, on one loaded core.
    An odd row or column is dropped before a halving. A box of boxes is still a box filter, so
    a fine grating stays flat grey as with exact area; the result differs from exact
    INTER_AREA only where a model pixel's edge cuts through a 2^k block, and by the halvings'
    rounding. Measured by bench/resize.py on CCTV frames of shared/data/surveillance-fight,
    mean absolute difference in grey levels (p99, max): 1.4 (10, 28) at 1080p, 0.4 (4, 20) at
    720p, 1.0 (6, 12) at 854x480, 0 at 320x240 and below (no halving: exact); the large ones
    need detail inside a block (sharp edges). A ConvLSTM trained on exact INTER_AREA
    (fight/noFight; 24 clips of 720p and 1080p) moves its probabilities by at most 0.0015
    (mean 0.0005) on this input, against 0.017 on INTER_LINEAR.
    """
    h, w = size_hw
    if frame.shape[0] == h and frame.shape[1] == w:
        return frame
    if interpolation == "area":
        limit_h, limit_w = AREA_HALVING_MIN_FACTOR * h, AREA_HALVING_MIN_FACTOR * w
        while frame.shape[0] // 2 >= limit_h and frame.shape[1] // 2 >= limit_w:
            fh, fw = frame.shape[0] // 2, frame.shape[1] // 2
            frame = cv2.resize(frame[: 2 * fh, : 2 * fw], (fw, fh), interpolation=cv2.INTER_AREA)
    return cv2.resize(frame, (w, h), interpolation=_CV2_INTERPOLATION[interpolation])


def to_model_input(
    frames: np.ndarray,
    color_order: ColorOrder = "BGR",
    scale: float = 1.0 / 255.0,
    transform: InputTransform = "frames",
) -> np.ndarray:
    """Turn resized uint8 BGR windows (..., T, H, W, 3) into the float32 tensor a model expects.

    "frame_diff" feeds the change between consecutive frames (the first step gets zeros, so
    the window keeps its length): a static background, which dominates CCTV footage and is
    all a small model can latch onto with a couple of hundred clips, cancels out and motion is
    what remains (Sudhakaran & Lanz, "Learning to Detect Violent Videos using Convolutional
    Long Short-Term Memory", AVSS 2017, found the same for fight detection).
    """
    x = frames
    if color_order == "RGB":
        x = x[..., ::-1]
    out = np.multiply(x, np.float32(scale), dtype=np.float32)
    if transform == "frame_diff":
        diff = np.zeros_like(out)
        np.subtract(out[..., 1:, :, :, :], out[..., :-1, :, :, :], out=diff[..., 1:, :, :, :])
        return diff
    if transform != "frames":
        raise ValueError(f"unknown input transform {transform!r}")
    return out
