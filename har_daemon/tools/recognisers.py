"""`bench`'s figure for several recognisers on one camera: fight + fall against fight alone.

Both recognisers run on the inference thread, so their cost is that thread's work per second of
video. A real clip with a person in every frame (the person stage's bench clip, looped) is
sampled at the fight model's spacing, pushed frame by frame into a camera's ring as capture
would, and after each push the camera's inference step runs (`InferenceScheduler.run_once`:
person stage, windows, fight model, and with the fall recogniser its looks). The figure is CPU
time (this process, all threads: the model runtimes have their own) spent in those steps per
second of video, fight alone, fight + fall (its own 0.2 s looks), fight + fall with
`looks = "shared"` (only at the person stage's looks), with `looks = "tracked"` (0.2 s looks,
the detector only at the person stage's) and with `looks = "adaptive"` (the person stage's
looks, tracked ones between only while someone may be going down), and the fight recogniser
with the pretrained appearance fusion on (`[inference] pretrained_fusion`: a MobileNetV2
embedding per region per new frame), alternated over several rounds (median), and the ratios
to fight alone; for shared looks also the pose calls made and the boxes too small to pose
(`model.pose.posable`). The camera, detector, pose model and
scheduler are the daemon's own (`runtime.cameras.build_cameras`), built from a config with
`recognisers`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np

from har_daemon.config import DaemonConfig
from har_daemon.config.recognisers import FallLooks
from har_daemon.core.paths import FIGHT_MODEL_DIR
from har_daemon.model.meta import ModelMeta, read_meta
from har_daemon.model.regions import ring_frame
from har_daemon.model.registry import create_backend
from har_daemon.runtime.cameras import build_cameras
from har_daemon.runtime.inference import CameraPipeline, InferenceScheduler
from har_daemon.tools.people import PEOPLE_CLIP
from har_daemon.tools.streams import progress
from har_daemon.video.frames import TimedFrames

ROUNDS = 3
WARMUP_FRAMES = 30
"""Steps not counted: a new interpreter's first calls are slow (the fall adds one more)."""


class LookCounts(NamedTuple):
    """What one run's fall recogniser did: its looks, and the boxes of those looks."""

    looks: int
    shared: int
    """Looks that took the person stage's boxes instead of calling the detector."""
    tracked: int
    """Looks that followed people from their keypoints (tracked and adaptive modes)."""
    posed: int
    """Pose calls on the looks' boxes."""
    unposed: int
    """Boxes too small to pose (`model.pose.posable`)."""


def _look_counts(pipeline: CameraPipeline) -> LookCounts:
    assert pipeline.falls is not None
    st, stage = pipeline.falls.stats, pipeline.falls.stage
    return LookCounts(st.looks, st.shared_looks, st.tracked_looks, stage.posed, stage.unposed)


def _frames(meta: ModelMeta, seconds: float) -> list[tuple[np.ndarray, float]]:
    """`seconds` of the looped clip at the model's spacing, as a camera's ring keeps them."""
    clip = TimedFrames(PEOPLE_CLIP)
    frames = [cv2.resize(frame, (640, 480)) for _t, frame in clip]
    spacing = meta.frame_spacing_s
    out = []
    for i in range(int(seconds / spacing)):
        t = i * spacing
        out.append((ring_frame(frames[int(t * clip.fps) % len(frames)], meta), t))
    return out


def _pipeline(
    model_dir: Path, meta: ModelMeta, fall: FallLooks | None, pretrained: bool
) -> CameraPipeline:
    recognisers = [{"kind": "classifier"}, *([{"kind": "fall", "looks": fall}] if fall else [])]
    config = DaemonConfig(
        model={"path": model_dir, "backend": "litert"},
        inference={"pretrained_fusion": pretrained},
        mqtt={"enabled": False},
        cameras=[{"name": "bench", "source": str(PEOPLE_CLIP), "recognisers": recognisers}],
    )
    cams = build_cameras(
        config, meta, config.cameras, on_sampled=lambda _c: None, on_status=lambda _c, _o: None,
        keep_frames=False,
    )  # fmt: skip
    return cams["bench"].pipeline


def _cpu_ms_per_s(
    model_dir: Path,
    meta: ModelMeta,
    frames: list[tuple[np.ndarray, float]],
    fall: FallLooks | None,
    pretrained: bool = False,
) -> tuple[float, CameraPipeline]:
    pipeline = _pipeline(model_dir, meta, fall, pretrained)
    scheduler = InferenceScheduler(
        create_backend("litert", model_dir), meta, [pipeline], lambda _r: None,
        gap_sink=lambda _r: None, activity_sink=lambda _r: None,
    )  # fmt: skip
    spent = 0.0
    for i, (frame, t) in enumerate(frames):
        pipeline.ring.push(frame, t)
        started = time.process_time()
        scheduler.run_once()
        if i >= WARMUP_FRAMES:
            spent += time.process_time() - started
    video_s = (len(frames) - WARMUP_FRAMES) * meta.frame_spacing_s
    return spent * 1000.0 / video_s, pipeline


def measure_recognisers(args: argparse.Namespace) -> dict[str, Any]:
    """Fight alone and fight + fall on one camera; {} with a note when it cannot run here."""
    seconds = float(getattr(args, "recognisers_seconds", 0.0))
    if seconds <= 0:
        return {}
    if not PEOPLE_CLIP.is_file():
        note = f"{PEOPLE_CLIP} not found: fight + fall cost not measured"
        progress(note)
        return {"recognisers_note": note}
    model_dir = Path(args.model)
    meta = read_meta(model_dir)
    if meta.person_region is None:  # the fall recogniser shares a person-centric model's stage
        model_dir = FIGHT_MODEL_DIR
        meta = read_meta(model_dir)
    frames = _frames(meta, seconds + WARMUP_FRAMES * meta.frame_spacing_s)
    progress(f"recognisers: {meta.name} alone and with the fall recogniser, {seconds:.0f} s x "
             f"{ROUNDS} rounds of a looped real clip")  # fmt: skip
    modes: tuple[FallLooks, ...] = ("own", "shared", "tracked", "adaptive")
    ms: dict[str, list[float]] = {"alone": [], "pretrained": [], **{m: [] for m in modes}}
    embedded = 0
    looks: dict[str, LookCounts] = {}
    for _ in range(ROUNDS):  # alternated: a load that changes meanwhile hits them all
        ms["alone"].append(_cpu_ms_per_s(model_dir, meta, frames, None)[0])
        for mode in modes:
            spent, pipeline = _cpu_ms_per_s(model_dir, meta, frames, mode)
            ms[mode].append(spent)
            looks[mode] = _look_counts(pipeline)
        spent, pipeline = _cpu_ms_per_s(model_dir, meta, frames, None, pretrained=True)
        ms["pretrained"].append(spent)
        assert pipeline.pretrained is not None
        embedded = pipeline.pretrained.embedded
    fight_ms, own_ms, shared_ms, tracked_ms, adaptive_ms, pretrained_ms = (
        statistics.median(ms[k]) for k in ("alone", *modes, "pretrained")
    )
    return {
        "recognisers_model": meta.name,
        "recognisers_video_s": round((len(frames) - WARMUP_FRAMES) * meta.frame_spacing_s, 1),
        "fight_cpu_ms_per_s": round(fight_ms, 1),
        "fight_fall_cpu_ms_per_s": round(own_ms, 1),
        "fight_fall_ratio": round(own_ms / fight_ms, 2),
        "fall_looks": looks["own"].looks,
        "fall_looks_sharing_detection": looks["own"].shared,
        "fight_fall_shared_cpu_ms_per_s": round(shared_ms, 1),
        "fight_fall_shared_ratio": round(shared_ms / fight_ms, 2),
        "fall_looks_shared_mode": looks["shared"].looks,
        "fall_pose_calls_shared_mode": looks["shared"].posed,
        "fall_boxes_unposed_shared_mode": looks["shared"].unposed,
        "fight_fall_tracked_cpu_ms_per_s": round(tracked_ms, 1),
        "fight_fall_tracked_ratio": round(tracked_ms / fight_ms, 2),
        "fall_looks_tracked_mode": looks["tracked"].looks,
        "fall_looks_tracked_sharing_detection": looks["tracked"].shared,
        "fall_looks_tracked_following": looks["tracked"].tracked,
        "fight_fall_adaptive_cpu_ms_per_s": round(adaptive_ms, 1),
        "fight_fall_adaptive_ratio": round(adaptive_ms / fight_ms, 2),
        "fall_looks_adaptive_mode": looks["adaptive"].looks,
        "fall_looks_adaptive_following": looks["adaptive"].tracked,
        "fight_pretrained_cpu_ms_per_s": round(pretrained_ms, 1),
        "fight_pretrained_ratio": round(pretrained_ms / fight_ms, 2),
        "pretrained_embedded": embedded,
    }
