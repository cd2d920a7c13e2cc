"""Which frames of a live or recorded video enter the model's window.

A model trained on 20 frames spread over a 2 s clip has learned motion at 0.1 s per step; fed
consecutive 25 fps frames it sees motion 2.5x slower and is wrong with confidence. So frames are
taken at the spacing recorded in `model.json`, both by `predict` and by the live daemon.
"""

from __future__ import annotations


class FrameSampler:
    """Picks frames whose timestamps are `spacing_s` apart, keeping phase without drifting."""

    def __init__(self, spacing_s: float) -> None:
        if spacing_s <= 0:
            raise ValueError("spacing_s must be positive")
        self.spacing_s = spacing_s
        self._next_due: float | None = None
        self.sampled = 0
        self.seen = 0

    def offer(self, t_s: float) -> bool:
        """True when the frame at `t_s` should be sampled.

        Due times advance by whole spacings from the first frame, so rounding of frame times
        does not accumulate; after a gap (stall, reconnect) sampling restarts from the new frame
        rather than firing a burst to catch up.
        """
        self.seen += 1
        # Half a frame of tolerance at 25-30 fps keeps e.g. every 2.5th frame on schedule.
        tolerance = min(0.02, self.spacing_s / 4)
        if self._next_due is None or t_s >= self._next_due + self.spacing_s:
            self._next_due = t_s + self.spacing_s
            self.sampled += 1
            return True
        if t_s + tolerance >= self._next_due:
            self._next_due += self.spacing_s
            self.sampled += 1
            return True
        return False

    def reset(self) -> None:
        self._next_due = None
