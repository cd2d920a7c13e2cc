"""structlog set-up (JSON, one event per line, on stderr) and throttling of repeated lines."""

from __future__ import annotations

import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import structlog

OVERFLOW_KEY = "(other)"
"""The key every new key shares once a `LogThrottle` holds `max_keys` keys."""

_THROTTLES: weakref.WeakSet[LogThrottle] = weakref.WeakSet()


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    """A logger on the *current* `sys.stderr`: `core.stderr` may swap it after set-up."""
    return structlog.PrintLogger(sys.stderr)


def configure_logging(level: str = "info", json_output: bool = True) -> None:
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )


get_logger = structlog.get_logger


class LogThrottle:
    """At most `burst` log lines per key every `every_s` seconds, saying how many were held back.

    Anything an outsider can trigger (junk commands, a failing disk, a flapping camera, a
    damaged stream) would otherwise write a line per occurrence: `allow(key)` returns None while
    the key is muted, else the number of occurrences suppressed since its last line (0 the
    first time). A burst lets the first few lines of a window through, so an operator's own
    occasional actions are all logged. At most `max_keys` keys are tracked (keys may be derived
    from what an outsider sends); further keys share `OVERFLOW_KEY`, so memory stays bounded.
    Counts no later line reported are logged by `report_suppressed` (the daemon calls it now
    and then), so a flood that stops is still counted.
    """

    def __init__(
        self,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        burst: int = 1,
        max_keys: int = 1024,
    ) -> None:
        if every_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("every_s, burst and max_keys must be positive")
        _THROTTLES.add(self)
        self.every_s = every_s
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, lines in it)
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        now = self._clock()
        with self._lock:
            if key not in self._windows and len(self._windows) >= self.max_keys:
                key = OVERFLOW_KEY
            start, used = self._windows.get(key, (float("-inf"), 0))
            if now - start >= self.every_s:
                start, used = now, 0
            if used >= self.burst:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._windows[key] = (start, used + 1)
            return self._held.pop(key, 0)

    def take_held(self) -> dict[str, int]:
        """Occurrences suppressed and not yet reported, by key; they count as reported now."""
        with self._lock:
            held, self._held = self._held, {}
        return held


def report_suppressed() -> int:
    """Log one `log.suppressed` line per key with lines held back that no later line reported
    (every throttle of the process); returns how many were held back."""
    total = 0
    for throttle in list(_THROTTLES):
        for key, count in sorted(throttle.take_held().items()):
            total += count
            get_logger(__name__).warning("log.suppressed", key=key, suppressed=count)
    return total
