"""The person detector: NanoDet-g (COCO, Apache-2.0) converted to LiteRT, and its decoding.

`models/person/` holds the converted model and its notices (`scripts/person_detector/` rebuilds
it from the npm package it came from). Windows are cropped around the people it finds, so the
activity model sees people, not a whole scene shrunk to 64x64.

Model facts relied on here (checked against upstream NanoDet; see models/person/NOTICE.md):

* input: float32 [1, H, W, 3] NHWC (H, W read from the model: 352x640 as shipped), BGR,
  (pixel - mean) / std with NanoDet's own constants, the frame letterboxed (aspect kept) as
  upstream trains. Feeding RGB/255 stretched (as vladmandic/human does) found far fewer people
  on real CCTV frames.
* outputs: for each stride s in (8, 16, 32) a [1, (H/s)*(W/s), 80] tensor of per-class scores
  (sigmoid applied; COCO order, person = 0) and a [1, (H/s)*(W/s), 44] tensor of box-side
  distributions (4 sides x 11 bins, logits). Cells are row-major; the centre of a cell is
  ((col + 0.5) * s, (row + 0.5) * s).
* boxes: NanoDet's GFL "integral": softmax over the bins, expectation, times the stride, is the
  distance from the cell centre to each side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from har_daemon.core.errors import ModelError
from har_daemon.core.paths import bundled
from har_daemon.model.meta import PersonRegion

DETECTOR_FILE = bundled("models/person/person_detector.tflite")
DEFAULT_SCORE: float = PersonRegion.model_fields["min_score"].default
DEFAULT_NMS_IOU = 0.5

STRIDES: tuple[int, ...] = (8, 16, 32)
REG_MAX: int = 10
NUM_CLASSES: int = 80
PERSON_CLASS: int = 0  # COCO order: person first
# Upstream NanoDet's normalisation, applied to BGR pixels.
MEAN_BGR = np.array([103.53, 116.28, 123.675], np.float32)
INV_STD_BGR = (1.0 / np.array([57.375, 57.12, 58.395], np.float32)).astype(np.float32)


@dataclass(frozen=True)
class Transform:
    """How frame pixels map onto model-input pixels: ``input = frame * scale + pad``."""

    scale_x: float
    scale_y: float
    pad_x: float = 0.0
    pad_y: float = 0.0


# -- pre-processing --------------------------------------------------------------------------


def preprocess(frame_bgr: np.ndarray, input_hw: tuple[int, int]) -> tuple[np.ndarray, Transform]:
    """The model's [1, H, W, 3] normalised BGR tensor of a frame, letterboxed (aspect kept, as
    NanoDet-g was trained: on real CCTV frames it scored people clearly higher than stretching),
    padded with the mean colour (zero after normalisation)."""
    if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 BGR frame, got shape {frame_bgr.shape}")
    h_in, w_in = input_hw
    fh, fw = frame_bgr.shape[:2]
    s = min(w_in / fw, h_in / fh)
    nw, nh = max(1, round(fw * s)), max(1, round(fh * s))
    px, py = (w_in - nw) // 2, (h_in - nh) // 2
    img = np.zeros((h_in, w_in, 3), np.float32)
    resized = cv2.resize(frame_bgr, (nw, nh), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    img[py : py + nh, px : px + nw] = (resized - MEAN_BGR) * INV_STD_BGR
    return img[None], Transform(nw / fw, nh / fh, float(px), float(py))


# -- decoding (pure) -------------------------------------------------------------------------


def center_priors(input_hw: tuple[int, int], stride: int) -> np.ndarray:
    """Cell centres [(H/s) * (W/s), 2] (x, y) in input pixels, row-major like the outputs."""
    h, w = input_hw[0] // stride, input_hw[1] // stride
    ys, xs = np.meshgrid(
        (np.arange(h, dtype=np.float32) + 0.5) * stride,
        (np.arange(w, dtype=np.float32) + 0.5) * stride,
        indexing="ij",
    )
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def distribution_to_distance(reg: np.ndarray, reg_max: int = REG_MAX) -> np.ndarray:
    """GFL integral: [N, 4 * (reg_max + 1)] logits -> [N, 4] distances (l, t, r, b), in strides."""
    logits = reg.reshape(-1, 4, reg_max + 1).astype(np.float32)
    logits = logits - logits.max(axis=2, keepdims=True)  # stable softmax
    p = np.exp(logits)
    p /= p.sum(axis=2, keepdims=True)
    return p @ np.arange(reg_max + 1, dtype=np.float32)


def split_outputs(
    raw_outputs: Sequence[np.ndarray],
    input_hw: tuple[int, int],
    num_classes: int = NUM_CLASSES,
    reg_max: int = REG_MAX,
) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Pair the six raw head tensors by stride: ``[(stride, cls [N,80], reg [N,44]), ...]``.

    Tensors are matched by shape, not by position, because LiteRT does not promise an order.
    """
    by_shape: dict[tuple[int, int], np.ndarray] = {}
    for t in raw_outputs:
        a = np.asarray(t)
        a = a.reshape(a.shape[-2], a.shape[-1])
        by_shape[a.shape] = a
    out = []
    for s in STRIDES:
        n = (input_hw[0] // s) * (input_hw[1] // s)
        try:
            out.append((s, by_shape[(n, num_classes)], by_shape[(n, 4 * (reg_max + 1))]))
        except KeyError as e:
            raise ValueError(
                f"no head output for stride {s} ({n} cells); got {list(by_shape)}"
            ) from e
    return out


def decode_outputs(
    raw_outputs: Sequence[np.ndarray],
    input_hw: tuple[int, int],
    score_threshold: float,
    class_id: int = PERSON_CLASS,
    priors: dict[int, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode one class from the raw head outputs, before NMS.

    Returns ``boxes [K, 4]`` (x1, y1, x2, y2 in model-input pixels, clipped to the input) and
    ``scores [K]`` for every cell whose class score is >= ``score_threshold``. Only those cells'
    distributions are decoded, which keeps this cheap (a few hundred cells at most).
    """
    boxes, scores = [], []
    for stride, cls, reg in split_outputs(raw_outputs, input_hw):
        sc = cls[:, class_id]
        idx = np.nonzero(sc >= score_threshold)[0]
        if idx.size == 0:
            continue
        ctr = (priors[stride] if priors is not None else center_priors(input_hw, stride))[idx]
        dist = distribution_to_distance(reg[idx]) * np.float32(stride)
        b = np.concatenate([ctr - dist[:, :2], ctr + dist[:, 2:]], axis=1)
        boxes.append(b)
        scores.append(sc[idx].astype(np.float32))
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
    b = np.concatenate(boxes).astype(np.float32)
    h, w = input_hw
    np.clip(b[:, 0::2], 0, w, out=b[:, 0::2])
    np.clip(b[:, 1::2], 0, h, out=b[:, 1::2])
    return b, np.concatenate(scores)


def nms(
    boxes: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float,
    score_threshold: float,
    max_detections: int = 100,
) -> np.ndarray:
    """Greedy NMS (OpenCV) over xyxy boxes; returns kept indices, best score first."""
    if len(boxes) == 0:
        return np.zeros((0,), np.int64)
    xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
    keep = cv2.dnn.NMSBoxes(
        xywh.tolist(),
        scores.tolist(),
        float(score_threshold),
        float(iou_threshold),
        top_k=int(max_detections),
    )
    keep = np.asarray(keep, dtype=np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


def to_frame_coords(boxes: np.ndarray, tr: Transform, frame_hw: tuple[int, int]) -> np.ndarray:
    """Map xyxy boxes from model-input pixels back to frame pixels and clip to the frame."""
    out = np.empty_like(boxes, dtype=np.float32)
    out[:, 0::2] = (boxes[:, 0::2] - tr.pad_x) / tr.scale_x
    out[:, 1::2] = (boxes[:, 1::2] - tr.pad_y) / tr.scale_y
    np.clip(out[:, 0::2], 0, frame_hw[1], out=out[:, 0::2])
    np.clip(out[:, 1::2], 0, frame_hw[0], out=out[:, 1::2])
    return out


def postprocess(
    raw_outputs: Sequence[np.ndarray],
    input_hw: tuple[int, int],
    tr: Transform,
    frame_hw: tuple[int, int],
    score_threshold: float,
    nms_iou: float,
    max_detections: int = 100,
    priors: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Raw head outputs -> [N, 5] float32 person boxes `x1, y1, x2, y2, score` in frame pixels."""
    boxes, scores = decode_outputs(raw_outputs, input_hw, score_threshold, PERSON_CLASS, priors)
    keep = nms(boxes, scores, nms_iou, score_threshold, max_detections)
    if keep.size == 0:
        return np.zeros((0, 5), np.float32)
    fb = to_frame_coords(boxes[keep], tr, frame_hw)
    return np.concatenate([fb, scores[keep, None]], axis=1).astype(np.float32)


# -- the detector ----------------------------------------------------------------------------


class PersonDetector:
    """`detect(frame_bgr)` -> (N, 5) float32 person boxes `x1, y1, x2, y2, score` in frame pixels.

    One interpreter, calls serialised by the caller (the inference thread). Loading failures
    are `ModelError`s naming the file.
    """

    def __init__(
        self,
        model_path: Path | str = DETECTOR_FILE,
        *,
        threads: int = 2,
        score_threshold: float = DEFAULT_SCORE,
        nms_iou: float = DEFAULT_NMS_IOU,
        max_detections: int = 100,
    ) -> None:
        self.score_threshold = float(score_threshold)
        self.nms_iou = float(nms_iou)
        self.max_detections = int(max_detections)
        path = Path(model_path)
        if not path.is_file():
            raise ModelError(f"person detector {path} does not exist")
        try:
            self._interp = Interpreter(model_path=str(path), num_threads=int(threads))
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load person detector {path}: {exc}") from None
        inp = self._interp.get_input_details()
        shape = [int(v) for v in inp[0]["shape"]] if len(inp) == 1 else []
        if len(shape) != 4 or shape[3] != 3:
            raise ModelError(f"{path}: expected one [1, H, W, 3] input, got {shape}")
        self._input_index = inp[0]["index"]
        self.input_hw: tuple[int, int] = (shape[1], shape[2])
        outputs = self._interp.get_output_details()
        self._output_indices = [o["index"] for o in outputs]
        self._priors = {s: center_priors(self.input_hw, s) for s in STRIDES}
        try:  # a model whose heads do not match what this decoder assumes fails here, not later
            split_outputs([np.zeros(o["shape"], np.float32) for o in outputs], self.input_hw)
        except ValueError as exc:
            raise ModelError(f"{path}: {exc}") from None

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        tensor, tr = preprocess(frame_bgr, self.input_hw)
        self._interp.set_tensor(self._input_index, tensor)
        self._interp.invoke()
        raw = [self._interp.get_tensor(i) for i in self._output_indices]
        return postprocess(
            raw,
            self.input_hw,
            tr,
            frame_bgr.shape[:2],
            self.score_threshold,
            self.nms_iou,
            self.max_detections,
            self._priors,
        )
