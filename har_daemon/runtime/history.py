"""A short, downscaled history of one camera's full-resolution frames.

The model's ring holds 64x64 frames only; an event snapshot and a clip's pre-roll need the frames
a person would want to see, from a few seconds before the event was recognised. Frames are
downscaled on the way in (to the widest snapshot/clip width) so the history costs a bounded,
predictable amount of memory: at most `max_frames` frames, none older than `max_age_s` behind
the newest.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque

import cv2
import numpy as np

from har_daemon.core.geometry import fit_width_size


def fit_width(frame: np.ndarray, max_width: int) -> np.ndarray:
    """`frame` scaled down to `max_width` (aspect kept, INTER_AREA); a narrower frame is copied.

    Always returns a new array, so the caller's (capture) buffer can be reused safely.
    """
    height, width = frame.shape[:2]
    size = fit_width_size(width, height, max_width)
    if size == (width, height):
        return frame.copy()
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


class FrameHistory:
    """Thread-safe store of `(t, frame)`, oldest first; written by a capture thread, read by
    the inference thread (snapshots) and the clip recorder (pre-roll)."""

    def __init__(self, max_age_s: float, max_width: int, *, max_frames: int = 300) -> None:
        if max_age_s <= 0:
            raise ValueError("max_age_s must be positive")
        if max_width < 1:
            raise ValueError("max_width must be at least 1")
        if max_frames < 1:
            raise ValueError("max_frames must be at least 1")
        self.max_age_s = max_age_s
        self.max_width = max_width
        self.max_frames = max_frames
        self._lock = threading.Lock()
        self._times: deque[float] = deque()
        self._frames: deque[np.ndarray] = deque()

    def push(self, frame: np.ndarray, t: float) -> np.ndarray:
        """Store a downscaled copy of `frame` taken at `t`; returns the stored frame.

        The returned array is shared with the history and must not be modified (hand it to
        `ClipRecorder.add_frame` to avoid downscaling twice). A timestamp going backwards means
        a new timeline (clock step, looped file), so older frames are dropped first.
        """
        small = fit_width(frame, self.max_width)
        with self._lock:
            if self._times and t < self._times[-1]:
                self._times.clear()
                self._frames.clear()
            self._times.append(t)
            self._frames.append(small)
            oldest_kept = t - self.max_age_s
            while len(self._times) > self.max_frames or self._times[0] < oldest_kept:
                self._times.popleft()
                self._frames.popleft()
        return small

    def nearest(self, t: float) -> tuple[float, np.ndarray] | None:
        """The stored frame closest in time to `t` (the earlier one on a tie), or None if empty."""
        with self._lock:
            if not self._times:
                return None
            times = list(self._times)
            i = bisect.bisect_left(times, t)
            if i == len(times) or (i > 0 and t - times[i - 1] <= times[i] - t):
                i -= 1
            return times[i], self._frames[i]

    def since(self, t0: float) -> list[tuple[float, np.ndarray]]:
        """Every stored frame taken at or after `t0`, oldest first."""
        with self._lock:
            times = list(self._times)
            i = bisect.bisect_left(times, t0)
            return [(times[j], self._frames[j]) for j in range(i, len(times))]

    def latest(self) -> tuple[float, np.ndarray] | None:
        with self._lock:
            if not self._times:
                return None
            return self._times[-1], self._frames[-1]

    def clear(self) -> None:
        """Forget everything: called on a stream gap, so no clip or snapshot spans it."""
        with self._lock:
            self._times.clear()
            self._frames.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._times)
