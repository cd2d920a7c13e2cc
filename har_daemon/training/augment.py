"""Per-clip augmentation of uint8 training windows (T, H, W, 3), in numpy, seeded.

Small real datasets (242 surveillance clips) are memorised within a few epochs; showing each
clip a little differently every epoch is the cheapest regulariser. Every transform is applied
to the whole clip at once (the same flip, crop and colour change on every frame) so the motion
between frames, which is what tells activities apart, is left intact.

- `hflip`: mirror left-right (activities here have no handedness).
- `crop_resize`: a random crop of 80-100 % of each side, resized back (bilinear): zoom and
  shift, as from a camera placed a little differently.
- `color_jitter`: brightness and contrast, as from another camera, time of day or codec.
- `temporal_jitter`: clips are already `T` sampled frames, so speed cannot be resampled from
  the source video here; instead a few frames are dropped and as many others repeated, keeping
  the order, so local playback speed varies (up to 20 % by default).
- `distant_view` (off unless `distant_p` > 0): every frame shrunk to a random fraction of its
  side, JPEG re-encoded at a random quality and resized back up: the detail a person 50-150 px
  tall keeps in a compressed camera frame once the crop around them is resized to the model's
  input. Training fights are close-up web videos; without this the model learns detail that a
  camera across a room never delivers.

Deterministic for a `numpy.random.Generator`; the training loop derives one per batch from
(seed, epoch, batch) so results do not depend on the order Keras asks for batches.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from har_daemon.offline.paste import Look, degrade

__all__ = [
    "AugmentConfig",
    "augment_batch",
    "augment_clip",
    "color_jitter",
    "crop_resize",
    "distant_view",
    "hflip",
    "temporal_indices",
    "temporal_jitter",
]


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly to augment; the defaults are mild enough to keep every label true."""

    flip_p: float = 0.5
    crop_p: float = 0.5
    crop_scale: tuple[float, float] = (0.8, 1.0)
    color_p: float = 0.5
    brightness: float = 0.15  # +- this fraction of the full 0-255 range
    contrast: float = 0.2  # factor in [1 - c, 1 + c] around the clip's mean
    temporal_p: float = 0.5
    temporal_max_change: float = 0.2  # up to this fraction of the frames dropped (and repeated)
    # Off by default so `--augment` alone keeps reproducing the models trained before it.
    distant_p: float = 0.0
    distant_scale: tuple[float, float] = (0.3, 0.8)  # shrunk side / original side
    distant_quality: tuple[int, int] = (25, 70)  # JPEG quality, drawn uniformly (inclusive)

    def __post_init__(self) -> None:
        for name in ("flip_p", "crop_p", "color_p", "temporal_p", "distant_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {p}")
        lo, hi = self.crop_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"crop_scale must satisfy 0 < low <= high <= 1, got {self.crop_scale}")
        if not 0.0 <= self.brightness <= 1.0 or not 0.0 <= self.contrast < 1.0:
            raise ValueError("brightness must be within [0, 1] and contrast within [0, 1)")
        if not 0.0 <= self.temporal_max_change < 0.5:
            raise ValueError("temporal_max_change must be within [0, 0.5)")
        lo, hi = self.distant_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(
                f"distant_scale must satisfy 0 < low <= high <= 1, got {self.distant_scale}"
            )
        q_lo, q_hi = self.distant_quality
        if not 1 <= q_lo <= q_hi <= 100:
            raise ValueError(
                f"distant_quality must satisfy 1 <= low <= high <= 100, got {self.distant_quality}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, for `model.json`."""
        d = asdict(self)
        d["crop_scale"] = list(self.crop_scale)
        d["distant_scale"] = list(self.distant_scale)
        d["distant_quality"] = list(self.distant_quality)
        return d


def _check_clip(clip: np.ndarray) -> None:
    if clip.ndim != 4 or clip.shape[-1] != 3:
        raise ValueError(f"expected a clip of shape (T, H, W, 3), got {clip.shape}")
    if clip.dtype != np.uint8:
        raise ValueError(f"expected a uint8 clip, got {clip.dtype}")


def hflip(clip: np.ndarray) -> np.ndarray:
    """The clip mirrored left-right (a copy)."""
    _check_clip(clip)
    return np.ascontiguousarray(clip[:, :, ::-1])


def _resize_bilinear(clip: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Bilinear resize of every frame (pixel centres aligned, like cv2.INTER_LINEAR)."""
    _, h, w, _ = clip.shape
    ys = np.clip((np.arange(out_h) + 0.5) * (h / out_h) - 0.5, 0, h - 1)
    xs = np.clip((np.arange(out_w) + 0.5) * (w / out_w) - 0.5, 0, w - 1)
    y0 = np.floor(ys).astype(np.intp)
    x0 = np.floor(xs).astype(np.intp)
    y1 = np.minimum(y0 + 1, h - 1)
    x1 = np.minimum(x0 + 1, w - 1)
    wy = (ys - y0).astype(np.float32)[None, :, None, None]
    wx = (xs - x0).astype(np.float32)[None, None, :, None]
    f = clip.astype(np.float32)
    top = f[:, y0][:, :, x0] * (1 - wx) + f[:, y0][:, :, x1] * wx
    bottom = f[:, y1][:, :, x0] * (1 - wx) + f[:, y1][:, :, x1] * wx
    out = top * (1 - wy) + bottom * wy
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def crop_resize(
    clip: np.ndarray, rng: np.random.Generator, scale: tuple[float, float] = (0.8, 1.0)
) -> np.ndarray:
    """One random crop (each side `scale` of the frame, same window on every frame), resized
    back to the clip's size."""
    _check_clip(clip)
    _, h, w, _ = clip.shape
    s = float(rng.uniform(*scale))
    ch, cw = max(1, round(h * s)), max(1, round(w * s))
    top = int(rng.integers(0, h - ch + 1))
    left = int(rng.integers(0, w - cw + 1))
    window = clip[:, top : top + ch, left : left + cw]
    if (ch, cw) == (h, w):
        return window.copy()
    return _resize_bilinear(window, h, w)


def color_jitter(
    clip: np.ndarray, rng: np.random.Generator, brightness: float = 0.15, contrast: float = 0.2
) -> np.ndarray:
    """Scale contrast around the clip's mean by [1-c, 1+c] and shift brightness by +-b*255."""
    _check_clip(clip)
    c = float(rng.uniform(1.0 - contrast, 1.0 + contrast))
    b = float(rng.uniform(-brightness, brightness)) * 255.0
    f = clip.astype(np.float32)
    mean = float(f.mean())
    out = (f - mean) * c + mean + b
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def distant_view(
    clip: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.3, 0.8),
    quality: tuple[int, int] = (25, 70),
) -> np.ndarray:
    """Every frame shrunk to one random fraction `scale` of its sides, JPEG re-encoded at one
    random `quality` (the paste test's `degrade`), and resized back up (bilinear, as a small
    crop is stretched to the model's input). One draw per clip, like the other transforms."""
    _check_clip(clip)
    _, h, w, _ = clip.shape
    s = float(rng.uniform(*scale))
    q = int(rng.integers(quality[0], quality[1] + 1))
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    look = Look(blur_factor=1.0, jpeg_quality=q, feather_px=0)
    out = np.empty_like(clip)
    for i, frame in enumerate(clip):
        small = degrade(np.ascontiguousarray(frame), sw, sh, look)
        out[i] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return out


def temporal_indices(n: int, rng: np.random.Generator, max_change: float = 0.2) -> np.ndarray:
    """`n` non-decreasing frame indices in [0, n): k random frames dropped, k others repeated.

    k is drawn from 0 .. floor(max_change * n). Dropping a frame plays that stretch faster,
    repeating one plays it slower, so speed varies locally while order and length are kept.
    """
    if n < 1:
        raise ValueError(f"need at least one frame, got {n}")
    k_max = int(np.floor(max_change * n))
    k = int(rng.integers(0, k_max + 1)) if k_max > 0 else 0
    idx = np.arange(n)
    if k == 0:
        return idx
    kept = np.delete(idx, rng.choice(n, size=k, replace=False))
    repeated = kept[rng.choice(len(kept), size=k, replace=False)]
    return np.sort(np.concatenate([kept, repeated]))


def temporal_jitter(
    clip: np.ndarray, rng: np.random.Generator, max_change: float = 0.2
) -> np.ndarray:
    """The clip with frames dropped and repeated as `temporal_indices` chooses."""
    _check_clip(clip)
    return clip[temporal_indices(len(clip), rng, max_change)]


def augment_clip(
    clip: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None
) -> np.ndarray:
    """Apply each transform with its probability; returns a new uint8 clip of the same shape.

    Same generator state, same result. Order: temporal, flip, crop, colour, distant view (the
    codec comes last, as in a camera). With `distant_p` 0 nothing more is drawn, so the default
    stream of draws, and the models trained with it, are unchanged.
    """
    _check_clip(clip)
    cfg = config or AugmentConfig()
    do_flip, do_crop, do_color, do_time = rng.random(4) < (
        cfg.flip_p,
        cfg.crop_p,
        cfg.color_p,
        cfg.temporal_p,
    )
    do_distant = cfg.distant_p > 0.0 and bool(rng.random() < cfg.distant_p)
    out = clip
    if do_time:
        out = temporal_jitter(out, rng, cfg.temporal_max_change)
    if do_flip:
        out = hflip(out)
    if do_crop:
        out = crop_resize(out, rng, cfg.crop_scale)
    if do_color:
        out = color_jitter(out, rng, cfg.brightness, cfg.contrast)
    if do_distant:
        out = distant_view(out, rng, cfg.distant_scale, cfg.distant_quality)
    return out if out is not clip else clip.copy()


def augment_batch(
    clips: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None
) -> np.ndarray:
    """`augment_clip` on each clip of a (N, T, H, W, 3) uint8 batch."""
    if clips.ndim != 5:
        raise ValueError(f"expected a batch of shape (N, T, H, W, 3), got {clips.shape}")
    out = np.empty_like(clips)
    for i in range(len(clips)):
        out[i] = augment_clip(clips[i], rng, config)
    return out
