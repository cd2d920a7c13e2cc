"""A camera's pose signal for fights, and its fusion with the appearance model.

Appearance sees melees but not distance; pose sees bodies but not melees (issue 19's
measurements). So each speaks where it is reliable: a region whose window holds at least
`min_people` people tall enough and with enough keypoints seen is scored by the pose model
(model.fight_pose over model.fight_pose_features), any other region by the appearance model,
and the window says which (events.Signal).

The person tracks and their cached poses come from the camera's fall stage when it has one (one
pose call per person serves both); otherwise this stage looks on its own every `SPACING_S`,
sharing the person stage's boxes when it looked at the same frame. Runs on the inference
thread, like the person and fall stages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from har_daemon.config.inference import PoseRule, PretrainedRule
from har_daemon.model.fight_pose import FightPoseModel
from har_daemon.model.fight_pose_features import (
    WINDOW_S,
    Pose,
    near_pairs,
    reliable,
    window_features,
)
from har_daemon.model.regions import Region
from har_daemon.runtime.events import Signal
from har_daemon.runtime.falls import SPACING_S, PoseModel
from har_daemon.runtime.people import Detector
from har_daemon.runtime.poses import PersonTrack, PoseTracks, box_centre, inside_box

FIGHT_ACTIVITY = "fight"
"""The class whose score the pose signal gives."""


def window_tracks(tracks: Sequence[PersonTrack], t: float) -> list[list[Pose]]:
    """Each track's cached poses of the window ending at `t` (the last `WINDOW_S`)."""
    out = []
    for track in tracks:
        seq = [p for p in track.poses if t - WINDOW_S - 1e-6 < p.t <= t + 1e-6]
        if seq:
            out.append(seq)
    return out


def fused(prob: np.ndarray, index: int, score: float) -> np.ndarray:
    """`prob` with class `index` at `score` and the other classes sharing the rest in their
    own proportions (the tracker compares the classes: they must still sum to 1)."""
    out = np.asarray(prob, np.float64).copy()
    rest = float(out.sum() - out[index])
    others = np.arange(len(out)) != index
    out[others] = (
        out[others] * (1.0 - score) / rest if rest > 0 else (1.0 - score) / max(len(out) - 1, 1)
    )
    out[index] = score
    return out.astype(np.asarray(prob).dtype)


def combine(rule: PoseRule | PretrainedRule, appearance: float, other: float) -> float:
    """The fight score from the fight model's and a second signal's (config `pose_rule`,
    `pretrained_rule`): "replace" takes the other's, "max" the higher, "min" the lower."""
    if rule == "replace":
        return other
    if rule == "mean":
        return (appearance + other) / 2
    if rule == "max":
        return max(appearance, other)
    return min(appearance, other)


@dataclass
class FightPoseStage:
    model: FightPoseModel
    fight_index: int
    """The fight class's index in the appearance model's classes."""
    min_people: int
    min_height_px: float
    min_coverage: float
    min_score: float
    """Person boxes under this detector score are left out (the person stage's own)."""
    rule: PoseRule = "min"
    """How pose and appearance make the fight score where pose is reliable (config)."""
    tracks: PoseTracks = field(default_factory=PoseTracks)
    detector: Detector | None = None
    pose: PoseModel | None = None
    """None: the tracks are the fall stage's, fed by its looks (no look of its own)."""
    spacing_s: float = SPACING_S
    looks: int = 0
    """Looks of its own (0 while it reads the fall stage's tracks)."""
    pose_windows: int = 0
    """Region windows the pose model scored (the rest: appearance alone)."""
    _last_t: float | None = None

    def due(self, t: float) -> bool:
        return self.pose is not None and (
            self._last_t is None or t - self._last_t >= self.spacing_s - 1e-6
        )

    def look(self, frame: np.ndarray, t: float, boxes: np.ndarray | None = None) -> None:
        """Pose every person on `frame` and add them to their tracks; `boxes`: the detector's
        on this frame when the person stage just ran it."""
        assert self.pose is not None and self.detector is not None
        self._last_t = t
        self.looks += 1
        if boxes is None:
            boxes = self.detector.detect(frame)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 5)
        boxes = boxes[boxes[:, 4] >= self.min_score]
        keypoints = self.pose.estimate(frame, boxes) if len(boxes) else []
        self.tracks.update(t, boxes, keypoints, (int(frame.shape[0]), int(frame.shape[1])))

    def reset(self) -> None:
        self._last_t = None
        if self.pose is not None:  # the fall stage resets its own
            self.tracks.reset()

    def signal(self, region: Region, t: float, prob: np.ndarray) -> tuple[np.ndarray, Signal]:
        """The region's scores after fusion, and why: where at least `min_people` of its
        people are reliable and two of them come near each other, the pose model's score of
        the most alarming such pair; the appearance model's `prob` otherwise."""
        appearance = float(prob[self.fight_index])
        inside = [tr for tr in self.tracks.tracks if inside_box(box_centre(tr.box), region)]
        window = window_tracks(inside, t)
        trusted = [seq for seq in window if reliable(seq, self.min_height_px, self.min_coverage)]
        pairs = near_pairs(trusted)
        score = max((self.model.score(window_features(pair)) for pair in pairs), default=None)
        if score is None or len(trusted) < self.min_people:
            return prob, Signal("appearance", appearance, score, len(trusted))
        signal = Signal("pose", appearance, score, len(trusted))
        self.pose_windows += 1
        return fused(prob, self.fight_index, combine(self.rule, appearance, score)), signal
