"""A person-centric camera's ring: per sampled frame, only the pixels its regions can need.

A window's regions come from the looks made during it, so they are known only once its last
frame is in. Keeping each frame whole at working resolution until then cost 20 frames of up to
480x360 per camera (and a second copy for the window taken): the better part of the daemon's
memory at 12 cameras. This ring keeps, per frame, the box around the people seen over the last
window span (`model.regions.kept_area`, which the inference thread sets after each look) at
full resolution when it fits a quarter of the frame, else the whole frame halved
(`kept_view`); a region is cropped from what was kept (`crop_kept`) when its window is taken.
The newest frame is also kept whole, for the detector, the fall stage and the debug view.

All slots live in one preallocated uint8 array; a window is copied out into a caller's
`KeptFrames` (one for all of an inference thread's cameras: it crops each window before taking
the next).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from har_daemon.model.preprocess import Interpolation
from har_daemon.model.regions import Region, crop_kept, keep, kept_budget, kept_view
from har_daemon.runtime.ring import FrameRing, StrideSchedule


@dataclass
class KeptFrames:
    """A window's kept frames, oldest first: `pixels[i]` holds `shapes[i]` (h, w) pixels of the
    working frame's `boxes[i]`, shrunk by `shrinks[i]`."""

    frame_hw: tuple[int, int] = (0, 0)
    pixels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.uint8))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int32))
    shapes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int32))
    shrinks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    times: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    n: int = 0

    def fit(self, capacity: int, budget: int) -> None:
        """Make room for `capacity` frames of `budget` pixels (allocates only to grow)."""
        rows, cols = self.pixels.shape
        if rows < capacity or cols < budget * 3:
            self.pixels = np.zeros((max(rows, capacity), max(cols, budget * 3)), np.uint8)
        if len(self.times) < capacity:
            self.boxes = np.zeros((capacity, 4), np.int32)
            self.shapes = np.zeros((capacity, 2), np.int32)
            self.shrinks = np.zeros(capacity, np.int32)
            self.times = np.zeros(capacity, np.float64)

    def frame(self, i: int) -> np.ndarray:
        """The pixels kept of frame `i` (h, w, 3), a view."""
        h, w = (int(v) for v in self.shapes[i])
        return self.pixels[i, : h * w * 3].reshape(h, w, 3)

    def crop(
        self,
        region: Region,
        size_hw: tuple[int, int],
        interpolation: Interpolation = "area",
        frames: Sequence[int] | None = None,
    ) -> np.ndarray:
        """(len(frames), *size_hw, 3): `region` of each of `frames` (default: all n, oldest
        first) at the model's size. A frame whose kept box misses the region entirely repeats
        the nearest frame of the window that has it, the older on a tie (grey when none does),
        whether or not that frame was asked for: only the frames asked for are cropped, and
        a neighbour only where one stands in."""
        wanted = range(self.n) if frames is None else frames
        made: dict[int, np.ndarray | None] = {}

        def at(i: int) -> np.ndarray | None:
            if i not in made:
                x1, y1, x2, y2 = (int(v) for v in self.boxes[i])
                made[i] = crop_kept(
                    self.frame(i), (x1, y1, x2, y2), int(self.shrinks[i]), region, size_hw,
                    interpolation,
                )  # fmt: skip
            return made[i]

        out = np.empty((len(wanted), *size_hw, 3), np.uint8)
        for k, i in enumerate(wanted):
            if not 0 <= i < self.n:
                raise IndexError(f"frame {i} is not in a window of {self.n}")
            got = at(i)
            near = (j for d in range(1, self.n) for j in (i - d, i + d) if 0 <= j < self.n)
            while got is None and (j := next(near, None)) is not None:
                got = at(j)
            out[k] = 128 if got is None else got
        return out


class KeptWindow(NamedTuple):
    """A window taken from a `CropRing` (fields as `ring.Window`'s)."""

    frames: KeptFrames
    times: np.ndarray
    count: int
    skipped: int
    captured_at: float | None = None


class CropRing(FrameRing):
    """`FrameRing`'s counting and scheduling, over kept parts of frames instead of frames.

    `area` is where the people are (`kept_area`), set by the inference thread and read by the
    capture thread at each push (one reference: no lock needed)."""

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, (0,))
        self.area: Region | None = None
        self.frame_hw: tuple[int, int] = (0, 0)
        self._boxes = np.zeros((self.capacity, 4), np.int32)
        self._shapes = np.zeros((self.capacity, 2), np.int32)
        self._shrinks = np.ones(self.capacity, np.int32)
        self._latest = np.zeros((0, 0, 3), np.uint8)

    def push(self, frame: np.ndarray, t: float, captured_at: float | None = None) -> int:
        """Keep what the regions can need of working frame `frame` (h, w, 3)."""
        frame_hw = (int(frame.shape[0]), int(frame.shape[1]))
        if frame_hw != self.frame_hw:
            self._resize(frame_hw)
        box, shrink = kept_view(frame_hw, self.area)
        kept = keep(frame, box, shrink)
        h, w = kept.shape[:2]
        with self._lock:
            slot = self._head
            self._frames[slot, : h * w * 3].reshape(h, w, 3)[...] = kept
            self._boxes[slot] = box
            self._shapes[slot] = (h, w)
            self._shrinks[slot] = shrink
            np.copyto(self._latest, frame)
            return self._advance(t, captured_at)

    def _resize(self, frame_hw: tuple[int, int]) -> None:
        """A new working size (the first frame, or the stream changed): start afresh."""
        with self._lock:
            if self.frame_hw != (0, 0):  # the old picture's people say nothing about the new
                self.area = None
            self.frame_hw = frame_hw
            self.frame_shape = (kept_budget(frame_hw) * 3,)
            self._frames = np.zeros((self.capacity, *self.frame_shape), np.uint8)
            self._latest = np.zeros((*frame_hw, 3), np.uint8)
            self._filled = 0
            self._head = 0

    def latest(self) -> tuple[np.ndarray, float, int] | None:
        """A copy of the newest working frame, its time and the push count; None when empty."""
        with self._lock:
            if not self._filled:
                return None
            slot = (self._head - 1) % self.capacity
            return self._latest.copy(), float(self._times[slot]), self._count

    def take_kept(self, schedule: StrideSchedule, out: KeptFrames) -> KeptWindow | None:
        """Like `FrameRing.take`: when a window is due, copy it into `out` and mark it taken."""
        with self._lock:
            if not schedule.ready(self._count, self.full, self._full_since):
                return None
            n = self._filled
            out.fit(self.capacity, self.frame_shape[0] // 3)
            order = (np.arange(n) + (self._head if n == self.capacity else 0)) % self.capacity
            for i, slot in enumerate(order):
                h, w = (int(v) for v in self._shapes[slot])
                out.pixels[i, : h * w * 3] = self._frames[slot, : h * w * 3]
            out.boxes[:n] = self._boxes[order]
            out.shapes[:n] = self._shapes[order]
            out.shrinks[:n] = self._shrinks[order]
            out.times[:n] = self._times[order]
            out.frame_hw, out.n = self.frame_hw, n
            skipped = schedule.mark_taken(self._count, self._full_since)
            return KeptWindow(out, out.times[:n], self._count, skipped, self._newest_captured)
