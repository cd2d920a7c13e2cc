"""Building a daemon's cameras from the configuration: the one place that sizes their parts.

The daemon and the offline replay build cameras here, so a file replayed offline is read and
cropped by exactly the parts a live camera has. A person-centric model's cameras share one
person detector (its caller, the inference thread, is single).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from har_daemon.config import CameraConfig, DaemonConfig
from har_daemon.model.backends import default_threads
from har_daemon.model.meta import ModelMeta
from har_daemon.model.person import PersonDetector
from har_daemon.runtime.camera import Camera, FrameListener, StatusListener
from har_daemon.runtime.history import FrameHistory
from har_daemon.runtime.people import PeopleStage
from har_daemon.runtime.policy import DecisionPolicy

HISTORY_SLACK_S = 5.0
"""Seconds of full frames kept beyond what snapshots and the clips' pre-roll need."""


def window_seconds(config: DaemonConfig, meta: ModelMeta) -> float:
    return meta.sequence_length * (config.model.frame_spacing_s or meta.frame_spacing_s)


def build_cameras(
    config: DaemonConfig,
    meta: ModelMeta,
    cameras: Sequence[CameraConfig],
    *,
    on_sampled: Callable[[str], None],
    on_status: StatusListener,
    on_history_frame: FrameListener | None = None,
    keep_frames: bool = True,
    frame_clock: Callable[[], float] | None = None,
) -> dict[str, Camera]:
    """One `Camera` per entry; `keep_frames` False: no full-frame history (a replay);
    `frame_clock` stamps their frames (`CameraCapture`)."""
    policy = DecisionPolicy.for_model(config.inference, meta)
    spacing = config.model.frame_spacing_s or meta.frame_spacing_s
    window_s = window_seconds(config, meta)
    snapshots, clips = config.snapshots, config.clips
    keep_frames = keep_frames and (snapshots.enabled or clips.enabled)
    clip_spacing = 1.0 / clips.fps if clips.enabled else None
    history_age = window_s * 2 + (clips.pre_roll_s if clips.enabled else 0) + HISTORY_SLACK_S
    history_rate = 1.0 / min(spacing, clip_spacing or spacing)
    rules = meta.person_region
    detector = (
        PersonDetector(threads=default_threads(), score_threshold=rules.min_score)
        if rules is not None
        else None
    )
    built: dict[str, Camera] = {}
    for cam in cameras:
        people = None
        if detector is not None and rules is not None:
            people = PeopleStage(detector, rules, policy.smoother, window_s)
        history = None
        if keep_frames:
            history = FrameHistory(
                history_age,
                max(snapshots.max_width, clips.max_width),
                max_frames=int(history_age * history_rate) + 10,
            )
        built[cam.name] = Camera(
            cam,
            meta,
            policy,
            spacing_s=spacing,
            stride=config.model.stride,
            on_sampled=on_sampled,
            on_status=on_status,
            history=history,
            history_spacing_s=clip_spacing,
            on_history_frame=on_history_frame if clips.enabled else None,
            people=people,
            frame_clock=frame_clock,
        )
    return built
