"""The daemon's two clocks: monotonic time for every interval and schedule, wall time only for
the timestamps people read.

A wall clock steps (NTP correcting a board that booted without a real-time clock, an operator
running `date -s`); anything timed by it would stall or burst for as long as the step. So every
interval, schedule and throttle uses `monotonic()`, and frames are stamped on the *timeline*:
monotonic seconds shifted once, at start-up, to read like epoch seconds. The timeline never steps,
so sampling, smoothing, update throttling and clip bookkeeping stay on time whatever the wall
clock does. Payloads show wall time: `wall_offset()` is what to add to a timeline time to get the
wall time, read when the payload is built, so after a step they show the corrected time.

Tests inject both functions; `wall` is looked up at each call, so a process that replaces
`time.time` (a fault-injection launcher) steps this clock too.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def _system_wall() -> float:
    return time.time()


class Clock:
    """Monotonic time, wall time and the timeline between them (see the module docstring)."""

    def __init__(
        self,
        wall: Callable[[], float] = _system_wall,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._anchor = wall() - monotonic()

    def monotonic(self) -> float:
        """Seconds that never step: for intervals, schedules and ages."""
        return self._monotonic()

    def wall(self) -> float:
        """Epoch seconds as the system says now: only for timestamps in payloads."""
        return self._wall()

    def timeline(self) -> float:
        """Epoch-like seconds that never step: what frames are stamped with."""
        return self._monotonic() + self._anchor

    def wall_offset(self) -> float:
        """Add to a timeline time to get the wall time (0 until the wall clock steps)."""
        return self._wall() - self.timeline()
