"""The person stage's figures for `har-daemon bench`: one detection, one person's pose, and
real-time streams.

A person-centric model runs the person detector every `detect_every` sampled frames and
classifies a crop per group of people, so its cost depends on people being there. The stream
video is therefore a real recording with a person in every frame (the ASSIST-IoT walking clip
from ../shared/data, scaled to the stream size and looped); without that data the stage's
stream search is skipped and says so. The model is the configured person-centric one, or the
bench model's network relabelled person-centric (the detector and the crops cost the same
whatever the classifier learned).

The fight pose stage (`[inference] pose_fusion`: MoveNet on every person the stage finds, the
pose features and trees) and the pretrained appearance fusion (`pretrained_fusion`: a
MobileNetV2 embedding per region and new frame, the logistic head) are measured the same way
with the fight model (`*_pose` and `*_pretrained` keys): the bench model when it has a fight
class, else the bundled fight model; with `--model models/fight` the person-stage and these
figures differ by the second opinion alone.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon.core.paths import FIGHT_MODEL_DIR, PACKAGE_DIR
from har_daemon.model.meta import read_meta, write_meta
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import PoseEstimator
from har_daemon.runtime.fight_pose import FIGHT_ACTIVITY
from har_daemon.tools.inference import median_ms
from har_daemon.tools.streams import FUSION_SETTINGS, Fusion, measure_streams, progress
from har_daemon.video.ffmpeg import FFMPEG

PEOPLE_CLIP = (
    PACKAGE_DIR.parent / ".." / "shared" / "data" / "falls" / "assist-iot" / "adl"
    / "01_walking_slowly.mp4"
).resolve()  # fmt: skip


def person_model(model_dir: Path, workdir: Path) -> Path:
    """`model_dir` if it is person-centric, else a copy of it relabelled person-centric."""
    meta = read_meta(model_dir)
    if meta.input_region == "person":
        return model_dir
    copy = workdir / "person-model"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(model_dir, copy)
    write_meta(copy, meta.model_copy(update={"input_region": "person", "person_region": None}))
    return copy


def people_video(args: argparse.Namespace, workdir: Path) -> Path | None:
    """The looped real clip at the stream size, or None without the data."""
    if not PEOPLE_CLIP.is_file():
        return None
    out = workdir / "people.mp4"
    seconds = args.warmup + args.seconds + 30.0
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-stream_loop", "-1", "-i", str(PEOPLE_CLIP), "-t", f"{seconds:.0f}",
        "-vf", f"scale={args.width}:{args.height},fps={args.fps}", "-an",
        "-c:v", "libx264", "-preset", "veryfast", "-g", str(args.fps), str(out),
    ]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return out


def _bench_frame() -> np.ndarray:
    """A 640x480 frame with a person: the walking clip's first, else the demo picture."""
    frame = _first_frame() if PEOPLE_CLIP.is_file() else None
    if frame is None:
        frame = cv2.imread(str(PACKAGE_DIR / "bundled_models" / "demo" / "accuracy.png"))
    return cv2.resize(frame, (640, 480))


def detect_ms(runs: int, threads: int) -> float:
    """Median ms of one detection (pre- and post-processing included) on a 640x480 frame."""
    frame = _bench_frame()
    detector = PersonDetector(threads=threads)
    return median_ms(lambda: detector.detect(frame), runs)


def pose_ms_per_person(runs: int, threads: int) -> float:
    """Median ms of one person's pose (crop, MoveNet, decode) on the detector's best box, or on
    the whole frame when it finds nobody: the pose stage costs this per person and sample."""
    frame = _bench_frame()
    boxes = PersonDetector(threads=threads).detect(frame)
    box = boxes[:1] if len(boxes) else np.array([[0, 0, 640, 480, 1]], np.float32)
    pose = PoseEstimator(threads=threads)
    return median_ms(lambda: pose.estimate(frame, box), runs)


def stage_ms(runs: int, threads: int) -> dict[str, float]:
    """The person and pose stages' per-call figures."""
    return {
        "detect_ms": round(detect_ms(runs, threads), 2),
        "pose_ms_per_person": round(pose_ms_per_person(runs, threads), 2),
    }


def _first_frame() -> np.ndarray | None:
    cap = cv2.VideoCapture(str(PEOPLE_CLIP))
    try:
        ok, frame = cap.read()
    finally:
        cap.release()
    return frame if ok else None


def measure_people(args: argparse.Namespace, workdir: Path, threads: int) -> dict[str, Any]:
    """The stage's per-call figures, its real-time stream count, and its latency and memory at
    `--latency-streams` cameras (`*_people` keys: the same figures as the frame model's)."""
    out: dict[str, Any] = stage_ms(args.runs, threads)
    if args.streams_max <= 0 and args.latency_streams <= 0:
        return out
    video = people_video(args, workdir)
    if video is None:
        out["people_note"] = f"{PEOPLE_CLIP} not found: person-stage streams not measured"
        progress(out["people_note"])
        return out
    model = person_model(Path(args.model), workdir)
    progress(f"person stage: {model.name} on a looped real clip with a person in every frame")
    people_args = argparse.Namespace(**{**vars(args), "model": model})
    figures = measure_streams(people_args, read_meta(model), workdir / "people", video=video)
    out["streams_realtime_people"] = figures["streams_realtime"]
    for key in ("latency_p95_ms", "latency_p50_ms", "rss_mb"):
        if key in figures:
            out[f"{key}_people"] = figures[key]
    out["people_steps"] = figures["steps"]
    for fusion in FUSION_SETTINGS:
        out.update(_measure_fusion(args, workdir, video, model, fusion))
    return out


def fusion_model(model: Path) -> Path:
    """The classifier a fusion stage runs beside: `model` if it can alert on a fight, else the
    bundled fight model (pose and pretrained fusion only fuse with a fight class)."""
    return model if FIGHT_ACTIVITY in read_meta(model).classes else FIGHT_MODEL_DIR


def _measure_fusion(
    args: argparse.Namespace, workdir: Path, video: Path, people_model: Path, fusion: Fusion
) -> dict[str, Any]:
    """The stream figures with a second opinion on (`*_pose`, `*_pretrained` keys)."""
    model = fusion_model(people_model)
    meta = read_meta(model)
    progress(f"fight {fusion} stage: {meta.name} with {FUSION_SETTINGS[fusion]} on, same clip")
    fusion_args = argparse.Namespace(**{**vars(args), "model": model})
    figures = measure_streams(fusion_args, meta, workdir / fusion, video=video, fusion=fusion)
    out: dict[str, Any] = {
        f"{fusion}_model": meta.name,
        f"streams_realtime_{fusion}": figures["streams_realtime"],
        f"{fusion}_steps": figures["steps"],
    }
    for key in ("latency_p95_ms", "latency_p50_ms", "rss_mb"):
        if key in figures:
            out[f"{key}_{fusion}"] = figures[key]
    return out
