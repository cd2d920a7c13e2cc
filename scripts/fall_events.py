"""Play a video file through the fall stage (what a camera would run) and print its events.

    PYTHONPATH=$PWD .venv/bin/python scripts/fall_events.py VIDEO [--rule models/fall]

One JSON line per fall change: start (the person is down after a fast way down), update
("down for N s"), end (up again, or gone). Frames are taken at the stage's 0.2 s spacing of the
file's own clock, so a file plays as a camera would see it, only faster.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import cv2

from har_daemon.core.errors import ModelError
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import PoseEstimator
from har_daemon.runtime.falls import DETECT_SCORE, FALL_MODEL_DIR, FallStage, load_rule


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--rule", type=Path, default=FALL_MODEL_DIR, help="directory of rule.json")
    args = ap.parse_args(argv)
    cap = cv2.VideoCapture(str(args.video))
    if not args.video.is_file() or not cap.isOpened():
        print(f"fall_events: cannot open video {args.video}", file=sys.stderr)
        return 2
    try:
        stage = FallStage(PersonDetector(score_threshold=DETECT_SCORE), PoseEstimator(),
                          load_rule(args.rule))  # fmt: skip
    except ModelError as exc:
        print(f"fall_events: {exc}", file=sys.stderr)
        return 2
    fps = cap.get(cv2.CAP_PROP_FPS)
    fps = fps if 1.0 <= fps <= 120.0 else 25.0
    n, t = 0, 0.0
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            t = n / fps
            n += 1
            if stage.due(t):
                for change in stage.look(frame, t):
                    print(json.dumps({**asdict(change), "t": round(change.t, 2)}))
    finally:
        cap.release()
    for change in stage.reset(t):  # the end of the file ends what is open
        print(json.dumps({**asdict(change), "t": round(change.t, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
