"""Scene-cut detection between a camera's consecutive sampled frames (pure: numpy only).

A PTZ move, a switched feed or a spliced recording puts two unrelated pictures side by side.
A 20-frame window straddling that join shows the model a teleport (a huge frame difference)
and yields nonsense for two seconds, so the capture thread asks `CutDetector.update` about every
sampled frame and starts a new window when it answers True. That runs about ten times a
second on each of tens of cameras, so it works on a thumbnail of the model's small frame:
about 18 µs a frame; about 100 µs on the rare frames that need step 4 (cuts, and under 0.1 %
of real within-scene frames).

The distance (`frame_distance`), chosen by scripts/measure_cut_threshold.py on real footage
(fight and fall clips: fights, shaking cameras, people close to the lens):

1. A 16x16 luma thumbnail of block means (4x4 blocks of a 64x64 frame): noise and codec
   artefacts average out; colour is dropped, so an IR camera switching to monochrome at dusk
   changes little.
2. Brightness is normalised away: each thumbnail gets zero mean and unit standard deviation,
   so lights dimming or coming on, auto-exposure and IR switching cancel out. Without it the
   block difference of real within-scene pairs given such a change (gain x0.5 or x1.6, +40
   grey levels, gamma 0.6, a contrasty monochrome picture) is 20-53 grey levels (p50), as
   large as between unrelated scenes (p0.1: 29); a colour histogram distance reads 96 % of
   them as cuts. The standard deviation is floored at `STD_FLOOR` grey levels, or a flat frame
   (covered lens, black frame, dark room) would blow its sensor noise up to full contrast and
   read as a new scene on every frame.
3. `plain_distance` = the **median** over the 256 blocks of the absolute difference: a cut
   changes nearly every block, while motion changes a minority, which the median ignores (at
   a threshold with no false cut on the real clips the mean of the same differences misses
   2.3 % of cuts, the median 0.1 %).
4. A large bright or dark body (a fighter at the lens) shifts the mean and standard deviation
   of step 2 and with them every block. So when the plain distance exceeds the threshold,
   `aligned_distance` refits the brightness by least trimmed squares on the best-matching half
   of the blocks, and the distance is the smaller of the two: the worst real fight (fi076)
   drops from 0.51 to 0.38 while cuts barely move (p0.1: 0.51 to 0.49), so the gap between
   within-scene and cut distances opens (figures at `CUT_THRESHOLD`).

Brightness changes measured with the final distance, on real within-scene pairs: gain x0.5,
+40 grey levels, gamma 0.6 and a contrasty monochrome picture cross the threshold in at most
0.02 % of pairs; gain x1.6 in 1.2 %, where it saturates whole bright regions (which does change
the picture).

A cut is declared on the first frame of a run of above-threshold distances only: a change that
takes several samples (a PTZ pan, a corrupt frame and the recovery after it) is one cut, and
the next can be declared once a distance has fallen back to the threshold or below. So the new
window can begin with the frames of a pan. A lights on/off step is not a cut; lights coming on
in a room that was black (flat) is, as the picture really is new then.
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = [
    "CUT_THRESHOLD",
    "THUMB_SIZE",
    "CutDetector",
    "aligned_distance",
    "frame_distance",
    "plain_distance",
    "thumbnail",
    "thumbnail_distance",
]

THUMB_SIZE = 16
"""Thumbnail side in blocks. Measured while choosing (plain distance): at 8 a body near the
lens dominates (within-clip max 0.58 against cuts' p0.1 0.44); 32 separates no better than 16."""

STD_FLOOR = 8.0
"""Grey levels: thumbnails with a smaller standard deviation are flat and are not stretched."""

CUT_THRESHOLD = 0.45
"""Default threshold on `frame_distance` (in standard deviations of the frame's luma).

Measured by scripts/measure_cut_threshold.py on shared/data (surveillance-fight: 242 clips;
falls: 45 clips), frames sampled every 0.1 s and resized to 64x64 with INTER_AREA:
8,322 consecutive within-clip pairs (no cut: fights, shake, bodies near the lens) have p50
0.003, p99 0.102, p99.9 0.187, max 0.382 (fi076, a bus fight with bodies at the lens); 79,363
cut pairs (last frame of a clip against the first of a clip of another scene, and one cut
inside a clip) have min 0.361, p0.1 0.488, p1 0.564, p5 0.644, p50 0.810. The threshold is the
first 0.05 step at least 10 % above every within-clip distance (that maximum comes from 0.23 h
of video): no false cut on the real clips, 11 cut pairs missed (0.01 %); 0.40 would miss 0.00 %
with a 5 % margin, 0.50 would miss 0.15 %.
"""

# BT.601 luma weights in BGR order.
_LUMA_BGR = np.array([0.114, 0.587, 0.299], dtype=np.float32)
_HALF = THUMB_SIZE * THUMB_SIZE // 2
_ALIGN_STEPS = 3
"""C-steps of the brightness refit; measured while choosing: the worst fight pair (fi076) reads
0.44 after one step, 0.38 after three."""
_MAX_GAIN = 4.0
"""Bounds the refitted gain, so a fit on a flat half of the blocks cannot stretch noise."""


@functools.lru_cache(maxsize=16)
def _block_row_weights(block_w: int, channels: int) -> np.ndarray:
    """Weights turning one block row of `block_w` pixels x `channels` sums into luma."""
    per_pixel = _LUMA_BGR if channels == 3 else np.ones(1, dtype=np.float32)
    weights = np.tile(per_pixel, block_w)
    weights.flags.writeable = False
    return weights


def thumbnail(frame: np.ndarray) -> np.ndarray:
    """The normalised 16x16 luma thumbnail (flat float32, 256 values) `frame_distance` compares.

    `frame` is a uint8 BGR (H, W, 3) or grey (H, W) image, at least 16x16; when a side is not a
    multiple of 16 the remainder rows/columns (bottom, right) are left out.
    """
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise ValueError(
            f"frame must be a uint8 numpy array (0-255), got "
            f"{type(frame).__name__} {getattr(frame, 'dtype', '')}".rstrip()
        )
    if frame.ndim == 3 and frame.shape[2] in (1, 3):
        channels = frame.shape[2]
    elif frame.ndim == 2:
        channels = 1
    else:
        raise ValueError(f"frame must be (H, W, 3) BGR or (H, W) grey, got shape {frame.shape}")
    n = THUMB_SIZE
    block_h, block_w = frame.shape[0] // n, frame.shape[1] // n
    if block_h == 0 or block_w == 0:
        raise ValueError(f"frame must be at least {n}x{n} pixels, got shape {frame.shape}")
    x = frame[: n * block_h, : n * block_w].reshape(n, block_h, n * block_w * channels)
    rows = x.sum(axis=1, dtype=np.float32)  # (n, n * block_w * channels): column sums of blocks
    g = rows.reshape(n * n, block_w * channels) @ _block_row_weights(block_w, channels)
    g *= np.float32(1.0 / (block_h * block_w))  # grey levels, so STD_FLOOR means what it says
    g -= g.sum() / g.size
    std = math.sqrt(float(g @ g) / g.size)
    g /= max(std, STD_FLOOR)
    return g


def _median(x: np.ndarray) -> float:
    """Median of a 256-value work array (reordered in place)."""
    x.partition((_HALF - 1, _HALF))
    return 0.5 * float(x[_HALF - 1] + x[_HALF])


def plain_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Median absolute difference of two `thumbnail`s; never below `thumbnail_distance`."""
    return _median(np.abs(a - b))


def aligned_distance(a: np.ndarray, b: np.ndarray) -> float:
    """`plain_distance` once each thumbnail's brightness is refitted to the other's (symmetric).

    Each direction fits ``y ~ gain * x + offset`` by least trimmed squares: from the identity,
    each C-step (Rousseeuw & Van Driessen, "Computing LTS regression for large data sets",
    2006) refits by least squares on the half of the blocks with the smallest residuals. The
    result is the larger of the two directions' median absolute residuals.
    """
    x = np.stack((b, a)).astype(np.float64)  # row 0 fits a to b, row 1 b to a
    y = x[::-1].copy()
    # Per direction: sums of 1, x, y, x*x, x*y over the chosen blocks, in one matmul.
    terms = np.stack((np.ones_like(x), x, y, x * x, x * y), axis=1)  # (2, 5, 256)
    coef = np.array([[1.0, 0.0], [1.0, 0.0]])  # (gain, offset) per direction
    for _ in range(_ALIGN_STEPS):
        residual = np.abs(y - (coef[:, :1] * x + coef[:, 1:]))
        kth = np.partition(residual, _HALF - 1, axis=1)[:, _HALF - 1 : _HALF]
        chosen = (residual <= kth).astype(np.float64)  # the best half (ties can add a block)
        sums = (terms @ chosen[:, :, None])[:, :, 0].tolist()
        for k, (n, sx, sy, sxx, sxy) in enumerate(sums):
            mx, my = sx / n, sy / n
            var, cov = sxx / n - mx * mx, sxy / n - mx * my
            gain = min(max(cov / var, 1 / _MAX_GAIN), _MAX_GAIN) if var > 1e-9 else 1.0
            coef[k] = (gain, my - gain * mx)
    residual = np.abs(y - (coef[:, :1] * x + coef[:, 1:]))
    residual.partition((_HALF - 1, _HALF), axis=1)
    return float(0.5 * (residual[:, _HALF - 1] + residual[:, _HALF]).max())


def thumbnail_distance(a: np.ndarray, b: np.ndarray) -> float:
    """The smaller of `plain_distance` and `aligned_distance` of two `thumbnail`s."""
    plain = plain_distance(a, b)
    return min(plain, aligned_distance(a, b))


def frame_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How different two frames' pictures are, ignoring global brightness (0 = same picture).

    Measured scale: see `CUT_THRESHOLD`.
    """
    return thumbnail_distance(thumbnail(a), thumbnail(b))


class CutDetector:
    """Tells when a camera's sampled frame starts a new scene (one per camera; not thread-safe)."""

    def __init__(self, threshold: float = CUT_THRESHOLD) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float):
            raise ValueError(f"threshold must be a number, got {threshold!r}")
        if not math.isfinite(threshold) or threshold <= 0:
            raise ValueError(f"threshold must be finite and > 0, got {threshold}")
        self.threshold = float(threshold)
        self.last_distance: float | None = None
        """`frame_distance` of the latest frame to the one before (None after a reset), for
        metrics; when the plain distance is already within the threshold the alignment step is
        skipped and this can be higher (never across the threshold)."""
        self._previous: np.ndarray | None = None
        self._armed = True

    def update(self, frame_small_bgr: np.ndarray) -> bool:
        """True when this frame starts a new scene relative to the previous sampled frame.

        The caller then starts a new window with this frame. The first frame after
        construction or `reset` is never a cut (there is nothing to compare it with).
        """
        current = thumbnail(frame_small_bgr)
        previous, self._previous = self._previous, current
        if previous is None:
            self.last_distance = None
            return False
        distance = plain_distance(current, previous)
        if distance > self.threshold:  # rare: only then is the alignment step worth its cost
            distance = min(distance, aligned_distance(current, previous))
        self.last_distance = distance
        above = distance > self.threshold
        cut = above and self._armed
        self._armed = not above
        return cut

    def reset(self) -> None:
        """Forget the previous frame (stream reconnected, camera restarted, a gap in frames)."""
        self._previous = None
        self.last_distance = None
        self._armed = True
