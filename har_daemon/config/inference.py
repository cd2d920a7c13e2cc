"""[model] and [inference]: which classifier runs, and how its scores become events.

These sections are the single source of the smoothing and event-tracker settings and their
defaults; the daemon builds its runtime `Smoother` and `TrackerConfig` from them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from har_daemon.config.paths import resolve_relative
from har_daemon.config.types import ExpandedPath, Seconds, Section
from har_daemon.core.paths import DEMO_MODEL_DIR

Backend = Literal["auto", "keras", "litert"]
SmoothingMethod = Literal["mean", "ema"]
PoseRule = Literal["replace", "mean", "min"]
PretrainedRule = Literal["mean", "min", "max"]


class ModelConfig(Section):
    """[model]: which classifier to run and how often."""

    path: ExpandedPath = Field(
        default_factory=lambda: DEMO_MODEL_DIR,
        title="Model directory",
        description="Directory holding model.json and the model file. Default: the bundled "
        "demo model (models/demo beside the package). A relative path is looked up beside the "
        "config file, then among the bundled models (so 'models/fight' works from any "
        "directory).",
    )
    backend: Backend = Field(
        "auto",
        title="Inference backend",
        description="'litert' (the directory's .tflite export, no TensorFlow), 'keras' (needs "
        "TensorFlow: the [train] extra) or 'auto': litert when the model has an export.",
    )
    frame_spacing_s: float | None = Field(
        None,
        gt=0,
        le=60,
        title="Frame spacing override",
        description="Seconds between sampled frames. Default (unset): the spacing recorded in "
        "model.json, which matches training.",
    )
    stride: int = Field(
        5,
        ge=1,
        le=1000,
        title="Window stride",
        description="Classify a camera's window every N newly sampled frames.",
    )
    batch_max: int = Field(
        8,
        ge=1,
        le=256,
        title="Largest batch",
        description="Most windows (across cameras) classified in one model call.",
    )

    @field_validator("path", mode="after")
    @classmethod
    def _resolve_relative(cls, v: Path) -> Path:
        return resolve_relative(v)


class InferenceConfig(Section):
    """[inference]: smoothing and the event state machine."""

    smoothing: SmoothingMethod = Field(
        "mean",
        title="Smoothing",
        description="'mean' of the last smoothing_window windows, or 'ema' (exponential).",
    )
    smoothing_window: int = Field(
        3, ge=1, le=100, title="Smoothing window", description="Windows averaged by 'mean'."
    )
    ema_alpha: float = Field(
        0.5,
        gt=0,
        le=1,
        title="EMA weight",
        description="Weight of the newest window in 'ema' (1 = no smoothing).",
    )
    enter_threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        title="Enter threshold",
        description="Smoothed score an activity must reach (as the top class) to start.",
    )
    exit_threshold: float = Field(
        0.4,
        ge=0,
        lt=1,
        title="Exit threshold",
        description="An active activity ends when its smoothed score falls below this "
        "(< enter_threshold).",
    )
    min_windows: int = Field(
        2,
        ge=1,
        le=100,
        title="Windows to start",
        description="Consecutive windows at or above enter_threshold before an activity starts.",
    )
    update_interval_s: Seconds = Field(
        10.0,
        ge=0,
        le=86400,
        title="Update interval",
        description="Least seconds between 'update' events while active (0: every window).",
    )
    alert_activities: list[str] = Field(
        default_factory=list,
        max_length=1000,
        title="Alerting activities",
        description="Classes that raise events; empty: all. Others only show in the state.",
    )
    ignore_activities: list[str] = Field(
        default_factory=list,
        max_length=1000,
        title="Ignored classes",
        description="Background classes (e.g. NonViolence) that never become an activity.",
    )
    motion_gating: bool = Field(
        False,
        title="Motion gating",
        description="Skip classifying windows without motion (saves compute on still scenes).",
    )
    motion_threshold: float = Field(
        0.02,
        ge=0,
        le=1,
        title="Motion threshold",
        description="Mean absolute change between sampled frames, as a fraction of full "
        "scale, below which a window counts as still.",
    )

    interaction_gate: bool = Field(
        True,
        title="Interaction gate",
        description="Person-centric models: an alerting class counts in a region's window only "
        "when two people in it come within interaction_distance of each other on one look (a "
        "fight takes two); other windows score 0 for it. Turn off for alerts one person can "
        "raise (a fall).",
    )
    interaction_distance: float = Field(
        0.0,
        ge=0,
        le=20,
        title="Interaction distance",
        description="Gap between two people's boxes, in body heights (the taller box's "
        "height), at or under which they count as interacting; 0 (default, chosen on quiet "
        "footage and held-out fight streams, docs/calibration.md): touching or overlapping.",
    )

    pose_fusion: bool = Field(
        False,
        title="Pose fusion",
        description="Person-centric models with a 'fight' class: a region's fight score comes "
        "from body pose (models/fight_pose: limb speed, pair distance and closing speed in body "
        "heights) where pose is reliable (pose_min_people people at least pose_min_height_px "
        "tall with pose_min_coverage of their keypoints seen), from the appearance model "
        "elsewhere; events say which (signal, pose_score, appearance_score). Costs a pose "
        "call per person every 0.2 s. Other models: ignored (docs/fight-pose.md).",
    )
    pose_rule: PoseRule = Field(
        "min",
        title="Pose fusion rule",
        description="Where pose is reliable, the region's fight score is 'replace': the pose "
        "model's; 'mean': the mean of pose and appearance; 'min': the lower of the two (pose "
        "can veto an appearance alert, not raise one of its own).",
    )
    pose_model: ExpandedPath | None = Field(
        None,
        title="Pose fight model",
        description="Directory of the pose fight model's model.json (default: the bundled "
        "models/fight_pose).",
    )
    pose_min_people: int = Field(
        2,
        ge=2,
        le=20,
        title="Pose: least people",
        description="Reliable people a region needs before its pose speaks (a fight takes two).",
    )
    pose_min_height_px: float = Field(
        50.0,
        ge=20,
        le=2000,
        title="Pose: least height",
        description="Standing height in pixels under which a person's keypoints are not "
        "trusted (below ~60 px MoveNet finds about a quarter of them). 50 and "
        "pose_min_coverage 0.4 vetoed one quiet-corpus false alert more than 80 and 0.6, at no "
        "cost on the fold streams (docs/fight-pose.md).",
    )
    pose_min_coverage: float = Field(
        0.4,
        ge=0,
        le=1,
        title="Pose: least keypoint coverage",
        description="Share of a person's 17 keypoints seen (mean over the window) under which "
        "their pose is not trusted (fighters occlude each other).",
    )

    pretrained_fusion: bool = Field(
        False,
        title="Pretrained appearance fusion",
        description="Person-centric models with a 'fight' class: each region window is also "
        "scored by the pretrained appearance head (models/fight_pretrained: frozen ImageNet "
        "MobileNetV2 embeddings of the region's 1.5x context square over the window's frames, a "
        "logistic regression), fused with the fight model's score by pretrained_rule before "
        "pose fusion; events carry pretrained_score. Costs one embedding (~2.5 ms) per region "
        "per new frame (docs/calibration.md section 8).",
    )
    pretrained_rule: PretrainedRule = Field(
        "mean",
        title="Pretrained fusion rule",
        description="The region's fight score: 'mean' of the fight model's and the pretrained "
        "head's; 'min': the lower (either can veto an alert); 'max': the higher (either can "
        "raise one).",
    )
    pretrained_model: ExpandedPath | None = Field(
        None,
        title="Pretrained appearance head",
        description="Directory of the pretrained head's model.json (default: the bundled "
        "models/fight_pretrained).",
    )

    @field_validator("pose_model", "pretrained_model", mode="after")
    @classmethod
    def _resolve_model_dirs(cls, v: Path | None) -> Path | None:
        return None if v is None else resolve_relative(v)

    @field_validator("exit_threshold")
    @classmethod
    def _exit_below_enter(cls, v: float, info: ValidationInfo) -> float:
        """Hysteresis needs a gap: an exit at or above the enter threshold would flap."""
        enter = info.data.get("enter_threshold")
        if enter is not None and v >= enter:
            raise ValueError(f"must be lower than enter_threshold ({enter})")
        return v

    @field_validator("alert_activities", "ignore_activities")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        if any(not name.strip() for name in v):
            raise ValueError("activity names must not be empty")
        if len(set(v)) != len(v):
            raise ValueError("activity names must be unique")
        return v

    @field_validator("ignore_activities")
    @classmethod
    def _not_both(cls, v: list[str], info: ValidationInfo) -> list[str]:
        both = sorted(set(v) & set(info.data.get("alert_activities") or ()))
        if both:
            raise ValueError(f"also in alert_activities: {', '.join(both)}")
        return v
