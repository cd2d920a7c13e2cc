"""Dropping duplicate events by (camera, seq), remembered across a subscriber's restarts.

The daemon delivers at least once: a message is sent again when its acknowledgement was lost
(by the daemon's outbox, by a broker bridge, by a broker's persistent session). Each event
carries its camera's `seq`, one more per message, kept across the daemon's restarts. What a
subscriber must remember per camera to drop every duplicate:

- `high`, the highest seq printed, and
- `missing`, the seqs below `high` and within `WINDOW` of it that never arrived (gaps).

First arrivals come in order per camera (the outbox never lets a newer event overtake an older
one), so `missing` is almost always empty; it fills only from real gaps: events the daemon's
spool dropped when full, or the share of a camera's events that went to another member of a
shared subscription. A duplicate is always a re-send of a message still unacknowledged
somewhere, so it trails `high` by at most the messages in flight: the outbox hands at most 100
to paho, a Mosquitto bridge keeps 20 in flight. `WINDOW` (1000) covers that with room to spare,
and bounds the state: at most `WINDOW` numbers per camera and `MAX_CAMERAS` cameras (the least
recently heard goes first).

A seq more than `WINDOW` below `high` is taken for a camera whose numbering began again (the
daemon lost its spool, e.g. a wiped state directory): it is printed and the camera starts over
from it, with a warning. The one other way to get there, a broker that crashed and came back
from a persistence snapshot holding more than `WINDOW` messages queued for us, then prints those
again: duplicates, never loss, which is the side to err on.

The state is a small JSON file, replaced atomically (write, fsync, rename) after every printed
event and before the event is acknowledged to the broker: a crash in between re-delivers an
event the file already knows (dropped), never loses one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

WINDOW = 1000
MAX_CAMERAS = 10_000
STATE_VERSION = 1


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    RESTARTED = "restarted"
    """New, and the camera's numbering began again (printed, state reset)."""


@dataclass
class CameraSeqs:
    high: int
    missing: set[int] = field(default_factory=set)


class SeqDedup:
    """Per-camera memory of the seqs printed; `camera` is any stable key (the topic's camera
    path). `check` then `record` once printed. Not thread-safe: one message callback uses it.
    """

    def __init__(self, window: int = WINDOW, max_cameras: int = MAX_CAMERAS) -> None:
        if window < 1 or max_cameras < 1:
            raise ValueError("window and max_cameras must be >= 1")
        self.window = window
        self.max_cameras = max_cameras
        self._cameras: OrderedDict[str, CameraSeqs] = OrderedDict()

    def check(self, camera: str, seq: int) -> Verdict:
        """Whether `seq` of `camera` is new (to print) or a duplicate; changes nothing, so an
        event that could not be printed is not remembered."""
        state = self._cameras.get(camera)
        if state is None or seq > state.high or seq in state.missing:
            return Verdict.NEW
        if seq > state.high - self.window:
            return Verdict.DUPLICATE
        return Verdict.RESTARTED

    def record(self, camera: str, seq: int) -> None:
        """Remember `seq` of `camera` as printed."""
        state = self._cameras.get(camera)
        verdict = self.check(camera, seq)
        if state is None or verdict is Verdict.RESTARTED:
            state = self._cameras[camera] = CameraSeqs(high=seq)
        elif seq > state.high:
            state.missing.update(range(max(state.high + 1, seq - self.window + 1), seq))
            state.high = seq
            floor = seq - self.window
            state.missing = {s for s in state.missing if s > floor}
        else:
            state.missing.discard(seq)
        self._cameras.move_to_end(camera)
        while len(self._cameras) > self.max_cameras:
            self._cameras.popitem(last=False)

    def high(self, camera: str) -> int | None:
        state = self._cameras.get(camera)
        return state.high if state is not None else None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "window": self.window,
            "cameras": {
                name: {"high": s.high, "missing": sorted(s.missing)}
                for name, s in self._cameras.items()
            },
        }

    @classmethod
    def from_json(cls, doc: Any, window: int = WINDOW, max_cameras: int = MAX_CAMERAS) -> SeqDedup:
        """ValueError when `doc` is not a state this class wrote."""
        if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
            raise ValueError('no "version": 1')
        dedup = cls(window, max_cameras)
        cameras = doc.get("cameras")
        if not isinstance(cameras, dict):
            raise ValueError("no 'cameras' object")
        try:
            for name, entry in cameras.items():
                high = int(entry["high"])
                gaps = (int(s) for s in entry.get("missing", ()))
                missing = {s for s in gaps if high - window < s < high}
                dedup._cameras[str(name)] = CameraSeqs(high, missing)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"bad camera entry: {exc}") from None
        return dedup


class StateFile:
    """The dedup state on disk: loaded once, replaced atomically on every save."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> SeqDedup:
        """The saved state, a fresh one when the file does not exist. OSError when it cannot
        be read, ValueError when it is not a state file (never overwritten then)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return SeqDedup()
        try:
            return SeqDedup.from_json(json.loads(text))
        except ValueError as exc:
            raise ValueError(f"{self.path} is not a har-daemon events state file: {exc}") from None

    def save(self, dedup: SeqDedup) -> None:
        """Write, fsync, rename over the old file, fsync the folder. OSError on failure."""
        data = json.dumps(dedup.to_json(), separators=(",", ":")).encode()
        folder = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
