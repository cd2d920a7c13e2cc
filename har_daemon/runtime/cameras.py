"""Building a daemon's cameras from the configuration: the one place that sizes their parts.

The daemon and the offline replay build cameras here, so a file replayed offline is read and
cropped by exactly the parts a live camera has. A person-centric model's cameras share one
person detector (its caller, the inference thread, is single).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from har_daemon.config import CameraConfig, DaemonConfig
from har_daemon.core.errors import ConfigError
from har_daemon.model.appearance import load_encoder
from har_daemon.model.backends import default_threads
from har_daemon.model.fight_pose import FIGHT_POSE_DIR
from har_daemon.model.fight_pose import load as load_fight_pose
from har_daemon.model.meta import ModelMeta
from har_daemon.model.person import PersonDetector
from har_daemon.model.pose import PoseEstimator
from har_daemon.model.pretrained_head import PRETRAINED_DIR
from har_daemon.model.pretrained_head import load as load_pretrained
from har_daemon.runtime.camera import Camera, FrameListener, StatusListener
from har_daemon.runtime.falls import (
    DETECT_SCORE,
    FALL_MODEL_DIR,
    FallStage,
    load_rule,
    pose_min_side,
)
from har_daemon.runtime.fight_pose import FIGHT_ACTIVITY, FightPoseStage
from har_daemon.runtime.history import FrameHistory
from har_daemon.runtime.people import PeopleStage
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.runtime.pretrained import PretrainedStage
from har_daemon.runtime.recognisers import FallRecogniser, fall_problem
from har_daemon.runtime.zones import CameraZones

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
    thresholds: Mapping[str, float] | None = None,
) -> dict[str, Camera]:
    """One `Camera` per entry; `keep_frames` False: no full-frame history (a replay);
    `frame_clock` stamps their frames (`CameraCapture`); `thresholds`: cameras' own enter
    thresholds (`runtime.calibration.camera_thresholds`), else [inference]'s."""
    policy = DecisionPolicy.for_model(config.inference, meta)
    spacing = config.model.frame_spacing_s or meta.frame_spacing_s
    window_s = window_seconds(config, meta)
    snapshots, clips = config.snapshots, config.clips
    rules = meta.person_region
    falls = [cam.name for cam in cameras if cam.fall is not None]
    for cam in cameras:
        problem = fall_problem(cam, meta)
        if problem is not None:
            raise ConfigError(f"cameras: {problem}")
    score = rules.min_score if rules is not None else DETECT_SCORE
    detector = (
        PersonDetector(
            threads=default_threads(), score_threshold=min(score, DETECT_SCORE) if falls else score
        )
        if rules is not None
        else None
    )
    inf = config.inference
    fuse = inf.pose_fusion and rules is not None and FIGHT_ACTIVITY in meta.classes
    pose_model = load_fight_pose(inf.pose_model or FIGHT_POSE_DIR) if fuse else None
    pose = PoseEstimator(threads=default_threads()) if falls or fuse else None
    fuse_pretrained = inf.pretrained_fusion and rules is not None and FIGHT_ACTIVITY in meta.classes
    head = load_pretrained(inf.pretrained_model or PRETRAINED_DIR) if fuse_pretrained else None
    encoder = (
        load_encoder(threads=default_threads(), side=head.input_side) if head is not None else None
    )
    built: dict[str, Camera] = {}
    for cam in cameras:
        people = None
        zones = CameraZones.from_config(cam, meta.classes)
        if detector is not None and rules is not None and cam.classifies:
            gap = inf.interaction_distance if inf.interaction_gate else None
            people = PeopleStage(
                detector, rules, policy.smoother, window_s, zones=zones, interaction_gap=gap
            )
        # A camera recorded by copy (record_source) takes no clip from these frames.
        clip_frames = clips.enabled and cam.record_source is None
        clip_spacing = 1.0 / clips.fps if clip_frames else None
        history = None
        if keep_frames and (snapshots.enabled or clip_frames):
            history_age = window_s * 2 + (clips.pre_roll_s if clip_frames else 0)
            history_age += HISTORY_SLACK_S
            history_rate = 1.0 / min(spacing, clip_spacing or spacing)
            history = FrameHistory(
                history_age,
                max(snapshots.max_width, clips.max_width if clip_frames else 0),
                max_frames=int(history_age * history_rate) + 10,
            )
        threshold = (thresholds or {}).get(cam.name)
        built[cam.name] = Camera(
            cam,
            meta,
            policy if threshold is None else policy.with_enter_threshold(threshold),
            spacing_s=spacing,
            stride=config.model.stride,
            on_sampled=on_sampled,
            on_status=on_status,
            history=history,
            history_spacing_s=clip_spacing,
            on_history_frame=on_history_frame if clip_frames else None,
            people=people,
            frame_clock=frame_clock,
            zones=zones,
        )
        pipeline = built[cam.name].pipeline
        pipeline.classify = cam.classifies
        if cam.fall is not None and detector is not None and pose is not None:
            tracked = cam.fall.looks == "tracked" and people is not None
            adaptive = cam.fall.looks == "adaptive" and people is not None
            rule = load_rule(cam.fall.model or FALL_MODEL_DIR, cam.fall.looks)
            stage = FallStage(
                detector, pose, rule, tracked=tracked, adaptive=adaptive,
                min_side_px=pose_min_side(cam.fall.looks),
            )  # fmt: skip
            shared = cam.fall.looks == "shared" and people is not None
            pipeline.falls = FallRecogniser(
                cam.name, stage, cam.fall.update_interval_s, shared, zones
            )
        if pose_model is not None and people is not None and rules is not None:
            fight_pose = FightPoseStage(
                pose_model,
                meta.classes.index(FIGHT_ACTIVITY),
                inf.pose_min_people,
                inf.pose_min_height_px,
                inf.pose_min_coverage,
                rules.min_score,
                inf.pose_rule,
            )
            if pipeline.falls is not None:  # one pose call per person serves both
                fight_pose.tracks = pipeline.falls.stage.tracks
            else:
                fight_pose.detector, fight_pose.pose = detector, pose
            pipeline.fight_pose = fight_pose
        if head is not None and encoder is not None and people is not None and rules is not None:
            pipeline.pretrained = PretrainedStage(
                head, encoder, rules, meta.classes.index(FIGHT_ACTIVITY), inf.pretrained_rule
            )
    return built
