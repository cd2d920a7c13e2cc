"""Dropping duplicate events by (camera, seq, content), remembered across restarts.

The daemon delivers at least once: a message is sent again when its acknowledgement was lost
(by the daemon's outbox, by a broker bridge, by a broker's persistent session). A re-send is
always the same content (the outbox re-sends the spooled payload; brokers and bridges never touch
it), and two distinct events never are (each has its own `id`, `seq` and timestamps). So a
subscriber drops a message as a duplicate only when it has printed that camera's `seq` with the
same content digest (`digest` of the event's canonical JSON, `canonical`, so a relay that
re-encodes it changes nothing), among the last `WINDOW` events it printed for that camera.

Not a high-water mark: whoever can publish on an events topic could send a forged high `seq`
(or reuse the next real ones) and make every later real event look like an old one. Here a
forged message hides nothing: a real event with the same seq has other content, so it is
printed (logged as `events.seq_reused`), and a camera whose numbering began again (the daemon
lost its spool) is printed as it comes. The broker's ACL (deploy/mosquitto/acl) keeps forgers
off the events topics in the first place; this is the consumer's own line of defence.

A duplicate trails its original by at most the messages in flight: the outbox hands at most 100
to paho, a Mosquitto bridge keeps 20 in flight. `WINDOW` (256) covers that with room to spare
and bounds the state: `WINDOW` (seq, digest) pairs per camera and `MAX_CAMERAS` cameras (the
least recently heard goes first). A duplicate older than the window is printed again: a
duplicate, never a loss, which is the side to err on.

The state is a small JSON file, replaced atomically (write, fsync, rename) after every printed
event and before the event is acknowledged to the broker: a crash in between re-delivers an
event the file already knows (dropped), never loses one. A version 1 file (a high-water mark per
camera) is read as cameras with nothing remembered and rewritten as version 2 on the first save:
at most the events in flight at the upgrade are printed twice.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import OrderedDict
from enum import Enum
from pathlib import Path
from typing import Any

from har_daemon.core.files import write_atomic

WINDOW = 256
MAX_CAMERAS = 1000
STATE_VERSION = 2
_READABLE_VERSIONS = (1, STATE_VERSION)


class Verdict(Enum):
    NEW = "new"
    DUPLICATE = "duplicate"
    REUSED = "reused"
    """New content under a seq already printed: a forged message, or a camera whose numbering
    began again; printed."""


def canonical(doc: Any) -> bytes:
    """One encoding per JSON value (sorted keys, no spaces): what `digest` is taken of."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(payload: bytes) -> str:
    """A short content hash: 64 bits are plenty to tell the events of one window apart."""
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


class SeqDedup:
    """Per-camera memory of the last `window` (seq, digest) pairs printed; `camera` is any
    stable key (the topic's camera path). `check` then `record` once printed. Not thread-safe:
    one message callback uses it."""

    def __init__(self, window: int = WINDOW, max_cameras: int = MAX_CAMERAS) -> None:
        if window < 1 or max_cameras < 1:
            raise ValueError("window and max_cameras must be >= 1")
        self.window = window
        self.max_cameras = max_cameras
        # camera -> (seq, digest) -> None, oldest first
        self._cameras: OrderedDict[str, OrderedDict[tuple[int, str], None]] = OrderedDict()

    def check(self, camera: str, seq: int, payload: bytes) -> Verdict:
        """Whether the event is new (to print) or a duplicate; changes nothing, so an event
        that could not be printed is not remembered."""
        seen = self._cameras.get(camera)
        if seen is None:
            return Verdict.NEW
        if (seq, digest(payload)) in seen:
            return Verdict.DUPLICATE
        return Verdict.REUSED if any(s == seq for s, _ in seen) else Verdict.NEW

    def last_seq(self, camera: str) -> int | None:
        """The `seq` printed last for `camera`, None before its first (or after a version 1
        state, which remembers none)."""
        seen = self._cameras.get(camera)
        return next(reversed(seen))[0] if seen else None

    def record(self, camera: str, seq: int, payload: bytes) -> None:
        """Remember the event as printed."""
        seen = self._cameras.setdefault(camera, OrderedDict())
        key = (seq, digest(payload))
        seen[key] = None
        seen.move_to_end(key)
        while len(seen) > self.window:
            seen.popitem(last=False)
        self._cameras.move_to_end(camera)
        while len(self._cameras) > self.max_cameras:
            self._cameras.popitem(last=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "window": self.window,
            "cameras": {name: [[s, d] for s, d in seen] for name, seen in self._cameras.items()},
        }

    @classmethod
    def from_json(cls, doc: Any, window: int = WINDOW, max_cameras: int = MAX_CAMERAS) -> SeqDedup:
        """ValueError when `doc` is not a state this class (or version 1) wrote."""
        if not isinstance(doc, dict) or doc.get("version") not in _READABLE_VERSIONS:
            raise ValueError(f'no "version": {STATE_VERSION}')
        dedup = cls(window, max_cameras)
        cameras = doc.get("cameras")
        if not isinstance(cameras, dict):
            raise ValueError("no 'cameras' object")
        for name, entry in list(cameras.items())[-max_cameras:]:
            seen = dedup._cameras[str(name)] = OrderedDict()
            if doc["version"] == 1:
                continue  # a high-water mark: nothing to carry over (see the module doc)
            if not isinstance(entry, list):
                raise ValueError(f"bad camera entry {name!r}: not a list")
            for pair in entry[-window:]:
                seen[_pair(name, pair)] = None
        return dedup


def _pair(name: str, pair: Any) -> tuple[int, str]:
    """One remembered (seq, digest), checked: JSON may hold 1e400, true, or anything."""
    if not (isinstance(pair, list) and len(pair) == 2):
        raise ValueError(f"bad camera entry {name!r}: {str(pair)[:40]}")
    seq, dig = pair
    if isinstance(seq, bool) or not isinstance(seq, int | float) or not math.isfinite(seq):
        raise ValueError(f"bad seq in camera entry {name!r}: {str(seq)[:40]}")
    if not isinstance(dig, str) or len(dig) != 16:
        raise ValueError(f"bad digest in camera entry {name!r}")
    return int(seq), dig


class StateFile:
    """The dedup state on disk: loaded once, replaced atomically on every save."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> SeqDedup:
        """The saved state, a fresh one when the file does not exist. OSError when it cannot
        be read, ValueError when it is not a state file (never overwritten then)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return SeqDedup()
        try:  # json.loads: UnicodeDecodeError and RecursionError included, never a traceback
            return SeqDedup.from_json(json.loads(data))
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"{self.path} is not a har-daemon events state file: {exc}") from None

    def save(self, dedup: SeqDedup) -> None:
        """Write, fsync, rename over the old file, fsync the folder. OSError on failure."""
        data = json.dumps(dedup.to_json(), separators=(",", ":")).encode()
        write_atomic(self.path, data, make_folder=False)
