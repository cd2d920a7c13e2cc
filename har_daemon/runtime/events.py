"""Turns a camera's smoothed class scores into activity events (pure: no I/O, no clocks).

One `ActivityTracker` per camera. Each inference window, the daemon passes the smoothed scores
and the window's time to `step`, which returns the transitions to publish:

* An activity STARTS once it is the top class with a smoothed score >= `enter_threshold` for
  `min_windows` consecutive windows. Any dip (another top class, or a score below the enter
  threshold) before that restarts the count.
* While active it stays active as long as its score is >= `exit_threshold` (hysteresis: between
  exit and enter nothing changes). It ENDS when its score falls below `exit_threshold`, or when
  ANOTHER alerting activity meets the start condition: then the old one's `end` is returned
  before the new one's `start`, in the same step.
* While active, an `update` (current and peak confidence) is returned at most every
  `update_interval_s` (0: every window).
* `finish(now)` ends whatever is open (shutdown, end of a file, a stream gap).

Only activities in `alert_activities` (None: all) produce transitions. The others still become
the tracker's current *state* by the same rules (shown on the retained state topic) but emit
nothing, and cannot take over from an active alerting activity. Classes in `ignore_activities`
(a background class such as "NonViolence") never become active; while one is the top class,
nothing can start.

All three transitions of one occurrence carry the same `occurrence_id` (a uuid4 string); the
next occurrence, even of the same activity, gets a new one. Message sequence numbers are the
publisher's business.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from har_daemon.config import InferenceConfig, default_of

TransitionKind = Literal["start", "update", "end"]
EndReason = Literal["below_exit", "takeover", "finish", "up", "gone"]
SignalName = Literal["pose", "appearance", "pretrained"]
"""Falls end "up" (the person got up) or "gone" (their track was lost)."""


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds and filters of the event state machine."""

    enter_threshold: float = default_of(InferenceConfig, "enter_threshold")
    exit_threshold: float = default_of(InferenceConfig, "exit_threshold")
    min_windows: int = default_of(InferenceConfig, "min_windows")
    update_interval_s: float = default_of(InferenceConfig, "update_interval_s")
    alert_activities: frozenset[str] | None = None
    """Activities that raise events; None means every (not ignored) class."""
    ignore_activities: frozenset[str] = field(default_factory=frozenset)
    """Classes that never become active (background / "nothing happening" classes)."""

    def __post_init__(self) -> None:
        if not 0.0 < self.enter_threshold <= 1.0:
            raise ValueError(f"enter_threshold must be in (0, 1], got {self.enter_threshold}")
        if not 0.0 <= self.exit_threshold < self.enter_threshold:
            raise ValueError(
                f"exit_threshold ({self.exit_threshold}) must be >= 0 and lower than "
                f"enter_threshold ({self.enter_threshold})"
            )
        if self.min_windows < 1:
            raise ValueError(f"min_windows must be >= 1, got {self.min_windows}")
        if self.update_interval_s < 0:
            raise ValueError(f"update_interval_s must be >= 0, got {self.update_interval_s}")
        # Accept any iterable of names; store frozensets.
        if self.alert_activities is not None:
            object.__setattr__(self, "alert_activities", frozenset(self.alert_activities))
        object.__setattr__(self, "ignore_activities", frozenset(self.ignore_activities))

    def alerts(self, activity: str) -> bool:
        """True if `activity` produces events."""
        if activity in self.ignore_activities:
            return False
        return self.alert_activities is None or activity in self.alert_activities

    def check_classes(self, classes: Collection[str]) -> None:
        """Raise ValueError naming any configured activity that is not one of `classes`."""
        known = set(classes)
        for label, names in (
            ("alert_activities", self.alert_activities or ()),
            ("ignore_activities", self.ignore_activities),
        ):
            unknown = sorted(set(names) - known)
            if unknown:
                raise ValueError(
                    f"{label}: unknown activit{'y' if len(unknown) == 1 else 'ies'} "
                    f"{', '.join(repr(u) for u in unknown)}; the model's classes are "
                    f"{', '.join(classes)}"
                )


@dataclass(frozen=True)
class Signal:
    """Which of the fused fight signals scored a window, and both scores (runtime.fight_pose):
    why an event started or went on."""

    used: SignalName
    appearance: float
    """The appearance model's fight score of the region."""
    pose: float | None
    """The pose model's, when it could score the region (None: nobody tracked there)."""
    reliable_people: int
    """People in the region whose pose was trusted (tall enough, keypoints seen)."""
    pretrained: float | None = None
    """The pretrained appearance head's fight score (runtime.pretrained), when it is fused."""

    def fields(self) -> dict[str, Any]:
        """The event fields that say why."""
        return {
            "signal": self.used,
            "appearance_score": round(self.appearance, 4),
            "pose_score": None if self.pose is None else round(self.pose, 4),
            "reliable_people": self.reliable_people,
            **({} if self.pretrained is None else {"pretrained_score": round(self.pretrained, 4)}),
        }


@dataclass(frozen=True)
class Transition:
    """One activity event: the start, a periodic update, or the end of an occurrence."""

    kind: TransitionKind
    activity: str
    occurrence_id: str
    confidence: float
    """The activity's smoothed score in the window that caused this transition."""
    peak_confidence: float
    """The highest smoothed score of this occurrence so far."""
    started_at: float
    at: float
    """Time of the window that caused this transition (epoch seconds)."""
    ended_at: float | None
    """Set on `end` only."""
    duration_s: float
    """Seconds since `started_at` (0 on `start`)."""
    camera: str | None = None
    reason: EndReason | None = None
    """Why an occurrence ended (on `end` only)."""
    down_s: float | None = None
    """Falls only: how long the person has been down (runtime.recognisers)."""
    signal: Signal | None = None
    """Fights with pose fusion on: the signal that scored the window of a start or update."""
    zones: tuple[str, ...] | None = None
    """Falls on a camera with zones: the zones the person lay in when the fall started (the
    classifier's events take theirs from the window: `dispatch.router`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ActivityState:
    """What a camera sees now, for the retained state topic."""

    activity: str | None
    """Current activity (alerting or not), or None when idle."""
    confidence: float
    """The current activity's smoothed score (0.0 when idle)."""
    since: float | None
    """When the current activity started, or when the camera last became idle (None: never
    active yet)."""
    alerting: bool
    occurrence_id: str | None
    camera: str | None = None
    zones: tuple[str, ...] | None = None
    """A fall recogniser's on a camera with zones: the zones of the people down now (empty
    while idle); the classifier's come from its windows (`dispatch.router`)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Occurrence:
    activity: str
    alerting: bool
    occurrence_id: str
    started_at: float
    confidence: float
    peak: float
    last_update: float


class ActivityTracker:
    """The event state machine of one camera (see the module docstring for the rules)."""

    def __init__(
        self,
        config: TrackerConfig | None = None,
        classes: Sequence[str] | None = None,
        camera: str | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self.classes = list(classes) if classes is not None else None
        if self.classes is not None:
            self.config.check_classes(self.classes)
        self.camera = camera
        self._current: _Occurrence | None = None
        self._candidate: str | None = None
        self._streak = 0
        self._idle_since: float | None = None

    # -- inputs ------------------------------------------------------------------------------

    def _scores(self, probs: Mapping[str, float] | Sequence[float] | np.ndarray) -> dict:
        if isinstance(probs, Mapping):
            items = probs.items()
        else:
            if self.classes is None:
                raise ValueError("scores given as a vector, but the tracker has no class names")
            vec = np.asarray(probs, dtype=np.float64).ravel()
            if vec.shape[0] != len(self.classes):
                raise ValueError(f"got {vec.shape[0]} scores for {len(self.classes)} classes")
            items = zip(self.classes, vec.tolist(), strict=True)
        # A NaN score (a broken model output) counts as 0 rather than freezing an activity.
        return {k: (0.0 if math.isnan(v) else float(v)) for k, v in items}

    # -- transitions -------------------------------------------------------------------------

    def _start(self, activity: str, score: float, now: float, out: list[Transition]) -> None:
        occ = _Occurrence(
            activity=activity,
            alerting=self.config.alerts(activity),
            occurrence_id=str(uuid.uuid4()),
            started_at=now,
            confidence=score,
            peak=score,
            last_update=now,
        )
        self._current = occ
        if occ.alerting:
            out.append(self._transition("start", occ, now))

    def _end(self, now: float, reason: EndReason, out: list[Transition]) -> None:
        occ = self._current
        assert occ is not None
        self._current = None
        self._idle_since = now
        if occ.alerting:
            out.append(self._transition("end", occ, now, reason))

    def _transition(
        self, kind: TransitionKind, occ: _Occurrence, now: float, reason: EndReason | None = None
    ) -> Transition:
        return Transition(
            kind=kind,
            activity=occ.activity,
            occurrence_id=occ.occurrence_id,
            confidence=occ.confidence,
            peak_confidence=occ.peak,
            started_at=occ.started_at,
            at=now,
            ended_at=now if kind == "end" else None,
            duration_s=max(0.0, now - occ.started_at),
            camera=self.camera,
            reason=reason,
        )

    def step(
        self, smoothed: Mapping[str, float] | Sequence[float] | np.ndarray, now: float
    ) -> list[Transition]:
        """Feed one window's smoothed scores (a {class: score} mapping, or a vector in the
        order of `classes`) taken at `now`; return the transitions it causes, in order."""
        cfg = self.config
        scores = self._scores(smoothed)
        out: list[Transition] = []
        if not scores:
            return out

        # The start condition: the top class, not ignored, >= enter for min_windows windows.
        top = max(scores, key=scores.__getitem__)  # first of equal maxima
        candidate = (
            top if top not in cfg.ignore_activities and scores[top] >= cfg.enter_threshold else None
        )
        if candidate is not None and candidate == self._candidate:
            self._streak += 1
        else:
            self._candidate = candidate
            self._streak = 0 if candidate is None else 1
        confirmed = candidate if self._streak >= cfg.min_windows else None

        occ = self._current
        if occ is None:
            if confirmed is not None:
                self._start(confirmed, scores[confirmed], now, out)
            return out

        score = scores.get(occ.activity, 0.0)
        occ.confidence = score
        occ.peak = max(occ.peak, score)
        if (
            confirmed is not None
            and confirmed != occ.activity
            and (cfg.alerts(confirmed) or not occ.alerting)
        ):
            self._end(now, "takeover", out)
            self._start(confirmed, scores[confirmed], now, out)
        elif score < cfg.exit_threshold:
            self._end(now, "below_exit", out)
            if confirmed is not None:  # a non-alerting activity held back by an alerting one
                self._start(confirmed, scores[confirmed], now, out)
        elif occ.alerting and now - occ.last_update >= cfg.update_interval_s:
            occ.last_update = now
            out.append(self._transition("update", occ, now))
        return out

    def finish(self, now: float) -> list[Transition]:
        """End the open occurrence, if any (shutdown, end of file, stream gap)."""
        out: list[Transition] = []
        if self._current is not None:
            self._end(now, "finish", out)
        self._candidate = None
        self._streak = 0
        return out

    # -- state -------------------------------------------------------------------------------

    @property
    def active(self) -> str | None:
        """The current activity (alerting or not), or None."""
        return None if self._current is None else self._current.activity

    @property
    def state(self) -> ActivityState:
        occ = self._current
        if occ is None:
            return ActivityState(None, 0.0, self._idle_since, False, None, self.camera)
        return ActivityState(
            occ.activity,
            occ.confidence,
            occ.started_at,
            occ.alerting,
            occ.occurrence_id,
            self.camera,
        )
