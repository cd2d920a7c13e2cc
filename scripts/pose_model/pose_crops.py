"""Real 192x192 person crops, cut the way the daemon cuts them, for the pose model's
calibration (full-integer conversion) and for comparing pose models on held-out crops.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python scripts/pose_model/pose_crops.py OUT_DIR

Runs in the project's venv (the bundled person detector and `har_daemon.model.pose`'s own
`crop_square` / `crop_input`), on the fall evaluation's clips (../shared/data/falls and
../shared/data/quiet, scripts/fall_data.clips): one frame a second, the detector's boxes at the
fall stage's score threshold, at most `PER_CLIP` crops a clip spread over it. The clips in
sorted order alternate: even ones give OUT_DIR/calibration.npz (at most `CALIBRATION` crops),
odd ones OUT_DIR/heldout.npz, so no clip feeds both. Deterministic: the same data and models
give the same files. Never commit them (they are frames of the data sets).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fall_data import DATA, clips

from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import crop_input, crop_square
from har_daemon.runtime.falls import DETECT_SCORE
from har_daemon.video.frames import TimedFrames

EVERY_S = 1.0
PER_CLIP = 8
CALIBRATION = 200


def clip_crops(path: Path, detector: PersonDetector) -> list[np.ndarray]:
    """[192, 192, 3] uint8 RGB crops of the people in `path`, one frame every EVERY_S."""
    found: list[np.ndarray] = []
    next_t = EVERY_S / 2.0
    for t, frame in TimedFrames(path):
        if t + 1e-6 < next_t:
            continue
        next_t += EVERY_S
        for box in detector.detect(frame):
            found.append(crop_input(frame, crop_square(box))[0].astype(np.uint8))
    return spread(found, PER_CLIP)


def spread(items: list, n: int) -> list:
    """At most `n` of `items`, evenly spaced over them (deterministic)."""
    if len(items) <= n:
        return list(items)
    idx = np.linspace(0, len(items) - 1, n).round().astype(int)
    return [items[i] for i in idx]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    detector = PersonDetector(threads=1, score_threshold=DETECT_SCORE)
    parts: dict[str, list[np.ndarray]] = {"calibration": [], "heldout": []}
    names: dict[str, list[str]] = {"calibration": [], "heldout": []}
    for i, clip in enumerate(sorted(clips(args.data), key=lambda c: str(c.path))):
        part = "calibration" if i % 2 == 0 else "heldout"
        got = clip_crops(clip.path, detector)
        parts[part] += got
        names[part] += [clip.path.name] * len(got)
        print(f"[crops] {part:11s} {clip.path.name}: {len(got)}", file=sys.stderr)
    keep = spread(list(range(len(parts["calibration"]))), CALIBRATION)
    parts["calibration"] = [parts["calibration"][i] for i in keep]
    names["calibration"] = [names["calibration"][i] for i in keep]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for part, crops in parts.items():
        out = args.out_dir / f"{part}.npz"
        np.savez_compressed(out, crops=np.stack(crops), clips=np.asarray(names[part]))
        n_clips = len(set(names[part]))
        print(f"[crops] {out}: {len(crops)} crops from {n_clips} clips", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
