"""The clip directory's disk budget: delete clips past `max_age_s`, then the oldest while the
directory is over `max_bytes`.

The newest clip is never deleted for size, so an event's announced clip exists even when that
one clip exceeds the budget; nor is `keep` (the clip just saved). Files other than `*.mp4`
and the `.partial/` directory are never touched.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import NamedTuple

from har_daemon.core.logs import get_logger
from har_daemon.outputs.clips.files import CLIP_SUFFIX

log = get_logger(__name__)


class ClipFile(NamedTuple):
    """A finished clip as the directory lists it; tuples sort oldest first."""

    mtime: float
    size: int
    path: Path


def expired(
    clips: Sequence[ClipFile], now: float, max_age_s: float, keep: Path | None
) -> list[ClipFile]:
    """The clips older than `max_age_s` at `now`, except `keep`."""
    return [c for c in clips if now - c.mtime > max_age_s and c.path != keep]


def over_budget(
    clips: Sequence[ClipFile], max_bytes: int, protected: Collection[Path | None]
) -> list[ClipFile]:
    """Oldest first, the clips (of `clips`, sorted oldest first) to delete to bring their total
    size within `max_bytes`; never the newest one nor a `protected` one."""
    total = sum(c.size for c in clips)
    doomed = []
    for clip in clips[:-1]:
        if total <= max_bytes:
            break
        if clip.path in protected:
            continue
        doomed.append(clip)
        total -= clip.size
    return doomed


def scan(directory: Path) -> list[ClipFile]:
    """The finished clips in `directory`, oldest first (raises OSError if it cannot be read)."""
    clips = []
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.name.endswith(CLIP_SUFFIX) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    st = entry.stat(follow_symlinks=False)
                    clips.append(ClipFile(st.st_mtime, st.st_size, Path(entry.path)))
    return sorted(clips)


def _delete(clip: ClipFile, reason: str, **extra: object) -> bool:
    """Unlink and log; False (logged) when the file could not be deleted."""
    try:
        clip.path.unlink()
    except FileNotFoundError:
        return True  # someone else deleted it: the budget is served all the same
    except OSError as exc:
        log.warning("clips.delete_failed", path=str(clip.path), error=str(exc))
        return False
    log.info("clips.deleted", path=str(clip.path), reason=reason, bytes=clip.size, **extra)
    return True


def prune(
    directory: Path, *, max_bytes: int, max_age_s: float, now: float, keep: Path | None = None
) -> list[Path]:
    """Apply the budget to `directory` (see the module docstring); returns the deleted paths."""
    try:
        clips = scan(directory)
    except OSError as exc:
        log.warning("clips.prune_failed", directory=str(directory), error=str(exc))
        return []
    deleted: list[Path] = []
    for clip in expired(clips, now, max_age_s, keep):
        if _delete(clip, "age"):
            deleted.append(clip.path)
            clips.remove(clip)
    protected: set[Path | None] = {keep}  # and, below, clips that could not be deleted
    while doomed := over_budget(clips, max_bytes, protected):
        for clip in doomed:
            if _delete(clip, "budget", age_s=round(now - clip.mtime)):
                deleted.append(clip.path)
                clips.remove(clip)
            else:
                protected.add(clip.path)
    return deleted
