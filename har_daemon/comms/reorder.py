"""Putting a camera's events back in `seq` order when the broker tier delivered them out of it.

The daemon hands events to the broker in order, but a broker does not keep that order across a
subscriber's (or a bridge's) reconnect: messages queued while the client was away and messages
that arrive during the hand-back can interleave. Measured with Mosquitto 2.0.11, a site broker
bridged to a central one and a consumer reconnecting while the bridge caught up: one camera's
seq 31 reached the consumer before its seq 8-30. A dashboard that saw an `end` before its
`start` would show the alert the wrong way round.

So the consumer holds an event whose `seq` is ahead of the next one expected for its camera
(last printed + 1) for up to `hold_s`, and releases it as soon as the gap fills. A gap that does
not fill in time (an event lost for good: the spool's bounds, a forged `seq`) releases what is
held, in `seq` order, and printing goes on from there. An event at or below the expected `seq`
(a camera whose numbering began again, a re-send the dedup did not know) is never held. Nothing
is known about a camera until its first event, which is released at once.

Pure logic: the caller passes the time and does the printing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

HOLD_S = 2.0
"""Default wait for a missing `seq`: a reconnect's catch-up takes well under a second here."""


@dataclass
class _Camera(Generic[T]):
    last: int | None
    held: dict[int, tuple[float, T]] = field(default_factory=dict)  # seq -> (deadline, item)


class Reorder(Generic[T]):
    """Per camera: the last `seq` released and the events held back for a gap before them."""

    def __init__(self, hold_s: float = HOLD_S) -> None:
        if hold_s < 0:
            raise ValueError("hold_s must be >= 0")
        self.hold_s = hold_s
        self._cameras: dict[str, _Camera[T]] = {}

    def know(self, camera: str, last: int | None) -> None:
        """Start from what was printed before (the dedup state), so a gap right after a restart
        is waited for too."""
        if camera not in self._cameras:
            self._cameras[camera] = _Camera(last)

    def get(self, camera: str, seq: int) -> T | None:
        """The item held under (`camera`, `seq`), if any."""
        state = self._cameras.get(camera)
        entry = state.held.get(seq) if state is not None else None
        return entry[1] if entry is not None else None

    def held(self) -> int:
        return sum(len(c.held) for c in self._cameras.values())

    def offer(self, camera: str, seq: int, item: T, now: float) -> list[T]:
        """The items to print now, in order: `item` and whatever it frees, or nothing (held)."""
        state = self._cameras.setdefault(camera, _Camera(None))
        if self.hold_s > 0 and state.last is not None and seq > state.last + 1:
            if seq not in state.held:  # a second copy of a held seq waits behind the first
                state.held[seq] = (now + self.hold_s, item)
            return []
        state.last = seq
        return [item, *self._chain(state)]

    def due(self, now: float) -> list[tuple[str, T]]:
        """What to print because a wait ran out: while a camera's oldest hold has expired, the
        gap before its lowest held `seq` is given up and that run of consecutive events goes."""
        out: list[tuple[str, T]] = []
        for camera, state in self._cameras.items():
            while state.held and min(d for d, _ in state.held.values()) <= now:
                state.last = min(state.held) - 1
                out.extend((camera, item) for item in self._chain(state))
        return out

    def flush(self) -> list[tuple[str, T]]:
        """Everything held, in `seq` order per camera: at shutdown."""
        out: list[tuple[str, T]] = []
        for camera, state in self._cameras.items():
            out.extend((camera, item) for item in self._drain(state))
        return out

    @staticmethod
    def _chain(state: _Camera[T]) -> list[T]:
        out = []
        while state.last is not None and state.last + 1 in state.held:
            state.last += 1
            out.append(state.held.pop(state.last)[1])
        return out

    @staticmethod
    def _drain(state: _Camera[T]) -> list[T]:
        out = []
        for seq in sorted(state.held):
            out.append(state.held.pop(seq)[1])
            state.last = seq
        return out
