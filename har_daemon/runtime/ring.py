"""A preallocated, thread-safe ring of the most recent sampled frames, and when to take a window.

One capture thread per camera pushes resized frames; the inference thread takes a window (the
whole ring, oldest frame first) every `stride` newly pushed frames once the ring is full. Both
sides touch only preallocated arrays: `push` copies one frame into its slot and `snapshot` can
write into a caller-provided array, so the per-frame path allocates nothing.

Counts are totals since the ring was made and never go back, so a scheduler can remember "the
count when I last took a window" across `clear()` (which a capture thread calls after a stream
gap, so that a window never mixes frames from before and after the gap).
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class StrideSchedule:
    """When the next window is due: every `stride` new frames, newest window only.

    Pure bookkeeping (no locks, no arrays). A window is due once the ring is full and at least
    `stride` frames were pushed since the last window taken. If the taker falls behind, it takes
    only the newest window; each due window it never took counts as stale in `windows_skipped`.

    `full_since` is the ring's count at the moment it last became full (0 when unknown): a ring
    cleared after the last take is due as soon as it is full again, and windows that were never
    available (while it refilled) are not counted as stale.
    """

    def __init__(self, stride: int) -> None:
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride = int(stride)
        self.last_taken: int | None = None
        self.windows_taken = 0
        self.windows_skipped = 0

    def _refilled(self, full_since: int) -> bool:
        return self.last_taken is None or self.last_taken < full_since

    def ready(self, count_pushed: int, full: bool, full_since: int = 0) -> bool:
        """True when a window should be taken now."""
        if not full:
            return False
        if self._refilled(full_since):
            return True
        assert self.last_taken is not None
        return count_pushed - self.last_taken >= self.stride

    def mark_taken(self, count: int, full_since: int = 0) -> int:
        """Record that the window ending at push number `count` was taken.

        Returns how many due windows were skipped as stale since the previous take.
        """
        if self._refilled(full_since):
            # Due windows since the ring became full: at full_since, full_since + stride, ...
            skipped = max(0, (count - full_since) // self.stride)
        else:
            assert self.last_taken is not None
            skipped = max(0, (count - self.last_taken) // self.stride - 1)
        self.last_taken = count
        self.windows_taken += 1
        self.windows_skipped += skipped
        return skipped

    def reset(self) -> None:
        """Forget the last take (counters are kept)."""
        self.last_taken = None


class Window(NamedTuple):
    """A window taken from a `FrameRing`."""

    frames: np.ndarray
    """(capacity, *frame_shape), oldest first."""
    times: np.ndarray
    """(capacity,) float64 capture times of `frames`."""
    count: int
    """The ring's push count when the window was taken (the newest frame's number)."""
    skipped: int
    """Due windows skipped as stale since the previous take."""
    captured_at: float | None = None
    """When the newest frame was captured (monotonic s), if the pusher said."""


class FrameRing:
    """Fixed-capacity ring of frames with their capture times.

    `push` is O(1): the frame is copied into the next slot. `snapshot` returns the frames in
    time order (oldest first). All methods are safe to call from different threads. (A
    person-centric model's camera keeps parts of frames instead: `runtime.crop_ring`.)
    """

    def __init__(
        self,
        capacity: int,
        frame_shape: tuple[int, ...],
        dtype: npt.DTypeLike = np.uint8,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.frame_shape: tuple[int, ...] = tuple(int(s) for s in frame_shape)
        self.dtype = np.dtype(dtype)
        self._frames = np.zeros((self.capacity, *self.frame_shape), dtype=self.dtype)
        self._times = np.zeros(self.capacity, dtype=np.float64)
        self._lock = threading.Lock()
        self._head = 0  # slot the next push writes
        self._filled = 0  # valid slots since the last clear (<= capacity)
        self._count = 0  # frames pushed since the ring was made
        self._full_since = 0  # count when the ring last became full
        self._newest_captured: float | None = None

    # -- writer side -------------------------------------------------------------------------

    def push(self, frame: np.ndarray, t: float, captured_at: float | None = None) -> int:
        """Copy `frame` (shape `frame_shape`) into the ring with capture time `t`.

        `captured_at`: when it was captured by the monotonic clock, for the end-to-end latency
        of the window it ends. Returns the push count after this frame.
        """
        if frame.shape != self.frame_shape:
            raise ValueError(f"frame shape {frame.shape} != ring frame shape {self.frame_shape}")
        with self._lock:
            np.copyto(self._frames[self._head], frame)
            return self._advance(t, captured_at)

    def _advance(self, t: float, captured_at: float | None) -> int:
        """Count the frame just written at `_head` (under the lock); the push count after it."""
        self._times[self._head] = t
        self._newest_captured = captured_at
        self._head = (self._head + 1) % self.capacity
        self._count += 1
        if self._filled < self.capacity:
            self._filled += 1
            if self._filled == self.capacity:
                self._full_since = self._count
        return self._count

    def latest(self) -> tuple[np.ndarray, float, int] | None:
        """A copy of the newest frame, its time and the push count; None when empty."""
        with self._lock:
            if not self._filled:
                return None
            slot = (self._head - 1) % self.capacity
            return self._frames[slot].copy(), float(self._times[slot]), self._count

    def clear(self) -> None:
        """Drop the buffered frames (after a stream gap); `count` keeps counting."""
        with self._lock:
            self._filled = 0
            self._head = 0

    # -- state -------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Frames pushed since the ring was made (not reset by `clear`)."""
        return self._count

    @property
    def full(self) -> bool:
        """True once `capacity` frames were pushed since the last `clear`."""
        return self._filled == self.capacity

    @property
    def full_since(self) -> int:
        """The push count at which the ring last became full (0 if it never was)."""
        return self._full_since

    def __len__(self) -> int:
        return self._filled

    def frames_since(self, mark: int) -> int:
        """Frames pushed after the push count `mark`."""
        return self._count - mark

    # -- reader side -------------------------------------------------------------------------

    def _copy_out(self, out: np.ndarray | None, times_out: np.ndarray | None):
        n = self._filled
        if out is None:
            out = np.empty((self.capacity, *self.frame_shape), dtype=self.dtype)
        elif out.shape[1:] != self.frame_shape or out.shape[0] < n:
            raise ValueError(
                f"out has shape {out.shape}; need ({self.capacity}, *{self.frame_shape})"
            )
        if times_out is None:
            times_out = np.empty(self.capacity, dtype=np.float64)
        elif times_out.shape[0] < n:
            raise ValueError(f"times_out has {times_out.shape[0]} slots; need {self.capacity}")
        # Oldest frame: at head when the ring is full, at slot 0 before it wraps.
        start = self._head if n == self.capacity else 0
        first = min(n, self.capacity - start)
        out[:first] = self._frames[start : start + first]
        times_out[:first] = self._times[start : start + first]
        if first < n:
            out[first:n] = self._frames[: n - first]
            times_out[first:n] = self._times[: n - first]
        return out[:n], times_out[:n]

    def snapshot(
        self, out: np.ndarray | None = None, times_out: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Copy the buffered frames, oldest first, and their times.

        Writes into `out` (shape (capacity, *frame_shape)) and `times_out` (capacity,) when
        given, and returns views of the filled part: (len(self), ...) and (len(self),).
        """
        with self._lock:
            return self._copy_out(out, times_out)

    def take(
        self,
        schedule: StrideSchedule,
        out: np.ndarray | None = None,
        times_out: np.ndarray | None = None,
    ) -> Window | None:
        """Atomically: if `schedule` says a window is due, snapshot it and mark it taken.

        Returns None when no window is due. Frames pushed while the window is copied cannot
        slip between the check and the copy.
        """
        with self._lock:
            if not schedule.ready(self._count, self.full, self._full_since):
                return None
            frames, times = self._copy_out(out, times_out)
            skipped = schedule.mark_taken(self._count, self._full_since)
            return Window(frames, times, self._count, skipped, self._newest_captured)
