"""Recognisers besides the classifier on a camera: the fall recogniser's events and state.

The classifier's events come from `runtime.events.ActivityTracker`; a fall comes from the pose
stage (`runtime.falls.FallStage`) one person at a time, so its events are one occurrence per
fallen person: "start" when they are down after a fall, "update" with `down_s` ("down for N
s") at most every `update_interval_s` while they stay down, "end" when they get up ("up") or
their track is lost ("gone"). Outcomes are `ActivityResult`s, keyed by (camera, activity) on
the event side, so a camera's fight and fall events and states never mix.

Runs on the inference thread, which owns the camera's frames and the person detector: a look
shares the person stage's boxes when that stage looked at the same frame, and costs one
detector call otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np

from har_daemon.config import CameraConfig
from har_daemon.config.recognisers import FALL_ACTIVITY
from har_daemon.core.errors import ModelError
from har_daemon.model.meta import ModelMeta
from har_daemon.model.regions import normalised
from har_daemon.runtime.events import ActivityState, EndReason, Transition
from har_daemon.runtime.falls import FALL_MODEL_DIR, FallChange, FallStage, load_rule
from har_daemon.runtime.zones import CameraZones

FALL_MODEL_NAME = "fall-pose-rule"
"""The `model` of fall events: MoveNet pose and the rule of models/fall."""


def fall_problem(cam: CameraConfig, meta: ModelMeta) -> str | None:
    """Why the camera's fall recogniser cannot run with this [model], or None."""
    if cam.fall is None:
        return None
    if meta.person_region is None:
        return (
            f"camera {cam.name!r}: the fall recogniser needs a person-centric [model] (one with "
            f"a person stage, e.g. models/fight); {meta.name} classifies whole frames"
        )
    if FALL_ACTIVITY in meta.classes:
        return f"camera {cam.name!r}: the [model] has a class {FALL_ACTIVITY!r} of its own"
    try:
        load_rule(cam.fall.model or FALL_MODEL_DIR)
    except ModelError as exc:
        return f"camera {cam.name!r}: {exc}"
    return None


@dataclass(frozen=True)
class ActivityResult:
    """One look of a recogniser other than the classifier, for the event side."""

    camera: str
    activity: str
    at: float
    transitions: list[Transition]
    state: ActivityState
    region: list[float] | None = None
    """The person of the newest transition, as fractions of the frame."""
    captured_at: float | None = None
    model: str = FALL_MODEL_NAME


@dataclass
class FallStats:
    looks: int = 0
    shared_looks: int = 0
    """Looks that used the person stage's boxes of the same frame (no detector call)."""


@dataclass
class _Fall:
    occurrence_id: str
    started_at: float
    last_update: float


@dataclass
class FallRecogniser:
    """A camera's fall stage and the events of its fallen people."""

    camera: str
    stage: FallStage
    update_interval_s: float
    shared: bool = False
    """Look only at the person stage's looks (no detector call of its own)."""
    zones: CameraZones | None = None
    """The camera's masks: people standing in them are ignored, as by the person stage."""
    stats: FallStats = field(default_factory=FallStats)
    seen_count: int = 0
    """The ring's push count at the inference thread's last visit (a fast file's capture
    waits for it)."""
    _open: dict[int, _Fall] = field(default_factory=dict)
    _idle_since: float | None = None
    _last_look: float | None = None

    def due(self, t: float, people_looked: bool) -> bool:
        """Whether to look at the frame of `t` (`people_looked`: the person stage just did)."""
        return people_looked if self.shared else self.stage.due(t)

    def look(
        self,
        frame: np.ndarray,
        t: float,
        boxes: np.ndarray | None = None,
        captured_at: float | None = None,
    ) -> ActivityResult:
        """One look at `frame` (taken at `t`); `boxes`: the detector's on this frame, if any."""
        self.stats.looks += 1
        self._last_look = t
        self.stats.shared_looks += boxes is not None
        if boxes is None:
            boxes = np.asarray(self.stage.detector.detect(frame), np.float32).reshape(-1, 5)
            if self.zones is not None:
                boxes = self.zones.unmasked(boxes, (int(frame.shape[0]), int(frame.shape[1])))
        changes = self.stage.look(frame, t, boxes)
        return self._result(t, changes, frame.shape[:2], captured_at)

    def reset(self, t: float) -> ActivityResult:
        """A stream gap, a cut, a pause or the end: every open fall ends at `t` (or at the last
        look, when that was later: the classifier's last window may lag it)."""
        t = max(t, self._last_look if self._last_look is not None else t)
        self._last_look = None
        return self._result(t, self.stage.reset(t), None, None, finish=True)

    @property
    def state(self) -> ActivityState:
        if not self._open:
            return ActivityState(None, 0.0, self._idle_since, False, None, self.camera)
        first = min(self._open.values(), key=lambda f: f.started_at)
        return ActivityState(
            FALL_ACTIVITY, 1.0, first.started_at, True, first.occurrence_id, self.camera
        )

    def _result(
        self,
        t: float,
        changes: list[FallChange],
        frame_hw: tuple[int, int] | None,
        captured_at: float | None,
        *,
        finish: bool = False,
    ) -> ActivityResult:
        transitions = [tr for c in changes if (tr := self._transition(c, finish)) is not None]
        region = None
        located = [c for c in changes if c.change != "end" and frame_hw is not None]
        if located and frame_hw is not None:
            region = normalised(located[-1].box, frame_hw)
        return ActivityResult(
            self.camera, FALL_ACTIVITY, t, transitions, self.state, region, captured_at
        )

    def _transition(self, c: FallChange, finish: bool) -> Transition | None:
        if c.change == "start":
            fall = self._open[c.track_id] = _Fall(str(uuid.uuid4()), c.t, c.t)
        else:
            fall = self._open.get(c.track_id)
            if fall is None:
                return None
            if c.change == "end":
                del self._open[c.track_id]
                self._idle_since = c.t if not self._open else self._idle_since
            elif c.t - fall.last_update < self.update_interval_s - 1e-6:
                return None
            else:
                fall.last_update = c.t
        reason: EndReason | None = None
        if c.change == "end":
            reason = "finish" if finish else "gone" if c.gone else "up"
        return Transition(
            kind=c.change,
            activity=FALL_ACTIVITY,
            occurrence_id=fall.occurrence_id,
            confidence=1.0,
            peak_confidence=1.0,
            started_at=fall.started_at,
            at=c.t,
            ended_at=c.t if c.change == "end" else None,
            duration_s=max(0.0, c.t - fall.started_at),
            camera=self.camera,
            reason=reason,
            down_s=c.down_s if c.change != "end" else None,
        )
