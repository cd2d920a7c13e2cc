"""structlog set-up (JSON, one event per line, on stderr) and throttling of repeated lines."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

import structlog


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
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )


get_logger = structlog.get_logger


class LogThrottle:
    """At most one log line per key every `every_s` seconds, saying how many were held back.

    Anything an outsider can trigger (junk commands, a failing disk, a flapping camera) would
    otherwise write a line per occurrence: `allow(key)` returns None while the key is muted,
    else the number of occurrences suppressed since its last line (0 the first time).
    """

    def __init__(self, every_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        now = self._clock()
        with self._lock:
            if now < self._next.get(key, float("-inf")):
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._next[key] = now + self.every_s
            return self._held.pop(key, 0)
