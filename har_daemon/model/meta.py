"""`model.json`: everything needed to feed a saved model correctly.

Kept free of TensorFlow imports so that light backends and the daemon's start-up checks can
read and validate it without loading a framework.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from har_daemon.core.errors import ModelError

FORMAT_VERSION = 1
META_FILE = "model.json"


class PersonRegion(BaseModel):
    """How a person-centric model's windows are cut: the same in training and serving.

    Frames are scaled to `working_width` (aspect kept); the person detector runs on every
    `detect_every`-th sampled frame; the people found over a window are grouped (boxes closer
    than `group_gap` times the taller one's height belong together), and each group becomes one
    square region: its boxes' union, `pad` of its longer side added on each side, at least
    `min_side` pixels, shifted into the frame. The window's frames are cropped to the region
    and resized to the model's frame size. `fallback` adds one more region when the looks find
    fewer people than a melee holds (`regions.fallback_region`).
    """

    model_config = ConfigDict(extra="forbid")

    working_width: int = Field(
        480, ge=64, le=3840, description="Frame width for detection and crops."
    )
    detect_every: int = Field(5, ge=1, le=100, description="Sampled frames between detections.")
    pad: float = Field(0.25, ge=0, le=2, description="Margin added on each side of a group.")
    min_side: int = Field(48, ge=8, le=3840, description="Smallest region side, in pixels.")
    group_gap: float = Field(
        0.5, ge=0, le=10, description="People closer than this x the taller's height are one group."
    )
    max_regions: int = Field(4, ge=1, le=32, description="Most regions classified per window.")
    min_score: float = Field(
        0.35,
        gt=0,
        lt=1,
        description="Detector score a person needs (0.35 chosen on real CCTV frames: 0.5 found "
        "a quarter of the people, 0.3 as many false boxes as 0.35 with few more people).",
    )
    fallback: Literal["none", "frame", "people"] = Field(
        "none",
        description="One more region when the window's busiest look found fewer than "
        "`fallback_below` people (a melee the detector sees as one box, or nobody): 'frame', "
        "the largest square of the frame, centred on the people seen; 'people', the square "
        "around everyone seen; 'none' (what the shipped model was trained with).",
    )
    fallback_below: int = Field(
        1,
        ge=1,
        le=32,
        description="The fallback region is added when no look of the window found this many "
        "people (1: only when nobody was found).",
    )


class ModelMeta(BaseModel):
    """Metadata stored beside the Keras file in a model directory."""

    model_config = ConfigDict(extra="forbid")

    format_version: int = Field(
        FORMAT_VERSION, ge=1, description="Version of this file's layout; newer ones are refused."
    )
    name: str = Field(..., min_length=1, max_length=200, description="Human-readable model name.")
    classes: list[str] = Field(
        ..., min_length=2, description="Class names in the order of the model's output vector."
    )
    background_classes: list[str] = Field(
        default_factory=list,
        max_length=1000,
        description="Classes that mean 'nothing to report' (e.g. noFight): never an activity "
        "unless a config names them in alert_activities, so every tool alerts on the others.",
    )
    sequence_length: int = Field(20, ge=1, le=1000, description="Frames per input window.")
    frame_height: int = Field(64, ge=8, le=2048, description="Height of each resized frame.")
    frame_width: int = Field(64, ge=8, le=2048, description="Width of each resized frame.")
    channels: Literal[3] = Field(3, description="Colour channels per frame.")
    color_order: Literal["BGR", "RGB"] = Field(
        "BGR", description="Channel order the model was trained on (OpenCV decodes to BGR)."
    )
    input_scale: float = Field(
        1.0 / 255.0, gt=0, le=1, description="Factor from uint8 pixel values to model input."
    )
    input_transform: Literal["frames", "frame_diff"] = Field(
        "frames",
        description="frames: scaled frames as they are; frame_diff: the change between "
        "consecutive scaled frames (first step zeros).",
    )
    resize_interpolation: Literal["area", "linear"] = Field(
        "area", description="Resize filter used in training: serving must use the same."
    )
    input_region: Literal["frame", "person"] = Field(
        "frame",
        description="frame: the whole frame resized (the paper's models); person: windows "
        "cropped around the people a detector finds (`person_region` says how).",
    )
    person_region: PersonRegion | None = Field(
        None, description="The crop rules of a person-centric model (input_region person)."
    )
    frame_sampling: Literal["even_over_clip"] = Field(
        "even_over_clip",
        description="How training picked frames: sequence_length frames evenly over each clip.",
    )
    frame_spacing_s: float = Field(
        ...,
        gt=0,
        le=60,
        description="Median time between sampled frames in the training clips, in seconds; "
        "the daemon samples live video at this spacing.",
    )
    architecture: str = Field(
        ..., min_length=1, max_length=50, description="convlstm, lrcn or imported."
    )
    model_file: str = Field("model.keras", min_length=1, description="Keras file in the directory.")
    tflite_file: str | None = Field(None, description="LiteRT export beside the model, if any.")
    created_at: str = Field(
        default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"),
        description="When the model directory was written (UTC).",
    )
    training: dict[str, Any] = Field(
        default_factory=dict, description="Training data, split, parameters and history summary."
    )
    evaluation: dict[str, Any] = Field(
        default_factory=dict, description="Held-out figures measured after training."
    )
    provenance: dict[str, Any] = Field(
        default_factory=dict, description="Data sources, licence and citation."
    )

    @field_validator("classes")
    @classmethod
    def _unique_classes(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("class names must be unique")
        if any(not c.strip() for c in v):
            raise ValueError("class names must not be empty")
        return v

    @model_validator(mode="after")
    def _background_is_some_classes(self) -> ModelMeta:
        unknown = sorted(set(self.background_classes) - set(self.classes))
        if unknown:
            raise ValueError(f"background_classes not in classes: {', '.join(unknown)}")
        if set(self.background_classes) >= set(self.classes):
            raise ValueError("background_classes must leave at least one class to alert on")
        return self

    @model_validator(mode="after")
    def _person_region_needs_rules(self) -> ModelMeta:
        if self.input_region == "person" and self.person_region is None:
            self.person_region = PersonRegion()
        if self.input_region == "frame" and self.person_region is not None:
            raise ValueError("person_region is set, but input_region is 'frame'")
        return self

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.sequence_length, self.frame_height, self.frame_width, self.channels)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(height, width), the order `preprocess.resize_frame` takes."""
        return (self.frame_height, self.frame_width)


def read_meta(model_dir: Path) -> ModelMeta:
    """Read and validate `model.json`, raising `ModelError` with one clear line on any problem."""
    model_dir = Path(model_dir)
    if not model_dir.exists():
        raise ModelError(f"model directory {model_dir} does not exist")
    if not model_dir.is_dir():
        raise ModelError(f"model path {model_dir} is not a directory (expected a model directory)")
    path = model_dir / META_FILE
    if not path.is_file():
        raise ModelError(f"model directory {model_dir} has no {META_FILE}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{path} must hold a JSON object")
    version = raw.get("format_version", FORMAT_VERSION)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ModelError(
            f"{path} has format_version {version}; this har-daemon reads up to {FORMAT_VERSION}"
        )
    try:
        return ModelMeta.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ModelError(f"{path}: field '{where}': {err['msg']}") from None


def write_meta(model_dir: Path, meta: ModelMeta) -> Path:
    path = Path(model_dir) / META_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(meta.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
