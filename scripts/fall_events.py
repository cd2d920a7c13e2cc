"""Play video files through the fall stage (what a camera would run) and print its events.

    PYTHONPATH=$PWD .venv/bin/python scripts/fall_events.py VIDEO... [--rule models/fall]
        [--spacing 0.2] [--summary] [--look-mode pose|detect] [--looks own|shared|tracked|adaptive]
        [--detect-every S]

One JSON line per fall change: start (the person is down after a fast way down), update
("down for N s"), end (up again, or gone). Frames are taken at the stage's 0.2 s spacing of the
file's own clock (`--spacing`: another, e.g. 0.5175 for a fall recogniser with
`looks = "shared"` on models/fight, whose person stage looks every 5 frames of 0.1035 s), so a
file plays as a camera would see it, only faster. `--summary`: one line per file instead
(`file starts first_start_t`), and the totals of files with a start and of the turned
second looks (runtime.lying; only with a rule whose `look_s` is over 0). `--looks tracked`:
the fall recogniser's `looks = "tracked"`: the detector runs every `--detect-every` seconds
(default: models/fight's person stage, `detect_every` frames of its spacing, 0.5175 s) and the
looks in between follow each person from their last keypoints (runtime.falls). `--looks
shared`: `--spacing` defaults to the person stage's and boxes too small to pose get no pose call,
as a camera with `looks = "shared"` does. `--looks
adaptive`: the detector's looks as with tracked, the 0.2 s looks between only while a watch is
open (model.fall_watch: someone may be going down).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from har_daemon.core.errors import ModelError, VideoError
from har_daemon.core.paths import FIGHT_MODEL_DIR
from har_daemon.model.meta import read_meta
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import PoseEstimator
from har_daemon.runtime.falls import (
    DETECT_SCORE,
    FALL_MODEL_DIR,
    SPACING_S,
    FallStage,
    load_rule,
    play_file,
    pose_min_side,
)
from har_daemon.runtime.lying import LOOK_MODE, RotatedLook


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", type=Path, nargs="+")
    ap.add_argument("--rule", type=Path, default=FALL_MODEL_DIR, help="directory of rule.json")
    ap.add_argument("--spacing", type=float, default=None,
                    help=f"seconds between looks (default {SPACING_S}; shared: the person "
                    "stage's)")  # fmt: skip
    ap.add_argument("--summary", action="store_true", help="one line per file, then totals")
    ap.add_argument("--look-mode", choices=("pose", "detect"), default=LOOK_MODE,
                    help="turned second look: MoveNet alone, or detector then MoveNet")  # fmt: skip
    ap.add_argument(
        "--looks",
        choices=("own", "shared", "tracked", "adaptive"),
        default="own",
        help="own: the detector at every look; shared: the person stage's looks only (default "
        "spacing: its, 0.5175 s), no pose on boxes under model.pose.MIN_SIDE_PX; tracked: "
        "follow from keypoints; adaptive: follow only while someone may be going down",
    )
    ap.add_argument("--detect-every", type=float, default=None,
                    help="seconds between detector looks, tracked or adaptive")  # fmt: skip
    args = ap.parse_args(argv)
    try:
        detector, pose = PersonDetector(score_threshold=DETECT_SCORE), PoseEstimator()
        rule = load_rule(args.rule, args.looks)
        detect_every = args.detect_every or person_stage_spacing()
        spacing = args.spacing or (detect_every if args.looks == "shared" else SPACING_S)
    except ModelError as exc:
        print(f"fall_events: {exc}", file=sys.stderr)
        return 2
    alerted = looks = calls = followed = stage_looks = own_looks = posed = unposed = 0
    for video in args.videos:
        again = RotatedLook(detector, pose, args.look_mode)
        stage = FallStage(
            detector, pose, rule, spacing_s=spacing, again=again,
            tracked=args.looks == "tracked", adaptive=args.looks == "adaptive",
            min_side_px=pose_min_side(args.looks),
        )  # fmt: skip
        try:
            changes = play_file(video, stage, detect_every)
        except VideoError as exc:
            print(f"fall_events: {exc}", file=sys.stderr)
            return 2
        starts = [c.t for c in changes if c.change == "start"]
        alerted += bool(starts)
        looks, calls = looks + stage.look_stats.looks, calls + stage.look_stats.calls
        followed += stage.followed
        stage_looks += stage.looks_made
        own_looks += stage.own_looks
        posed, unposed = posed + stage.posed, unposed + stage.unposed
        if args.summary:
            first = round(starts[0], 2) if starts else None
            print(f"{video.name} {len(starts)} {first}")
            continue
        for change in changes:
            print(json.dumps({**asdict(change), "t": round(change.t, 2)}))
    if args.summary:
        print(f"files with a fall start: {alerted} of {len(args.videos)}")
        print(f"turned second looks: {looks}, their extra model calls: {calls}")
        print(f"looks: {stage_looks}, of them without the detector's boxes: {own_looks}")
        print(f"pose calls on the detector's boxes: {posed}, boxes too small to pose: {unposed}")
        if args.looks != "own":
            print(f"people followed from keypoints (pose calls, no detector): {followed}")
    return 0


def person_stage_spacing() -> float:
    """Seconds between models/fight's person-stage looks (what a tracked look's detector
    follows in the daemon)."""
    meta = read_meta(FIGHT_MODEL_DIR)
    if meta.person_region is None:
        raise ModelError(f"{FIGHT_MODEL_DIR} has no person stage")
    return meta.frame_spacing_s * meta.person_region.detect_every


if __name__ == "__main__":
    sys.exit(main())
