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


def resize_frame(
    frame: np.ndarray, size_hw: tuple[int, int], interpolation: Interpolation = "area"
) -> np.ndarray:
    """Resize a decoded BGR uint8 frame to the model's (height, width).

    "area" averages source pixels (no aliasing when shrinking, what our models are trained
    with); "linear" is cv2's default and is what the widely copied tutorial models saw.
    """
    h, w = size_hw
    if frame.shape[0] == h and frame.shape[1] == w:
        return frame
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
