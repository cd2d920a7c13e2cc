"""Body pose per person: MoveNet SinglePose Lightning (Google, Apache-2.0) on each person box.

`models/pose/` holds the converted model and its notices (`scripts/pose_model/` rebuilds it
from the npm package it came from). Top-down: the person detector finds the boxes, and the pose
model looks at one square crop per box, so a person 80 px tall is seen at 192 px.

Model facts relied on here (see models/pose/NOTICE.md):

* input: int32 [1, 192, 192, 3], RGB, 0..255, no normalisation (the graph does it).
* output: float32 [1, 1, 17, 3]: (y, x, score) per COCO keypoint, y and x in 0..1 of the
  input square. Scores are per keypoint; MoveNet gives no person score.
* trained on people roughly centred and filling the square with some room around them, which
  is what `crop_square` makes of a detector box.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from har_daemon.core.errors import ModelError
from har_daemon.core.paths import bundled

POSE_FILE = bundled("models/pose/pose_model.tflite")
INPUT_SIDE = 192
KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
KP = {name: i for i, name in enumerate(KEYPOINTS)}
CROP_MARGIN = 0.15
"""Room added around a person box on every side, as a fraction of its longer side: detector
boxes cut off hands and feet now and then, and MoveNet expects some context around the body."""
MIN_KEYPOINT_SCORE = 0.3
"""A keypoint below this score counts as not seen (MoveNet's own demos use 0.11-0.3)."""
MIN_SIDE_PX = 64.0
"""A person box whose longer side is shorter than this (pixels) gets no pose call from a fall
stage with shared, tracked or adaptive looks (runtime.falls.pose_min_side): MoveNet sees it
blown up 2.3 times or more, and on the bench clip 61 of the 62 boxes under 80 px had under the
rule's 0.65 of their keypoints seen (docs/pose-and-falls.md, "Issue 20: where the fall stage's
cost goes")."""


@dataclass(frozen=True)
class Crop:
    """A square of the frame, in frame pixels; it may reach past the frame's edges."""

    x0: float
    y0: float
    side: float


# -- crop and decode (pure) ------------------------------------------------------------------


def crop_square(box: np.ndarray, margin: float = CROP_MARGIN) -> Crop:
    """The square around an `x1, y1, x2, y2` box, centred on it, with `margin` of room: the
    letterbox of the box (its aspect kept) that the model sees at 192x192."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    side = max(x2 - x1, y2 - y1, 1.0) * (1.0 + 2.0 * margin)
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    return Crop(cx - side / 2.0, cy - side / 2.0, side)


def crop_matrix(crop: Crop, side: int = INPUT_SIDE) -> np.ndarray:
    """The 2x3 affine map from frame pixels to model-input pixels for `crop`."""
    s = side / crop.side
    return np.array([[s, 0.0, -crop.x0 * s], [0.0, s, -crop.y0 * s]], np.float64)


def crop_input(frame_bgr: np.ndarray, crop: Crop, side: int = INPUT_SIDE) -> np.ndarray:
    """The model's [1, side, side, 3] int32 RGB input for one crop; outside the frame is black.
    Bilinear, also for a crop larger than `side`: warpAffine has no area mode (OpenCV turns
    INTER_AREA into INTER_LINEAR there), so a big person is sampled, not averaged."""
    patch = cv2.warpAffine(
        frame_bgr,
        crop_matrix(crop, side),
        (side, side),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )
    return cv2.cvtColor(patch, cv2.COLOR_BGR2RGB).astype(np.int32)[None]


def decode(raw: np.ndarray, crop: Crop) -> np.ndarray:
    """[1, 1, 17, 3] (y, x, score in 0..1 of the crop) -> [17, 3] (x, y, score) in frame pixels."""
    kp = np.asarray(raw, np.float32).reshape(len(KEYPOINTS), 3)
    out = np.empty_like(kp)
    out[:, 0] = crop.x0 + kp[:, 1] * crop.side
    out[:, 1] = crop.y0 + kp[:, 0] * crop.side
    out[:, 2] = kp[:, 2]
    return out


def posable(boxes: np.ndarray, min_side: float = MIN_SIDE_PX) -> np.ndarray:
    """Which of the (N, 4+) `x1, y1, x2, y2, ...` boxes are big enough to pose: the longer side
    counts, so a person lying across the view (a wide, low box) is posed as when standing."""
    b = np.asarray(boxes, np.float32)
    b = b.reshape(-1, b.shape[-1] if b.size else 4)
    return np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) >= min_side


# -- the estimator ---------------------------------------------------------------------------


class PoseEstimator:
    """`estimate(frame_bgr, boxes)` -> (N, 17, 3) float32 keypoints `x, y, score` in frame pixels,
    one set per person box. One interpreter; calls serialised by the caller."""

    def __init__(self, model_path: Path | str = POSE_FILE, *, threads: int = 2) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"pose model {path} does not exist")
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=int(threads))
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load pose model {path}: {exc}") from None
        inp = self._interp.get_input_details()
        out = self._interp.get_output_details()
        shape = [int(v) for v in inp[0]["shape"]] if len(inp) == 1 else []
        if shape != [1, INPUT_SIDE, INPUT_SIDE, 3] or len(out) != 1:
            raise ModelError(f"{path}: expected one [1, 192, 192, 3] input, got {shape}")
        if [int(v) for v in out[0]["shape"]] != [1, 1, len(KEYPOINTS), 3]:
            raise ModelError(f"{path}: expected a [1, 1, 17, 3] output, got {out[0]['shape']}")
        self._in, self._out = inp[0]["index"], out[0]["index"]

    def estimate(self, frame_bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        boxes = np.asarray(boxes, np.float32)
        boxes = boxes[None] if boxes.ndim == 1 else boxes
        out = np.zeros((len(boxes), len(KEYPOINTS), 3), np.float32)
        for i, box in enumerate(boxes):
            crop = crop_square(box)
            self._interp.set_tensor(self._in, crop_input(frame_bgr, crop))
            self._interp.invoke()
            out[i] = decode(self._interp.get_tensor(self._out), crop)
        return out
