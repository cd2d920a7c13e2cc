"""A camera's recognisers: which activity recognisers run on one camera's frames.

`classifier` is the [model] classifier with [inference]'s alert settings (today's single-model
daemon, e.g. the fight model); `fall` is the pose-based fall rule (models/fall). A camera
without `recognisers` runs the classifier alone, so every config written before this existed
means what it meant. Several recognisers on one camera share its capture and frames; each has
its own events (the event's `activity` says which) and Home Assistant binary sensor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from har_daemon.config.paths import resolve_relative
from har_daemon.config.types import ExpandedPath, Seconds, Section

RecogniserKind = Literal["classifier", "fall"]
FallLooks = Literal["own", "shared", "tracked", "adaptive"]
FALL_ACTIVITY = "fall"
"""The activity a fall recogniser's events carry."""


class RecogniserConfig(Section):
    """One entry of a camera's `recognisers`."""

    kind: RecogniserKind = Field(
        ...,
        title="Recogniser",
        description="'classifier': the [model] classifier with [inference]'s alert settings "
        "(its events' activity is the class, e.g. 'fight'); 'fall': a person down after a fall, "
        "from body pose (activity 'fall'; needs a person-centric [model], whose person stage "
        "it shares).",
    )
    model: ExpandedPath | None = Field(
        None,
        title="Model directory",
        description="'fall' only: the directory of its rule.json (default: the bundled "
        "models/fall). The classifier's is [model] path.",
    )
    update_interval_s: Seconds = Field(
        1.0,
        ge=0,
        le=3600,
        title="Update interval",
        description="'fall' only: least seconds between 'update' events (\"down for N s\", the "
        "event's down_s) while the person stays down (0: every look, 5 per second). The "
        "classifier's is [inference] update_interval_s.",
    )

    looks: FallLooks = Field(
        "own",
        title="Fall looks",
        description="'fall' only. 'own': a look every 0.2 s, the spacing the rule was learned "
        "at, sharing the person detector's call when the classifier's person stage looks at "
        "the same frame and calling it otherwise. 'shared': look only when the person stage "
        "looks (every ~0.5 s with models/fight), so the fall costs pose alone, no detector "
        "call of its own; it found two GMDCSA24 falls fewer (docs/pose-and-falls.md). "
        "'tracked': a look every 0.2 s, the detector's boxes only at the person stage's looks; "
        "in between each person is followed from their last keypoints (pose on the region "
        "around them, no detector call), and new people appear at the next person-stage look. "
        "'adaptive': the person stage's looks as 'shared', plus tracked looks every 0.2 s only "
        "while someone may be going down (a fast drop or a turning torso between their last two "
        "looks, or down), for the rule's fall window and hold after it. "
        "'shared', 'tracked' and 'adaptive' need the classifier on the camera.",
    )

    @property
    def activity(self) -> str | None:
        """The activity of a recogniser's events (None: the classifier's, its classes)."""
        return FALL_ACTIVITY if self.kind == "fall" else None

    @field_validator("model", mode="after")
    @classmethod
    def _resolve_relative(cls, v: Path | None) -> Path | None:
        return None if v is None else resolve_relative(v)


def unique_kinds(recognisers: list[RecogniserConfig]) -> list[RecogniserConfig]:
    """A camera runs each recogniser at most once (events are keyed by camera and activity)."""
    kinds = [r.kind for r in recognisers]
    twice = sorted({k for k in kinds if kinds.count(k) > 1})
    if twice:
        raise ValueError(f"recogniser {twice[0]!r} listed more than once")
    for r in recognisers:
        if r.kind == "classifier" and r.model is not None:
            raise ValueError("the classifier's model is [model] path; 'model' is for 'fall'")
        if r.looks != "own" and "classifier" not in kinds:
            raise ValueError(f"looks = {r.looks!r} shares the classifier's person stage: add it")
    return recognisers
