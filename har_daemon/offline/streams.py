"""Long test streams from labelled clips (quiet, incident, quiet, ...) and their TRUTH.csv.

Clips are 2-3 s; a security guard watches hours. Joining a fold's held-out clips into one
recording lets the daemon's own path (`offline.replay`, `offline.stream_eval`) count false
alerts per hour on quiet footage and time to alert on incidents, each clip scored only by the
model that never saw its source. Every clip is re-encoded to one size and frame rate
(letterboxed: a person-centric model must see people at their real shape) and the pieces are
joined without re-encoding, so each clip's span in the stream follows exactly from its frame
count. The joins are real scene cuts: the daemon restarts its ring there, as it would on a
spliced recording, so a clip shorter than one window (20 frames, about 2 s) can raise nothing
on its own. Incident clips cut from the same source video can be joined back to back into one
incident stretch (`join="source"`), which is what a camera on that scene would have shown.
"""

from __future__ import annotations

import csv
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from har_daemon.core.errors import DataError, VideoError
from har_daemon.offline.matching import TruthInterval, write_truth_csv
from har_daemon.video.ffmpeg import FFMPEG
from har_daemon.video.frames import probe_video

Join = Literal["source", "none"]
ENCODE = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p", "-bf", "0"]
MANIFEST_HEADER = ("index", "clip", "label", "source", "stretch", "start_s", "end_s")


@dataclass(frozen=True)
class StreamClip:
    """A labelled clip to put in a stream; `source` is its source video (its split group)."""

    path: Path
    label: str
    source: str


@dataclass(frozen=True)
class Stretch:
    """Consecutive clips of one kind: an incident (`activity`) or quiet footage (None)."""

    clips: tuple[StreamClip, ...]
    activity: str | None


@dataclass(frozen=True)
class PlacedClip:
    clip: StreamClip
    stretch: int
    start_s: float
    end_s: float


@dataclass(frozen=True)
class BuiltStream:
    video: Path
    truth: list[TruthInterval]
    clips: list[PlacedClip]
    duration_s: float
    fps: int
    size: tuple[int, int]


def plan_stream(
    clips: Sequence[StreamClip], alert: str, *, join: Join = "source", seed: int = 0
) -> list[Stretch]:
    """Quiet, incident, quiet, ...: incidents in clip-name order, the quiet clips shuffled
    (seeded, so sources mix) and shared out as evenly as possible before, between and after.
    The plan depends on the clips, not on the order they are listed in.

    With `join="source"`, incident clips of one source that follow each other in name order
    form one stretch; with "none", each incident clip is its own stretch.
    """
    incidents = sorted((c for c in clips if c.label == alert), key=lambda c: c.path.name)
    quiet = sorted((c for c in clips if c.label != alert), key=lambda c: str(c.path))
    order = np.random.default_rng(seed).permutation(len(quiet))
    quiet = [quiet[i] for i in order]
    runs: list[list[StreamClip]] = []
    for c in incidents:
        if join == "source" and runs and runs[-1][-1].source == c.source:
            runs[-1].append(c)
        else:
            runs.append([c])
    gaps = len(runs) + 1
    bounds = np.linspace(0, len(quiet), gaps + 1).round().astype(int)
    out: list[Stretch] = []
    for g in range(gaps):
        share = quiet[bounds[g] : bounds[g + 1]]
        if share:
            out.append(Stretch(tuple(share), None))
        if g < len(runs):
            out.append(Stretch(tuple(runs[g]), alert))
    return out


def _ffmpeg(args: list[str], what: str) -> None:
    cmd = [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0:
        raise VideoError(f"ffmpeg failed on {what}: {result.stderr.strip()[-300:]}")


def normalise_clip(src: Path, dst: Path, size: tuple[int, int], fps: int) -> int:
    """`src` re-encoded to `size` (aspect kept, black bars) at a constant `fps`, no audio;
    returns its frame count (what decides its span in a joined stream)."""
    w, h = size
    vf = (
        f"scale={w}:{h}:force_original_aspect_ratio=decrease,"
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps={fps}"
    )
    _ffmpeg(["-i", str(src), "-an", "-vf", vf, *ENCODE, "-g", str(fps), str(dst)], str(src))
    return probe_video(dst, exact=True).frame_count


def cut_segment(src: Path, dst: Path, start_s: float, duration_s: float) -> None:
    """`duration_s` seconds of `src` from `start_s`, re-encoded (frame-accurate), no audio."""
    args = ["-ss", f"{start_s:.3f}", "-i", str(src), "-t", f"{duration_s:.3f}", "-an"]
    _ffmpeg([*args, *ENCODE, str(dst)], f"{src} at {start_s:.2f} s")


def build_stream(
    stretches: Sequence[Stretch],
    video: Path,
    *,
    size: tuple[int, int] = (640, 360),
    fps: int = 25,
) -> BuiltStream:
    """Write the joined stream to `video`, and beside it `TRUTH.csv` (one interval per incident
    stretch) and `clips.csv` (where each clip lies)."""
    items = [(i, c) for i, s in enumerate(stretches) for c in s.clips]
    if not items:
        raise DataError("no clips to join into a stream")
    video.parent.mkdir(parents=True, exist_ok=True)
    placed: list[PlacedClip] = []
    with tempfile.TemporaryDirectory(prefix="har-stream-") as tmp:
        parts: list[Path] = []
        frames = 0
        for n, (stretch, clip) in enumerate(items):
            part = Path(tmp) / f"{n:05d}.mp4"
            count = normalise_clip(clip.path, part, size, fps)
            placed.append(PlacedClip(clip, stretch, frames / fps, (frames + count) / fps))
            frames += count
            parts.append(part)
        listing = Path(tmp) / "parts.txt"
        listing.write_text("".join(f"file '{p}'\n" for p in parts))
        _ffmpeg(
            ["-f", "concat", "-safe", "0", "-i", str(listing), "-c", "copy", str(video)], "join"
        )
    truth = truth_of(stretches, placed)
    (video.parent / "TRUTH.csv").write_text(write_truth_csv(truth))
    write_manifest(video.parent / "clips.csv", placed)
    return BuiltStream(video, truth, placed, frames / fps, fps, size)


def truth_of(stretches: Sequence[Stretch], placed: Sequence[PlacedClip]) -> list[TruthInterval]:
    """One interval per incident stretch, from its first clip's start to its last clip's end."""
    out = []
    for i, s in enumerate(stretches):
        if s.activity is None:
            continue
        spans = [(p.start_s, p.end_s) for p in placed if p.stretch == i]
        out.append(TruthInterval(round(spans[0][0], 4), round(spans[-1][1], 4), s.activity))
    return out


def write_manifest(path: Path, placed: Sequence[PlacedClip]) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(MANIFEST_HEADER)
        for i, p in enumerate(placed):
            c = p.clip
            w.writerow([i, str(c.path), c.label, c.source, p.stretch, p.start_s, p.end_s])


def read_manifest(path: Path) -> list[PlacedClip]:
    """`clips.csv` back (one line naming the file when it is not one)."""
    try:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
        return [
            PlacedClip(
                StreamClip(Path(r["clip"]), r["label"], r["source"]),
                int(r["stretch"]),
                float(r["start_s"]),
                float(r["end_s"]),
            )
            for r in rows
        ]
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a stream manifest ({exc})") from None
