"""A camera's fall recogniser: person boxes -> pose per person -> person tracks -> fall events.

Looks at a sampled frame every `spacing_s` (0.2 s: a fall takes about a second), runs the
person detector and the pose model once per person, adds one feature set to each person's
track (runtime.poses) and advances the fall rule (model.fall). What it returns is what an
event sink needs: a fall starts when a person is down after a fast way down, updates while
they stay down ("down for N s"), and ends when they get up or their track is gone. A
`tracked` stage calls no detector: given boxes (the person stage's look) it uses them, else it
follows each person seen at the last look from their keypoints (model.pose_track). An
`adaptive` stage looks with the given boxes only, and follows people from their keypoints at
its 0.2 s spacing only while a watch is open (model.fall_watch: someone may be going down).

Runs on the caller's thread (the inference thread in the daemon, a loop offline); the detector
and the pose model are called from here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from har_daemon.core.errors import ModelError
from har_daemon.core.paths import bundled
from har_daemon.model.fall import Change, FallEvents, FallRule
from har_daemon.model.fall_watch import watch_until
from har_daemon.model.pose import MIN_SIDE_PX, posable
from har_daemon.model.pose_features import coverage
from har_daemon.model.pose_track import seen_box, track_region
from har_daemon.runtime.lying import (
    LookStats,
    PoseModel,
    RotatedLook,
    advance,
    estimate_posable,
)
from har_daemon.runtime.people import Detector
from har_daemon.runtime.poses import PoseTracks
from har_daemon.video.frames import TimedFrames

FALL_MODEL_DIR = bundled("models/fall")
RULE_FILE = "rule.json"
SPACING_S = 0.2
"""Seconds between looks: what the shipped thresholds were learned at."""
DETECT_SCORE = 0.2
"""The person detector's score threshold the thresholds were learned with
(scripts/fall_data.py); a detector shared with the fight's person stage uses the lower of the
two (that stage filters its own boxes by its model's `min_score`)."""


def rule_file(looks: str | None = None) -> str:
    """The file of the thresholds learned for a looks mode (`rule-tracked.json`), or of the
    rule every mode without one of its own uses (`rule.json`, learned at `SPACING_S`)."""
    return RULE_FILE if looks is None else f"rule-{looks}.json"


def load_rule(model_dir: Path | str = FALL_MODEL_DIR, looks: str | None = None) -> FallRule:
    """The learned thresholds for the stage's `looks` mode in `model_dir`: `rule_file(looks)`
    when there is one, else `rule.json`; a bad file is a ModelError naming it."""
    path = Path(model_dir) / rule_file(looks)
    if not path.is_file():
        path = Path(model_dir) / RULE_FILE
    names = {f.name for f in fields(FallRule)}
    try:
        raw = json.loads(path.read_text())
        unknown = set(raw) - names
        if unknown:
            raise ValueError(f"unknown keys {sorted(unknown)}")
        return FallRule(**{k: float(v) for k, v in raw.items()})
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"cannot read fall rule {path}: {exc}") from None


def pose_min_side(looks: str) -> float:
    """The longer box side (pixels) under which a fall stage in this looks mode poses nobody:
    `MIN_SIDE_PX` for the modes that look at the person stage's looks (shared, tracked,
    adaptive), 0 (every box) for `own` looks. Own looks' figures held out got worse with it (1
    to 3 of 27 everyday clips alerted: without the small people's poor keypoints the quiet
    corpus no longer keeps the folds' thresholds tight; docs/pose-and-falls.md)."""
    return 0.0 if looks == "own" else MIN_SIDE_PX


@dataclass(frozen=True)
class FallChange:
    """One fall event change of one person."""

    track_id: int
    change: Change
    t: float
    down_s: float
    """How long the person has been down (0 at "end")."""
    box: tuple[float, float, float, float]
    gone: bool = False
    """An "end" because the track was lost (not because the person got up)."""


@dataclass(frozen=True)
class TrackedPerson:
    """One person the fall stage follows, as of its last look (what the debug view draws)."""

    track_id: int
    box: tuple[float, float, float, float]
    """In the frame's pixels; the last box seen when the person was not seen at the look."""
    down_s: float | None
    """How long the rule has had them down (what a fall's `down_s` says); None: not down."""
    seen: bool
    """Seen at the look (else kept from an earlier one: a lying person is often missed)."""
    fallen: bool = False
    """A fall event is open for them (`runtime.recognisers` knows)."""


@dataclass
class FallStage:
    detector: Detector
    pose: PoseModel
    rule: FallRule
    spacing_s: float = SPACING_S
    tracks: PoseTracks = field(default_factory=PoseTracks)
    events: FallEvents | None = None
    again: RotatedLook | None = None
    """The turned second look at people lost or poorly seen right after going down (used
    when the rule's `look_s` is over 0)."""
    tracked: bool = False
    """A look given no boxes follows each person seen at the last look from their keypoints
    (model.pose_track) instead of calling the detector; only looks given the detector's boxes
    (the person stage's) find new people."""
    adaptive: bool = False
    """Look only when given boxes (the person stage's), and, while a watch is open
    (model.fall_watch), at the 0.2 s spacing following people from their keypoints as a
    tracked stage does."""
    min_side_px: float = 0.0
    """People whose box's longer side is shorter get no pose call (`model.pose.posable`;
    `pose_min_side` says how small for a looks mode)."""
    posed: int = 0
    """Pose calls on the boxes of looks so far (not counting followed people)."""
    unposed: int = 0
    """Boxes of looks so far too small to pose (`min_side_px`)."""
    followed: int = 0
    """Tracked or adaptive looks' pose calls so far (people followed)."""
    looks_made: int = 0
    """Looks so far."""
    own_looks: int = 0
    """Looks given no boxes so far: a detector call (own), people followed (tracked,
    adaptive)."""
    _last_t: float | None = None
    _watch_until: float | None = None

    def __post_init__(self) -> None:
        self.events = self.events or FallEvents(self.rule)
        self.again = self.again or RotatedLook(self.detector, self.pose)

    @property
    def look_stats(self) -> LookStats:
        """The second looks so far and the extra model calls they made."""
        assert self.again is not None
        return self.again.stats

    def due(self, t: float) -> bool:
        return self._last_t is None or t - self._last_t >= self.spacing_s - 1e-6

    @property
    def follows(self) -> bool:
        """A look given no boxes follows people from their keypoints (no detector call)."""
        return self.tracked or self.adaptive

    def watching(self, t: float) -> bool:
        """An adaptive stage's watch is open at `t` (someone may be going down)."""
        return self._watch_until is not None and t < self._watch_until - 1e-6

    def own_look_due(self, t: float) -> bool:
        """A look without the person stage's boxes is due at `t`: every `spacing_s`, for an
        adaptive stage only while its watch is open."""
        return self.due(t) and (not self.adaptive or self.watching(t))

    def look(
        self, frame: np.ndarray, t: float, boxes: np.ndarray | None = None
    ) -> list[FallChange]:
        """Estimate and advance every person track on `frame` (taken at `t`); `boxes`: the
        person detector's on this very frame when another stage already ran it, else the
        detector runs here."""
        assert self.events is not None
        self._last_t = t
        self.looks_made += 1
        self.own_looks += boxes is None
        if boxes is None and self.follows:
            boxes, keypoints = self._follow(frame)
        else:
            if boxes is None:
                boxes = self.detector.detect(frame)
            boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
            found, big = estimate_posable(self.pose, frame, boxes, self.min_side_px)
            keypoints = list(found)
            n_big = int(np.count_nonzero(big))
            self.posed, self.unposed = self.posed + n_big, self.unposed + len(boxes) - n_big
        again = self.again
        assert again is not None
        seen = advance(
            self.tracks, t, boxes, keypoints, frame.shape[:2], self.rule.look_s,
            lambda _track_id, box: again.look(frame, box),
        )  # fmt: skip
        now = {tr.id for tr in seen}
        live = [(tr.id, tr.ring, tr.id in now) for tr in self.tracks.tracks]
        boxes_by_id = {tr.id: tr.box for tr in self.tracks.tracks}
        out = []
        for track_id, change in self.events.step(t, live):
            state = self.events.states.get(track_id)
            since = state.down_since if state is not None else None
            down_s = t - since if change != "end" and since is not None else 0.0
            box = boxes_by_id.get(track_id)
            gone = box is None
            box = box or (0.0, 0.0, 0.0, 0.0)
            out.append(FallChange(track_id, change, t, round(down_s, 2), box, gone))
        if self.adaptive:
            self._watch(t)
        return out

    def _watch(self, t: float) -> None:
        """Open or extend the watch at the look at `t` (model.fall_watch)."""
        assert self.events is not None
        window = self.rule.fall_window_s + self.rule.hold_s
        for tr in self.tracks.tracks:
            state = self.events.states.get(tr.id)
            down = state is not None and (
                state.down_since is not None or state.open_since is not None
            )
            until = watch_until(tr.ring, t, down, window)
            if until is not None and (self._watch_until is None or until > self._watch_until):
                self._watch_until = until

    def _follow(self, frame: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """A tracked look: the pose model on the region of each person seen at the last look
        (their keypoints then); those seen well enough (the rule's `min_coverage`) continue
        their track with the box of their keypoints (matched to the tracks as a detector box
        is), the others count as not seen (their track keeps its box and ages, as when the
        detector misses someone). People too small to pose (`min_side_px`) are not followed."""
        hw = (int(frame.shape[0]), int(frame.shape[1]))
        regions = [
            region
            for track in self.tracks.tracks
            if track.missed == 0 and track.poses
            and posable(np.asarray([track.box], np.float32), self.min_side_px)[0]
            and (region := track_region(track.poses[-1].keypoints, track.box, hw)) is not None
        ]  # fmt: skip
        boxes, kps = [], []
        if regions:
            found = self.pose.estimate(frame, np.stack(regions))
            self.followed += len(regions)
            for kp in found:
                box = seen_box(kp, hw) if coverage(kp) >= self.rule.min_coverage else None
                if box is not None:
                    boxes.append(box)
                    kps.append(np.asarray(kp, np.float32))
        return np.asarray(boxes, np.float32).reshape(-1, 5), kps

    def people(self, t: float) -> list[TrackedPerson]:
        """Every person tracked at the look at `t` (the last), down or not."""
        assert self.events is not None
        states = self.events.states
        out = []
        for tr in self.tracks.tracks:
            since = states[tr.id].down_since if tr.id in states else None
            down_s = None if since is None else round(t - since, 2)
            out.append(TrackedPerson(tr.id, tr.box, down_s, tr.missed == 0))
        return out

    def reset(self, t: float) -> list[FallChange]:
        """A stream gap: tracks start afresh and every open fall ends (returned)."""
        assert self.events is not None
        ended = [
            FallChange(track_id, "end", t, 0.0, (0.0, 0.0, 0.0, 0.0))
            for track_id, state in self.events.states.items()
            if state.open_since is not None
        ]
        self.tracks.reset()
        self.events = FallEvents(self.rule)
        self._last_t = self._watch_until = None
        return ended


def play_file(
    path: Path | str, stage: FallStage, detect_every_s: float | None = None
) -> list[FallChange]:
    """Every fall change of a video file played through `stage` on the file's own clock (what
    a camera would run, only faster); the end of the file ends what is still open. With a
    `tracked` or `adaptive` stage the detector runs every `detect_every_s` (the person stage's
    spacing, whose boxes the stage takes, at a look of its own) and the stage's own looks come
    between. Raises `VideoError` naming the file when it cannot be read."""
    t, out, detected = 0.0, [], None
    for t, frame in TimedFrames(path):
        detect = stage.follows and (
            detected is None or detect_every_s is None or t - detected >= detect_every_s - 1e-6
        )
        if detect or stage.own_look_due(t):
            boxes = stage.detector.detect(frame) if detect else None
            detected = t if detect else detected
            out += stage.look(frame, t, boxes)
    return out + stage.reset(t)
