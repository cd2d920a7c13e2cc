"""What the person detector finds on a model's held-out clips, at their size and shrunk.

    .venv/bin/python scripts/detector_reach.py --data DATA_DIR [--model models/fight]
        [--score 0.35] [--looks 8] [--fraction 3]

For each held-out clip of `model.json` (test and validation), `--looks` evenly spaced frames go
through the bundled detector at `--score`, once as they are and once shrunk to 1/`--fraction` of
a 640x480 grey frame (where the paste test puts a clip). Per label and size it prints the share
of looks with two people touching (the interaction gate's pair at 0 body heights), with people
but no such pair (and a lone box wider than 0.8 of its height: two people in one box), with
nobody, and the clips with a pair on at least one look. It asks whether a model misses distant
fights because the person stage does not find the people (docs/calibration.md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from har_daemon.model.person import PersonDetector
from har_daemon.model.regions import close_pair
from har_daemon.tools.media import read_video

CANVAS_HW = (480, 640)
GREY = 110
WIDE = 0.8  # a lone box this much wider than tall holds more than one person


def frames_of(path: Path, looks: int) -> list[np.ndarray]:
    frames = read_video(path)
    return frames[:: max(1, len(frames) // looks)][:looks]


def shrunk(frame: np.ndarray, fraction: int) -> np.ndarray:
    """`frame` at 1/`fraction` of the canvas width, aspect kept, on a grey canvas."""
    h, w = frame.shape[:2]
    nw = CANVAS_HW[1] // fraction
    nh = min(CANVAS_HW[0], round(h * nw / w))
    canvas = np.full((*CANVAS_HW, 3), GREY, np.uint8)
    top, left = (CANVAS_HW[0] - nh) // 2, (CANVAS_HW[1] - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(frame, (nw, nh), cv2.INTER_AREA)
    return canvas


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the assembled fight folder")
    ap.add_argument("--model", type=Path, default=Path("models/fight"))
    ap.add_argument("--score", type=float, default=0.35, help="detector score threshold")
    ap.add_argument("--looks", type=int, default=8, help="frames per clip")
    ap.add_argument("--fraction", type=int, default=3, help="shrunk to 1/N of the width")
    args = ap.parse_args()
    training = json.loads((args.model / "model.json").read_text())["training"]
    clips = training["test_clips"] + training["validation_clips"]
    detector = PersonDetector(threads=1, score_threshold=args.score)
    sizes = ("native", f"1/{args.fraction}")
    counts: dict[tuple[str, str], list[int]] = {}
    for rel in clips:
        path = args.data / rel
        if not path.is_file():
            continue
        label = rel.split("/")[0]
        frames = frames_of(path, args.looks)
        for size in sizes:
            c = counts.setdefault((label, size), [0] * 6)  # clips, looks, pair, apart, wide, none
            c[0] += 1
            pairs = 0
            for frame in frames:
                boxes = detector.detect(frame if size == "native" else shrunk(frame, args.fraction))
                c[1] += 1
                if len(boxes) == 0:
                    c[5] += 1
                elif close_pair(boxes, 0.0):
                    c[2] += 1
                    pairs += 1
                else:
                    c[3] += 1
                    c[4] += any((b[2] - b[0]) > WIDE * (b[3] - b[1]) for b in boxes)
            c.append(int(pairs > 0))
    print(f"detector score >= {args.score}, {args.looks} looks per held-out clip of {args.model}")
    print("label    size    clips looks  pair  apart (lone wide)  nobody  clips with a pair")
    for (label, size), c in sorted(counts.items()):
        n = max(c[1], 1)
        print(
            f"{label:8s} {size:7s} {c[0]:5d} {c[1]:5d}  {c[2] / n:.2f}  {c[3] / n:.2f} "
            f"({c[4] / n:.2f})        {c[5] / n:.2f}  {sum(c[6:])}/{c[0]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
