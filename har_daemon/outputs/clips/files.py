"""Where clips live: their names, and the `.partial/` directory they are written in.

A clip is written under `<directory>/.partial/` and renamed into `<directory>` when complete,
so a `*.mp4` in the directory is always a finished, playable clip (MP4 writes its index last).
"""

from __future__ import annotations

import contextlib
import re
import tempfile
import time
from pathlib import Path

from har_daemon.core.errors import HarError
from har_daemon.core.logs import get_logger

log = get_logger(__name__)

PARTIAL_DIR = ".partial"
CLIP_SUFFIX = ".mp4"

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class ClipsError(HarError):
    """Clips cannot be written: the directory is unusable, or the codec asked for is missing."""


def _clean(part: str, limit: int = 64) -> str:
    cleaned = _UNSAFE.sub("_", part).strip("_-")[:limit]
    return cleaned or "x"


def clip_filename(camera: str, t_start: float, activity: str, event_id: str) -> str:
    """`<camera>-<UTC yyyymmddTHHMMSSZ>-<activity>-<event id prefix>.mp4`, safe on any disk."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t_start))
    return f"{_clean(camera)}-{stamp}-{_clean(activity)}-{_clean(event_id, 8)}{CLIP_SUFFIX}"


def prepare_directory(directory: Path) -> Path:
    """Create `directory/.partial`, prove it writable, delete leftovers; returns it.

    A partial clip left by a crash has no MP4 index and cannot be played, so it goes. Raises
    `ClipsError` at start-up rather than failing on the first event.
    """
    partial_dir = directory / PARTIAL_DIR
    try:
        partial_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile(dir=partial_dir, prefix="probe-"):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ClipsError(f"clip directory {directory} is not writable: {reason}") from None
    for entry in partial_dir.iterdir():
        with contextlib.suppress(OSError):
            entry.unlink()
            log.warning("clips.partial_removed", path=str(entry))
    return partial_dir
