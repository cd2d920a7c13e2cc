"""One dataset folder from several: the fight clips plus everyday-activity clips as negatives.

A fight model that never saw people walk, sit, bend or lie down in a room alarms on them. The
`falls/` recordings show exactly that, but they are 3-16 s long, while the fight clips are about
2 s and training samples 20 frames evenly over each clip: a 15 s clip would teach motion at
seven times the model's frame spacing. So a long clip becomes consecutive `segment_s` pieces
(re-encoded, frame-accurate; at most `max_pieces`, spread over the recording), each a clip of
its own in its source's group: grouped splits keep
every piece of a recording, and every recording of one actor or lab, on one side.

The folder holds symbolic links to the original clips and the cut pieces, never copies of the
data inside the repository, and a merged `sources.csv` (`clip,label,source,origin,start_s,end_s`)
that `scan_dataset` reads for the groups.
"""

from __future__ import annotations

import csv
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_daemon.core.errors import DataError, HarError
from har_daemon.offline.streams import cut_segment
from har_daemon.training.dataset import SOURCES_CSV, scan_dataset
from har_daemon.video.frames import probe_video

HEADER = ("clip", "label", "source", "origin", "start_s", "end_s")


@dataclass(frozen=True)
class Entry:
    """One clip of the assembled set: where it comes from and which group it belongs to."""

    name: str  # file name in the class folder
    label: str
    source: str
    origin: Path
    start_s: float | None = None  # a piece of `origin`: its start and end
    end_s: float | None = None


def segment_starts(duration_s: float, segment_s: float, max_pieces: int = 3) -> list[float]:
    """Starts of the consecutive `segment_s` pieces that fit in a clip (the rest is dropped;
    a clip shorter than one piece gives none), at most `max_pieces` spread over the clip, so
    one long recording does not outweigh the short clips of other scenes."""
    if segment_s <= 0 or max_pieces < 1:
        raise ValueError(f"need segment_s > 0 and max_pieces >= 1, got {segment_s}, {max_pieces}")
    n = int(duration_s // segment_s + 1e-9)
    keep = sorted({round(float(v)) for v in np.linspace(0, n - 1, min(n, max_pieces))})
    return [round(i * segment_s, 3) for i in keep] if n else []


def plan_entries(
    base: Path,
    *,
    label: str | None = None,
    classes: Sequence[str] | None = None,
    prefix: str = "",
    segment_s: float | None = None,
    max_pieces: int = 3,
) -> list[Entry]:
    """The clips of one dataset folder (its `classes`), relabelled `label` when given; clips
    longer than 1.5 x `segment_s` are cut into pieces."""
    entries = []
    for rec in scan_dataset(base, classes):
        stem = f"{prefix}{rec.path.stem}"
        target = label or rec.label
        duration = probe_video(rec.path).duration_s if segment_s else 0.0
        if segment_s and duration > 1.5 * segment_s:
            for k, start in enumerate(segment_starts(duration, segment_s, max_pieces)):
                entries.append(
                    Entry(
                        f"{stem}-p{k:02d}.mp4",
                        target,
                        rec.group,
                        rec.path,
                        start,
                        round(start + segment_s, 3),
                    )
                )
        else:
            entries.append(Entry(f"{stem}{rec.path.suffix}", target, rec.group, rec.path))
    return entries


def write_dataset(out: Path, entries: Sequence[Entry]) -> Path:
    """Links and pieces under `out/<label>/`, and `out/sources.csv`. Refuses to write into a
    git checkout (the data must never be committed) or over an existing folder."""
    out = Path(out)
    for parent in [out.resolve(), *out.resolve().parents]:
        if (parent / ".git").exists():
            raise DataError(f"{out}: inside the git checkout {parent}; assemble the data elsewhere")
    if out.exists() and any(out.iterdir()):
        raise DataError(f"{out}: exists and is not empty")
    names = [(e.label, e.name) for e in entries]
    if len(set(names)) != len(names):
        raise DataError("two clips would get the same name; give each folder a prefix")
    for e in entries:
        folder = out / e.label
        folder.mkdir(parents=True, exist_ok=True)
        dst = folder / e.name
        if e.start_s is None or e.end_s is None:
            os.symlink(e.origin.resolve(), dst)
        else:
            cut_segment(e.origin, dst, e.start_s, e.end_s - e.start_s)
    with (out / SOURCES_CSV).open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        for e in entries:
            w.writerow(
                [
                    Path(e.name).stem,
                    e.label,
                    e.source,
                    str(e.origin.resolve()),
                    "" if e.start_s is None else e.start_s,
                    "" if e.end_s is None else e.end_s,
                ]
            )
    return out / SOURCES_CSV


def describe(out: Path, entries: Sequence[Entry]) -> str:
    """One line for the person who assembled the folder: clips per label, source groups."""
    counts = Counter(e.label for e in entries)
    groups = {e.source for e in entries}
    per_label = ", ".join(f"{k} {v}" for k, v in counts.items())
    return f"{out}: {len(entries)} clips ({per_label}) in {len(groups)} source groups"


def read_origins(root: Path) -> dict[str, tuple[Path, float | None, float | None]]:
    """Each clip stem's original file (and piece) from an assembled `sources.csv`; empty for a
    folder that was not assembled."""
    path = Path(root) / SOURCES_CSV
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or "origin" not in rows[0]:
        return {}
    return {
        r["clip"]: (
            Path(r["origin"]),
            float(r["start_s"]) if r.get("start_s") else None,
            float(r["end_s"]) if r.get("end_s") else None,
        )
        for r in rows
    }


def assemble(out: Path, plan: Callable[[], list[Entry]]) -> int:
    """What each assembly script's main does: plan the entries, write them, one line about the
    result; a bad folder or clip is one line on stderr and exit status 2."""
    try:
        entries = plan()
        write_dataset(out, entries)
    except (HarError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(describe(out, entries))
    return 0
