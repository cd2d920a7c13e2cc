"""A fight's body-pose window features: what the bodies of nearby people do, in body heights.

Read from the poses cached on each person's track (runtime.poses keeps the last `RING` per
track), so a window costs no model call. Closeness alone is not a fight (people greet, talk and
walk together): the features say how fast limbs move *relative to the body that carries them*
(walking moves a wrist with the torso; a strike moves it away from it), how fast a torso turns,
how close two people are and how fast they close in, and whether a fast limb is near the other
person. Every length is in body heights (model.pose_features) and every speed in body heights
per second, so a fight at 80 px reads like one at 400 px.

Reliability is separate from the features: a person counts as reliable when tall enough in the
picture and with enough of their keypoints seen (the fusion decides with it which signal
speaks; below ~60 px or in an occluding melee keypoints are mostly guesses).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, pairwise

import numpy as np

from har_daemon.model.pose import KP, MIN_KEYPOINT_SCORE

WRISTS = (KP["left_wrist"], KP["right_wrist"])
ANKLES = (KP["left_ankle"], KP["right_ankle"])
TORSO = (KP["left_shoulder"], KP["right_shoulder"], KP["left_hip"], KP["right_hip"])
WINDOW_S = 3.0
"""Seconds of a person's cached poses one window reads: the fight set's clips are 2-3 s, so
the model learned windows this long (15 samples at the pose stage's 0.2 s)."""
MAX_STEP_S = 0.6
"""Longest gap between two samples of a person that still gives a speed (3 looks at 0.2 s)."""
NEAR = 0.6
"""A limb within this many body heights of another person's nearest seen keypoint is near
them (an arm's reach is ~0.4 of a height; the keypoints are a few pixels off)."""
PAIR_NEAR = 1.5
"""Two people whose torso centres never come closer than this many body heights during a
window are not a pair a fight could be between (an arm's reach plus a step)."""
FAR = 10.0
"""Pair distance written when a window has no pair (body heights: nobody near anybody)."""

FEATURE_NAMES: tuple[str, ...] = (
    "people_max",
    "people_mean",
    "wrist_speed_max",
    "wrist_speed_mean",
    "ankle_speed_max",
    "ankle_speed_mean",
    "body_speed_max",
    "torso_turn_max",
    "torso_turn_mean",
    "coverage_mean",
    "coverage_min",
    "pair_distance_min",
    "pair_distance_mean",
    "pair_closing_max",
    "pair_relative_speed",
    "limb_near_speed_max",
    "limb_near_share",
    "pairs_close",
)
"""The window vector, in order (the shipped model's `features` must equal it)."""


@dataclass(frozen=True)
class Pose:
    """One person at one sampled frame: keypoints and the standing height that scales them."""

    t: float
    keypoints: np.ndarray
    """(17, 3) `x, y, score` in frame pixels."""
    height_px: float
    """The track's standing-height estimate (model.pose_features.Features.height_px)."""
    box: tuple[float, float, float, float]

    @property
    def coverage(self) -> float:
        return float(np.mean(self.keypoints[:, 2] >= MIN_KEYPOINT_SCORE))


def _seen(p: Pose, idx: Sequence[int]) -> np.ndarray:
    kp = p.keypoints[list(idx)]
    return kp[kp[:, 2] >= MIN_KEYPOINT_SCORE, :2]


def centre(p: Pose) -> np.ndarray:
    """The torso's centre (mean of the seen shoulders and hips), else the box's."""
    torso = _seen(p, TORSO)
    if len(torso):
        return torso.mean(axis=0)
    x1, y1, x2, y2 = p.box
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2], np.float32)


def torso_deg(p: Pose) -> float:
    """Signed angle of the hip-to-shoulder line from vertical (nan without both)."""
    sh = _seen(p, TORSO[:2])
    hp = _seen(p, TORSO[2:])
    if not len(sh) or not len(hp):
        return math.nan
    dx, dy = (sh.mean(0) - hp.mean(0)).tolist()
    return math.degrees(math.atan2(dx, -dy))


def _height(a: Pose, b: Pose) -> float:
    return max((a.height_px + b.height_px) / 2, 1.0)


def limb_speeds(a: Pose, b: Pose, idx: Sequence[int]) -> list[tuple[float, np.ndarray]]:
    """(speed, position at b) of each limb seen at both samples, relative to the torso centre:
    body heights per second; walking carries a limb along with the body and reads slow."""
    dt = b.t - a.t
    if not 0 < dt <= MAX_STEP_S:
        return []
    ca, cb = centre(a), centre(b)
    out = []
    for i in idx:
        if a.keypoints[i, 2] >= MIN_KEYPOINT_SCORE and b.keypoints[i, 2] >= MIN_KEYPOINT_SCORE:
            rel = (b.keypoints[i, :2] - cb) - (a.keypoints[i, :2] - ca)
            out.append((float(np.hypot(*rel)) / dt / _height(a, b), b.keypoints[i, :2]))
    return out


@dataclass(frozen=True)
class _Person:
    wrist: list[float]
    ankle: list[float]
    body: list[float]
    turn: list[float]
    coverage: float


def _person(seq: Sequence[Pose]) -> _Person:
    wrist, ankle, body, turn = [], [], [], []
    for a, b in pairwise(seq):
        dt = b.t - a.t
        if not 0 < dt <= MAX_STEP_S:
            continue
        wrist += [s for s, _ in limb_speeds(a, b, WRISTS)]
        ankle += [s for s, _ in limb_speeds(a, b, ANKLES)]
        body.append(float(np.hypot(*(centre(b) - centre(a)))) / dt / _height(a, b))
        ta, tb = torso_deg(a), torso_deg(b)
        if not (math.isnan(ta) or math.isnan(tb)):
            d = abs((tb - ta + 180.0) % 360.0 - 180.0)
            turn.append(d / dt)
    return _Person(wrist, ankle, body, turn, float(np.mean([p.coverage for p in seq])))


@dataclass(frozen=True)
class _Pair:
    distance: list[float]
    closing: list[float]
    relative: list[float]
    near_speed: list[float]
    limb_steps: int


def _near(limb: np.ndarray, other: Pose, height: float) -> bool:
    seen = other.keypoints[other.keypoints[:, 2] >= MIN_KEYPOINT_SCORE, :2]
    pts = seen if len(seen) else centre(other)[None]
    return float(np.min(np.hypot(*(pts - limb).T))) <= NEAR * height


def _pair(s: Sequence[Pose], o: Sequence[Pose]) -> _Pair:
    by_t = {round(p.t, 3): p for p in o}
    common = [(p, by_t[round(p.t, 3)]) for p in s if round(p.t, 3) in by_t]
    distance = [float(np.hypot(*(centre(a) - centre(b)))) / _height(a, b) for a, b in common]
    closing, relative, near, steps = [], [], [], 0
    for (a0, b0), (a1, b1), d0, d1 in zip(common, common[1:], distance, distance[1:], strict=False):
        dt = a1.t - a0.t
        if not 0 < dt <= MAX_STEP_S:
            continue
        closing.append((d0 - d1) / dt)
        va = (centre(a1) - centre(a0)) / _height(a0, a1)
        vb = (centre(b1) - centre(b0)) / _height(b0, b1)
        relative.append(float(np.hypot(*(va - vb))) / dt)
        for me, other, first in ((a1, b1, a0), (b1, a1, b0)):
            for speed, pos in limb_speeds(first, me, WRISTS + ANKLES):
                steps += 1
                if _near(pos, other, me.height_px):
                    near.append(speed)
    return _Pair(distance, closing, relative, near, steps)


def _max(v: Sequence[float]) -> float:
    return float(max(v)) if len(v) else 0.0


def _mean(v: Sequence[float]) -> float:
    return float(np.mean(v)) if len(v) else 0.0


def window_features(tracks: Sequence[Sequence[Pose]]) -> np.ndarray:
    """The `FEATURE_NAMES` vector of one window: `tracks` are the people seen in it, each the
    time-ordered poses of one person track within the window."""
    tracks = [list(seq) for seq in tracks if len(seq)]
    times = sorted({round(p.t, 3) for seq in tracks for p in seq})
    counts = [sum(any(round(p.t, 3) == t for p in seq) for seq in tracks) for t in times]
    people = [_person(seq) for seq in tracks]
    moving = [p for p, seq in zip(people, tracks, strict=True) if len(seq) >= 2]
    pairs = [_pair(a, b) for a, b in combinations(tracks, 2)]
    pairs = [p for p in pairs if p.distance]
    closest = min(pairs, key=lambda p: min(p.distance), default=None)
    near_all = [s for p in pairs for s in p.near_speed]
    steps = sum(p.limb_steps for p in pairs)
    wrist = [_max(p.wrist) for p in moving]
    ankle = [_max(p.ankle) for p in moving]
    turn = [_max(p.turn) for p in moving]
    cover = [p.coverage for p in people]
    vec = [
        float(max(counts, default=0)),
        _mean(counts),
        _max(wrist),
        _mean([_mean(p.wrist) for p in moving]),
        _max(ankle),
        _mean([_mean(p.ankle) for p in moving]),
        _max([_max(p.body) for p in moving]),
        _max(turn),
        _mean([_mean(p.turn) for p in moving]),
        _mean(cover),
        float(min(cover, default=0.0)),
        min(closest.distance) if closest else FAR,
        _mean(closest.distance) if closest else FAR,
        _max(closest.closing) if closest else 0.0,
        _mean(closest.relative) if closest else 0.0,
        _max(near_all),
        len(near_all) / steps if steps else 0.0,
        float(sum(min(p.distance) <= 1.0 for p in pairs)),
    ]
    return np.asarray(vec, np.float32)


def reliable(seq: Sequence[Pose], min_height_px: float, min_coverage: float) -> bool:
    """A person tall enough and seen well enough for their pose to be believed (their mean
    standing height and mean keypoint coverage over the window)."""
    return (
        len(seq) > 0
        and float(np.mean([p.height_px for p in seq])) >= min_height_px
        and float(np.mean([p.coverage for p in seq])) >= min_coverage
    )


def reliable_people(
    tracks: Sequence[Sequence[Pose]], min_height_px: float, min_coverage: float
) -> int:
    """How many people of the window are `reliable`."""
    return sum(reliable(seq, min_height_px, min_coverage) for seq in tracks)


def near_pairs(tracks: Sequence[Sequence[Pose]]) -> list[tuple[Sequence[Pose], Sequence[Pose]]]:
    """The pairs of people who come within `PAIR_NEAR` body heights of each other on a common
    sample: the model scores pairs (a crowd's size says nothing about a fight in it)."""
    out = []
    for a, b in combinations([seq for seq in tracks if len(seq)], 2):
        pair = _pair(a, b)
        if pair.distance and min(pair.distance) <= PAIR_NEAR:
            out.append((a, b))
    return out
