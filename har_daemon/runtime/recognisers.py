"""Recognisers besides the classifier on a camera: the fall recogniser's events and state.

The classifier's events come from `runtime.events.ActivityTracker`; a fall comes from the pose
stage (`runtime.falls.FallStage`) one person at a time, so its events are one occurrence per
fallen person: "start" when they are down after a fall, "update" with `down_s` ("down for N
s") at most every `update_interval_s` while they stay down, "end" when they get up ("up") or
their track is lost ("gone"). Outcomes are `ActivityResult`s, keyed by (camera, activity) on
the event side, so a camera's fight and fall events and states never mix.

On a camera with zones a fall carries the zones the person lay in when it started (their box's
foot point, the rule `CameraZones.zones_of` applies to everyone), on its start, updates and end;
with `required_zones` naming `fall`, a fall outside those zones does not start (so it never
goes on either). Masks: a look of its own drops the people standing in one, as the person stage
does with the boxes it shares.

Runs on the inference thread, which owns the camera's frames and the person detector: a look
shares the person stage's boxes when that stage looked at the same frame, and costs one
detector call otherwise (`looks = "tracked"`, and `"adaptive"` while someone may be going down:
follows the people of its last look from their keypoints instead, runtime.falls).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

import numpy as np

from har_daemon.config import CameraConfig
from har_daemon.config.recognisers import FALL_ACTIVITY
from har_daemon.core.errors import ModelError
from har_daemon.model.meta import ModelMeta
from har_daemon.model.regions import normalised
from har_daemon.runtime.events import ActivityState, EndReason, Transition
from har_daemon.runtime.falls import (
    FALL_MODEL_DIR,
    FallChange,
    FallStage,
    TrackedPerson,
    load_rule,
)
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
        load_rule(cam.fall.model or FALL_MODEL_DIR, cam.fall.looks)
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
    tracked_looks: int = 0
    """Looks that followed people from their last keypoints (`looks = "tracked"`, or
    `"adaptive"` while its watch is open: no detector call)."""
    outside_zones: int = 0
    """Falls that did not start: the person lay outside the zones `required_zones` names."""


@dataclass
class _Fall:
    occurrence_id: str
    started_at: float
    last_update: float
    zones: tuple[str, ...] | None = None


@dataclass
class FallRecogniser:
    """A camera's fall stage and the events of its fallen people."""

    camera: str
    stage: FallStage
    update_interval_s: float
    shared: bool = False
    """Look only at the person stage's looks (no detector call of its own)."""
    zones: CameraZones | None = None
    """The camera's zones and masks (module docstring)."""
    stats: FallStats = field(default_factory=FallStats)
    people: tuple[TrackedPerson, ...] = ()
    """The people followed at the last look; replaced whole at each look (one reference swap:
    the debug view reads it from its own thread)."""
    seen_count: int = 0
    """The ring's push count at the inference thread's last visit (a fast file's capture
    waits for it)."""
    _open: dict[int, _Fall] = field(default_factory=dict)
    _idle_since: float | None = None
    _last_look: float | None = None

    def due(self, t: float, people_looked: bool) -> bool:
        """Whether to look at the frame of `t` (`people_looked`: the person stage just did;
        a tracked or adaptive stage looks then too, its only chance to find new people)."""
        if self.shared:
            return people_looked
        return self.stage.own_look_due(t) or (people_looked and self.stage.follows)

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
        self.stats.tracked_looks += boxes is None and self.stage.follows
        if boxes is None and not self.stage.follows:
            boxes = np.asarray(self.stage.detector.detect(frame), np.float32).reshape(-1, 5)
            if self.zones is not None:
                boxes = self.zones.unmasked(boxes, (int(frame.shape[0]), int(frame.shape[1])))
        changes = self.stage.look(frame, t, boxes)
        frame_hw = (int(frame.shape[0]), int(frame.shape[1]))
        result = self._result(t, changes, frame_hw, captured_at)
        self.people = tuple(
            replace(p, fallen=True) if p.track_id in self._open else p for p in self.stage.people(t)
        )
        return result

    def reset(self, t: float) -> ActivityResult:
        """A stream gap, a cut, a pause or the end: every open fall ends at `t` (or at the last
        look, when that was later: the classifier's last window may lag it)."""
        t = max(t, self._last_look if self._last_look is not None else t)
        self._last_look = None
        self.people = ()
        return self._result(t, self.stage.reset(t), None, None, finish=True)

    @property
    def state(self) -> ActivityState:
        zones = self._zone_names({z for f in self._open.values() for z in f.zones or ()})
        if not self._open:
            return ActivityState(None, 0.0, self._idle_since, False, None, self.camera, zones)
        first = min(self._open.values(), key=lambda f: f.started_at)
        return ActivityState(
            FALL_ACTIVITY, 1.0, first.started_at, True, first.occurrence_id, self.camera, zones
        )

    def _zone_names(self, names: set[str]) -> tuple[str, ...] | None:
        """`names` in the configuration's order; None when the camera has no zones."""
        if self.zones is None or not self.zones.zones:
            return None
        return tuple(name for name in self.zones.zones if name in names)

    def _fall_zones(
        self, c: FallChange, frame_hw: tuple[int, int] | None
    ) -> tuple[str, ...] | None:
        """Where the person of a starting fall lies (None: the camera has no zones)."""
        if self.zones is None or not self.zones.zones or frame_hw is None:
            return None
        return tuple(self.zones.zones_of(np.asarray([c.box], np.float32), frame_hw))

    def _result(
        self,
        t: float,
        changes: list[FallChange],
        frame_hw: tuple[int, int] | None,
        captured_at: float | None,
        *,
        finish: bool = False,
    ) -> ActivityResult:
        transitions = [
            tr for c in changes if (tr := self._transition(c, frame_hw, finish)) is not None
        ]
        region = None
        located = [c for c in changes if c.change != "end" and frame_hw is not None]
        if located and frame_hw is not None:
            region = normalised(located[-1].box, frame_hw)
        return ActivityResult(
            self.camera, FALL_ACTIVITY, t, transitions, self.state, region, captured_at
        )

    def _transition(
        self, c: FallChange, frame_hw: tuple[int, int] | None, finish: bool
    ) -> Transition | None:
        if c.change == "start":
            zones = self._fall_zones(c, frame_hw)
            if zones is not None and self.zones and not self.zones.allows(FALL_ACTIVITY, zones):
                self.stats.outside_zones += 1
                return None  # its updates and end find no open fall: ignored too
            fall = self._open[c.track_id] = _Fall(str(uuid.uuid4()), c.t, c.t, zones)
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
            zones=fall.zones,
        )
