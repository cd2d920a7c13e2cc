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
    frames: np.ndarray, color_order: ColorOrder = "BGR", scale: float = 1.0 / 255.0
) -> np.ndarray:
    """Turn resized uint8 BGR frames (..., H, W, 3) into the float32 tensor a model expects."""
    x = frames
    if color_order == "RGB":
        x = x[..., ::-1]
    return np.multiply(x, np.float32(scale), dtype=np.float32)
