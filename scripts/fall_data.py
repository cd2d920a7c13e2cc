"""The fall evaluation's data: clips, their labels and groups, and their cached pose tracks.

Reads ../shared/data/falls (GMDCSA24, ASSIST-IoT) and ../shared/data/quiet; runs the person
detector and the pose model on every sampled frame and caches what they found per clip under
/tmp (never in the repository): `Clip` knows what a clip is, `extract` what was seen in it.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import PoseEstimator
from har_daemon.runtime.falls import DETECT_SCORE, SPACING_S
from har_daemon.video.frames import TimedFrames

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CACHE = Path("/tmp/har-fall-cache")
CACHE_VERSION = 1


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


def _key(path: Path) -> str:
    st = path.stat()
    raw = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{SPACING_S}|{DETECT_SCORE}"
    raw += f"|{CACHE_VERSION}"
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


if __name__ == "__main__":
    items = clips()
    print(len(items), "clips;", sum(c.kind == "fall" for c in items), "falls")
    for c in items:
        if c.kind == "fall":
            print(c.group, c.path.name, c.fall)
    extract_all(items)
