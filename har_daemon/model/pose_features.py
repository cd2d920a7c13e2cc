"""Per-person body features from one set of keypoints, normalised by the person's body height.

Computed once per sampled frame and person, and kept on the person's track (runtime.poses), so a
recogniser reads the last `RING` of them instead of recomputing a window. Pixels say nothing
across cameras: a fall is the same fall at 80 px and at 400 px, so every length here is in
body heights and every speed in body heights per second.

Body height: the shoulder-to-hip distance is about 0.3 of a standing adult's height (shoulders
at ~0.82, hip joints at ~0.52 of it) and it changes little with posture, so `torso / 0.3` is a
height estimate that still holds while a person sits or lies, unlike the box height. A track
keeps the last estimate made while the person was upright (`reference`): hips are measured
against where they were then.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from har_daemon.model.pose import KP, MIN_KEYPOINT_SCORE

RING = 20
"""Features kept per track: the recognisers' window (4 s at the pose stage's 0.2 s spacing)."""
TORSO_FRACTION = 0.3
"""Shoulder-to-hip distance as a fraction of standing body height."""
UPRIGHT_DEG = 30.0
"""Torso angle from vertical under which a person counts as upright (sets the reference)."""

HEIGHT_DECAY_PER_S = 0.1
"""How fast a track forgets its standing height (10 % a second): walking away shrinks a person
far slower than a fall does."""
TALL_SHARE = 0.85
"""Box height, as a share of the standing height, above which the hips' reference follows."""
TOP_COVERAGE = 0.5
"""Keypoints seen (share) for an upright, tall observation to set where the box's top stands:
a box that was never a well-seen standing person (a detector's false box) has no top to drop
from."""

EDGE_PX = 3.0
"""A box within this many pixels of the frame's top, left or right border is cut off by it.
Not the bottom: a person who falls towards a camera ends up lying along the bottom edge, and
counting that as cut off missed such falls (GMDCSA24)."""

SHOULDERS = (KP["left_shoulder"], KP["right_shoulder"])
HIPS = (KP["left_hip"], KP["right_hip"])


@dataclass(frozen=True)
class Observation:
    """What one frame says about one person, before any history: pixels and angles."""

    torso_deg: float
    """Angle of the hip-to-shoulder line from vertical, 0 upright, 90 horizontal; nan unseen."""
    hip_y: float
    """Image y of the hips' midpoint (pixels, down is positive); nan when no hip is seen."""
    height_px: float
    """Body height estimate in pixels: torso / TORSO_FRACTION, else the box height."""
    coverage: float
    """Share of the 17 keypoints seen (score >= MIN_KEYPOINT_SCORE)."""
    aspect: float
    """Box width / height: > 1 for most people lying across the view."""
    box_h: float
    at_edge: bool = False
    """The box touches the frame's edge: part of the person may be outside the picture."""
    box_top: float = math.nan
    """Image y of the box's top (pixels): where the head is, seen or not."""


@dataclass(frozen=True)
class Reference:
    """The person when last seen upright: where the hips were and how tall they stood."""

    hip_y: float
    height_px: float
    top_y: float = math.nan
    """The box's top while the person stood tall (pixels)."""


@dataclass(frozen=True)
class Features:
    """One sampled frame of one person, in body heights: what the recognisers read."""

    t: float
    torso_deg: float
    hip_drop: float
    """(hip y now - hip y when last upright) / standing height; 0 standing, ~0.3-0.5 lying."""
    hip_speed: float
    """Downward hip speed since the previous sample, standing heights per second."""
    coverage: float
    aspect: float
    height_ratio: float
    """Box height / standing height: ~1 standing, lower sitting or lying across the view."""
    height_px: float = 0.0
    """The standing height in pixels: how much detail the keypoints had to work with."""
    at_edge: bool = False
    top_drop: float = math.nan
    """(box top now - box top when last standing tall) / standing height: the head's drop,
    measured without keypoints (a lying person's are often poor); nan before a reference."""


def _midpoint(kp: np.ndarray, idx: tuple[int, int]) -> np.ndarray | None:
    seen = [kp[i, :2] for i in idx if kp[i, 2] >= MIN_KEYPOINT_SCORE]
    return np.mean(seen, axis=0) if seen else None


def coverage(keypoints: np.ndarray) -> float:
    """Share of the 17 keypoints seen (score >= MIN_KEYPOINT_SCORE)."""
    return float(np.mean(np.asarray(keypoints)[:, 2] >= MIN_KEYPOINT_SCORE))


def observe(
    keypoints: np.ndarray, box: np.ndarray, frame_hw: tuple[int, int] | None = None
) -> Observation:
    """The per-frame quantities of one person from (17, 3) `x, y, score` keypoints and its box
    (in a frame of `frame_hw`, when known, for `at_edge`)."""
    kp = np.asarray(keypoints, np.float32)
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    box_w, box_h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    shoulders, hips = _midpoint(kp, SHOULDERS), _midpoint(kp, HIPS)
    torso_deg, height = math.nan, box_h
    if shoulders is not None and hips is not None:
        dx, dy = float(shoulders[0] - hips[0]), float(hips[1] - shoulders[1])
        torso = math.hypot(dx, dy)
        if torso >= 1.0:
            torso_deg = math.degrees(math.atan2(abs(dx), dy))  # 0 up, 90 level, 180 upside down
            height = torso / TORSO_FRACTION
    return Observation(
        torso_deg=torso_deg,
        hip_y=float(hips[1]) if hips is not None else math.nan,
        height_px=height,
        coverage=coverage(kp),
        aspect=box_w / box_h,
        box_h=box_h,
        box_top=y1,
        at_edge=frame_hw is not None
        and (min(x1, y1) <= EDGE_PX or x2 >= frame_hw[1] - EDGE_PX),  # not the bottom: EDGE_PX
    )


def update_reference(ref: Reference | None, obs: Observation, dt: float = 0.0) -> Reference | None:
    """The reference after `obs` (`dt` seconds after the previous one). A track's first
    observation with hips sets it whatever the posture (someone first seen sitting or lying
    has hips that can still fall); from then on only upright observations move it.

    The standing height is the largest upright estimate seen, forgotten at `HEIGHT_DECAY_PER_S`
    (people walk away from the camera and shrink, slowly; a fall shrinks a box within a second).
    The hips' reference moves only while the person is upright *and* stands at least
    `TALL_SHARE` of that height, so it stays where it was while someone goes down; the box's
    top only then and when at least `TOP_COVERAGE` of the keypoints are seen.
    """
    if math.isnan(obs.hip_y):
        return ref
    height = max(obs.height_px, obs.box_h)  # a bent-forward or cut-off torso reads short
    upright = not math.isnan(obs.torso_deg) and obs.torso_deg < UPRIGHT_DEG
    if ref is None:  # first seen sitting or lying: hips are measured from there
        ref = Reference(obs.hip_y, height)
        if not upright:
            return ref
    if not upright:
        return ref
    standing = max(height, ref.height_px * math.exp(-HEIGHT_DECAY_PER_S * max(dt, 0.0)))
    if obs.box_h >= TALL_SHARE * standing:
        top = obs.box_top if obs.coverage >= TOP_COVERAGE else ref.top_y
        return Reference(obs.hip_y, standing, top)
    return Reference(ref.hip_y, standing, ref.top_y)


def features(
    t: float,
    obs: Observation,
    ref: Reference | None,
    prev: tuple[float, Observation] | None,
) -> Features:
    """Normalise one observation by the track's reference (its own estimate when there is
    none yet); `prev` is the previous sample's (t, observation), for the hip speed."""
    height = ref.height_px if ref is not None else max(obs.height_px, obs.box_h)
    drop = (obs.hip_y - ref.hip_y) / height if ref is not None else 0.0
    top_drop = (obs.box_top - ref.top_y) / height if ref is not None else math.nan
    speed = 0.0
    if prev is not None and t > prev[0] and not math.isnan(prev[1].hip_y):
        speed = (obs.hip_y - prev[1].hip_y) / (t - prev[0]) / height
    return Features(
        t=t,
        torso_deg=obs.torso_deg,
        hip_drop=drop,
        hip_speed=speed if not math.isnan(speed) else 0.0,
        coverage=obs.coverage,
        aspect=obs.aspect,
        height_ratio=obs.box_h / height,
        height_px=height,
        at_edge=obs.at_edge,
        top_drop=top_drop,
    )
