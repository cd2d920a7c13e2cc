"""The fall evaluation's data: clips, their labels and groups, and their cached pose tracks.

Reads ../shared/data/falls (GMDCSA24, ASSIST-IoT) and ../shared/data/quiet; runs the person
detector and the pose model on every sampled frame and caches what they found per clip under
/tmp (never in the repository): `Clip` knows what a clip is, `extract` what was seen in it.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import POSE_FILE, PoseEstimator
from har_daemon.model.rotated import LOOK_SCALE
from har_daemon.runtime.falls import DETECT_SCORE, SPACING_S
from har_daemon.runtime.lying import (
    DOWN_DROP,
    DOWN_SPEED,
    LOOK_COVERAGE,
    LOOK_MIN_PX,
    LOOK_MODE,
    POOR_COVERAGE,
    Found,
    LookMode,
    RotatedLook,
    advance,
)
from har_daemon.runtime.poses import PoseTracks
from har_daemon.video.frames import TimedFrames

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CACHE = Path("/tmp/har-fall-cache")
CACHE_VERSION = 1
LOOK_S = 1.6
"""The turned second look's window (FallRule.look_s) that the rule grid is offered: the rule's
`fall_window_s`."""
LOOK_VERSION = 2


@dataclass(frozen=True)
class Clip:
    path: Path
    kind: str  # fall | adl | immobile | quiet
    group: str  # leave-one-group-out unit: actor, lab or scene
    fall: tuple[float, float] | None  # the authors' fall interval, when they give one
    note: str = ""


def _interval(description: str) -> tuple[float, float] | None:
    m = re.search(r"Fall(?:ing)?\s*\([A-Z]+\)\s*\[([\d.]+)\s*to\s*([\d.]+)\]", description)
    return (float(m.group(1)), float(m.group(2))) if m else None


def clips(data: Path = DATA) -> list[Clip]:
    out: list[Clip] = []
    g = data / "falls" / "gmdcsa24"
    with (g / "sources.csv").open() as f:
        for row in csv.DictReader(f):
            fall = _interval(row["description"]) if row["label"] == "fall" else None
            actor = "gmdcsa24/actor" + row["subject"]
            note = row["description"].split("|")[0].strip()
            out.append(Clip(g / row["clip"], row["label"], actor, fall, note))
    a = data / "falls" / "assist-iot"
    with (a / "sources.csv").open() as f:
        for row in csv.DictReader(f):
            out.append(Clip(a / row["clip"], row["label"], "assist-iot/lab", None, row["activity"]))
    q = data / "quiet"
    with (q / "sources.csv").open() as f:
        for row in csv.DictReader(f):
            scene = row["scene"].split(",")[0].split("(")[0].strip()
            out.append(Clip(q / row["clip"], "quiet", "quiet/" + scene, None, row["clip"]))
    return out


@dataclass
class Seen:
    """What the person and pose stages found in one clip, at every sampled frame."""

    times: np.ndarray  # [F] seconds
    frame_of: np.ndarray  # [M] index into times
    boxes: np.ndarray  # [M, 5] x1 y1 x2 y2 score, frame pixels
    keypoints: np.ndarray  # [M, 17, 3] x y score, frame pixels
    duration_s: float
    frame_hw: tuple[int, int]

    def frames(self):
        for i, t in enumerate(self.times):
            sel = self.frame_of == i
            yield float(t), self.boxes[sel], self.keypoints[sel]


@functools.cache
def pose_key() -> str:
    """The MoveNet file the recordings are made with (its sha256), part of every cache key: a
    recording made with another pose model (scripts/pose_model/) is never read back for this
    one."""
    return "|pose " + hashlib.sha256(POSE_FILE.read_bytes()).hexdigest()


def _key(path: Path) -> str:
    st = path.stat()
    raw = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{SPACING_S}|{DETECT_SCORE}"
    raw += f"|{CACHE_VERSION}{pose_key()}"
    return hashlib.sha1(raw.encode()).hexdigest()[:16]


def extract(clip: Clip, detector: PersonDetector, pose: PoseEstimator) -> Seen:
    """Detector and pose on every sampled frame of `clip`, cached under CACHE."""
    CACHE.mkdir(parents=True, exist_ok=True)
    cached = CACHE / f"{clip.path.stem}-{_key(clip.path)}.npz"
    if cached.is_file():
        z = np.load(cached)
        return Seen(z["times"], z["frame_of"], z["boxes"], z["keypoints"],
                    float(z["duration_s"]), (int(z["hw"][0]), int(z["hw"][1])))  # fmt: skip
    frames = TimedFrames(clip.path)
    times, frame_of, boxes, kps = [], [], [], []
    next_t, hw = 0.0, (0, 0)
    for t, frame in frames:
        hw = frame.shape[:2]
        if t + 1e-6 < next_t:
            continue
        next_t += SPACING_S
        b = detector.detect(frame)
        times.append(t)
        if len(b):
            frame_of.extend([len(times) - 1] * len(b))
            boxes.append(b)
            kps.append(pose.estimate(frame, b))
    seen = Seen(
        np.asarray(times, np.float32),
        np.asarray(frame_of, np.int32),
        np.concatenate(boxes) if boxes else np.zeros((0, 5), np.float32),
        np.concatenate(kps) if kps else np.zeros((0, 17, 3), np.float32),
        frames.duration_s,
        (int(hw[0]), int(hw[1])),
    )
    np.savez(cached, times=seen.times, frame_of=seen.frame_of, boxes=seen.boxes,
             keypoints=seen.keypoints, duration_s=seen.duration_s, hw=np.asarray(hw))  # fmt: skip
    return seen


@dataclass
class Looks:
    """What the turned second looks (runtime.lying, window `LOOK_S`) found in one clip, by
    (sample index, track id); a look that found nobody is absent."""

    found: dict[tuple[int, int], Found]
    looks: int
    calls: int


def track_steps(seen: Seen, looks: Looks | None = None):
    """The clip's person tracks, sample by sample, as the fall stage builds them: (t, tracks,
    ids seen now). With `looks`, the second looks' finds replayed (runtime.lying.advance)."""
    tracks = PoseTracks()
    found = looks.found if looks is not None else {}
    look_s = LOOK_S if looks is not None else 0.0
    for i, (t, boxes, kps) in enumerate(seen.frames()):
        now = advance(tracks, t, boxes, kps, seen.frame_hw, look_s,
                      lambda tid, _box, i=i: found.get((i, tid)))  # fmt: skip
        yield t, tracks.tracks, {tr.id for tr in now}


def extract_looks(clip: Clip, seen: Seen, look: RotatedLook) -> Looks:
    """The second looks the fall stage would make in `clip` (the frames decoded again, the
    first looks taken from `seen`), cached under CACHE beside `extract`'s."""
    key = _key(clip.path) + f"|{LOOK_S}|{look.mode}|{DOWN_SPEED}|{POOR_COVERAGE}|{LOOK_COVERAGE}"
    key += f"|{DOWN_DROP}|{LOOK_MIN_PX}|{LOOK_SCALE}|{LOOK_VERSION}"
    key = hashlib.sha1(key.encode()).hexdigest()[:16]
    cached = CACHE / f"{clip.path.stem}-look-{key}.npz"
    if cached.is_file():
        z = np.load(cached)
        found = {
            (int(i), int(tid)): (b, k)
            for i, tid, b, k in zip(z["idx"], z["tid"], z["boxes"], z["kps"], strict=True)
        }
        return Looks(found, int(z["looks"]), int(z["calls"]))  # fmt: skip
    before = (look.stats.looks, look.stats.calls)
    samples = list(seen.frames())
    tracks, found, i, next_t = PoseTracks(), {}, 0, 0.0
    for t, frame in TimedFrames(clip.path):
        if t + 1e-6 < next_t or i >= len(samples):
            continue
        next_t += SPACING_S
        ts, boxes, kps = samples[i]

        def looker(tid: int, box, i: int = i, frame: np.ndarray = frame) -> Found | None:
            got = look.look(frame, box)
            if got is not None:
                found[(i, tid)] = got
            return got

        advance(tracks, ts, boxes, kps, seen.frame_hw, LOOK_S, looker)
        i += 1
    looks = Looks(found, look.stats.looks - before[0], look.stats.calls - before[1])
    keys = sorted(found)
    np.savez(cached, idx=np.asarray([k[0] for k in keys], np.int32),
             tid=np.asarray([k[1] for k in keys], np.int32),
             boxes=np.asarray([found[k][0] for k in keys], np.float32).reshape(-1, 5),
             kps=np.asarray([found[k][1] for k in keys], np.float32).reshape(-1, 17, 3),
             looks=looks.looks, calls=looks.calls)  # fmt: skip
    return looks


def extract_all(items: list[Clip], threads: int = 2, progress=print) -> dict[Path, Seen]:
    detector = PersonDetector(threads=threads, score_threshold=DETECT_SCORE)
    pose = PoseEstimator(threads=threads)
    out = {}
    for i, clip in enumerate(items):
        out[clip.path] = extract(clip, detector, pose)
        seen = out[clip.path]
        progress(
            f"[{i + 1}/{len(items)}] {clip.group} {clip.path.name}: "
            f"{len(seen.boxes)} people in {len(seen.times)} samples"
        )
    return out


def extract_all_looks(
    items: list[Clip], seen: dict[Path, Seen], mode: LookMode = LOOK_MODE, threads: int = 2,
    progress=print,
) -> dict[Path, Looks]:  # fmt: skip
    """Every clip's second looks (`extract_looks`) in runtime.lying's `mode`."""
    again = RotatedLook(
        PersonDetector(threads=threads, score_threshold=DETECT_SCORE),
        PoseEstimator(threads=threads),
        mode,
    )
    out = {}
    for i, clip in enumerate(items):
        out[clip.path] = got = extract_looks(clip, seen[clip.path], again)
        progress(
            f"[{i + 1}/{len(items)}] {clip.group} {clip.path.name}: {got.looks} second looks, "
            f"{got.calls} extra calls, {len(got.found)} found"
        )
    return out


if __name__ == "__main__":
    items = clips()
    print(len(items), "clips;", sum(c.kind == "fall" for c in items), "falls")
    for c in items:
        if c.kind == "fall":
            print(c.group, c.path.name, c.fall)
    extract_all(items)
