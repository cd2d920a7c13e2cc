"""Periodic jobs of the daemon's main thread: watchdog, statistics, clip ticks, supervision.

A job runs when due by the monotonic clock (a wall-clock step changes nothing), at most once
per `run_due`, and is rescheduled from the time it ran, so a stall never causes a burst of
catch-up runs. A failing job is logged (throttled) and runs again at its next time: one broken
job never stops the others.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)

Job = Callable[[], object]


@dataclass
class _Entry:
    name: str
    fn: Job
    due: float
    every_s: float | None  # None: run once


class Housekeeping:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: list[_Entry] = []
        self._throttle = LogThrottle(60.0, clock)
        self.failures = 0

    def every(
        self, name: str, interval_s: float, fn: Job, *, first_in_s: float | None = None
    ) -> None:
        """Run `fn` every `interval_s` seconds, the first time after `first_in_s` (default:
        one interval)."""
        if interval_s <= 0:
            raise ValueError(f"{name}: interval must be > 0, got {interval_s}")
        first = interval_s if first_in_s is None else first_in_s
        with self._lock:
            self._jobs.append(_Entry(name, fn, self._clock() + first, interval_s))

    def once(self, name: str, delay_s: float, fn: Job) -> None:
        """Run `fn` once, `delay_s` from now; safe to call from any thread."""
        with self._lock:
            self._jobs.append(_Entry(name, fn, self._clock() + delay_s, None))

    @property
    def names(self) -> list[str]:
        with self._lock:
            return [job.name for job in self._jobs]

    def run_due(self) -> int:
        """Run every job that is due; returns how many ran."""
        now = self._clock()
        with self._lock:
            due = [job for job in self._jobs if job.due <= now]
            for job in due:
                if job.every_s is None:
                    self._jobs.remove(job)
                else:
                    job.due = now + job.every_s
        for job in due:
            try:
                job.fn()
            except Exception as err:
                self.failures += 1
                held = self._throttle.allow(job.name)
                if held is not None:
                    log.error(
                        "housekeeping.job_failed",
                        job=job.name,
                        error=f"{type(err).__name__}: {err}",
                        suppressed=held,
                    )
        return len(due)
