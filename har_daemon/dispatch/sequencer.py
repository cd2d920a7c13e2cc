"""Per-camera message numbers (`seq`), which subscribers use to drop duplicates and spot gaps.

With a spool they are persistent (replayed events never reuse a number after a restart). A
failing spool (a full disk) must not stop events: the number then continues in memory from
the last one handed out, the failure is counted and logged (throttled), and the next number the
spool gives is never below what was already used.
"""

from __future__ import annotations

from collections.abc import Callable

from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)

NextSeq = Callable[[str], int]


class Sequencer:
    def __init__(self, persistent: NextSeq | None = None) -> None:
        self._persistent = persistent
        self._last: dict[str, int] = {}
        self._throttle = LogThrottle(30.0)
        self.failures = 0

    def next(self, camera: str) -> int:
        last = self._last.get(camera, 0)
        seq = last + 1
        if self._persistent is not None:
            try:
                seq = max(seq, self._persistent(camera))
            except Exception as err:
                self.failures += 1
                held = self._throttle.allow("seq")
                if held is not None:
                    log.error(
                        "spool.seq_failed",
                        camera=camera,
                        error=f"{type(err).__name__}: {err}",
                        action="numbering in memory until the spool works again",
                        suppressed=held,
                    )
        self._last[camera] = seq
        return seq
