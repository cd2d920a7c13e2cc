"""When the fall recogniser's `looks = "adaptive"` looks densely: a person may be going down.

Adaptive looks are the person stage's looks (~0.52 s apart with models/fight, the detector's
boxes, no call of its own) plus, only while a *watch* is open, looks every 0.2 s that follow
people from their keypoints (model.pose_track). A watch opens when a person's last two samples
show a way down (`way_down`), or the rule has them down or fallen (the caller knows), and stays
open `FallRule.fall_window_s + hold_s` after the last such sample: long enough for the rule to
see the fast way down and the hold. A person the detector then loses keeps it open too: their
ring's last pair still shows the way down until their track is forgotten.

The thresholds are deliberately looser than the rule's loosest learnable ones
(scripts/evaluate_falls.py's grid: hip drop 0.1, speed 0.2/s, torso 30 degrees, coverage 0.3),
so that rules learned later over samples recorded with adaptive looks see every way down the
dense looks could matter for, not only those the shipped rule already calls a fall.

Pure: no I/O, no clock; runtime.falls calls it at each look.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from har_daemon.model.pose_features import Features

WATCH_SPEED = 0.15
"""A way down: the hips going down at least this fast between the two samples (standing
heights per second; the rule's loosest `speed` is 0.2) ..."""
WATCH_DROP = 0.05
"""... to at least this far below standing (standing heights; the rule's loosest `hip_drop`
is 0.1), so that a standing person's jitter around 0 does not count ..."""
WATCH_TOP_SPEED = 0.5
"""... or the box's top going down at least this fast (standing heights per second; the
rule's loosest `box_speed` is 1.0: the head drops about twice as far as the hips, and the
box's top of a small or half-hidden person jitters), to at least `WATCH_DROP` below ..."""
WATCH_TORSO_DEG = 25.0
"""... or the torso turned at least this far from vertical (the rule's loosest `torso_deg` is
30) ..."""
WATCH_TURN_DEG_S = 30.0
"""... and turning towards horizontal at least this fast (degrees per second)."""
WATCH_COVERAGE = 0.25
"""Hips and torso count when the later sample has at least this share of keypoints seen (the
rule's loosest `min_coverage` is 0.3): a pose seen worse than that says nothing. The box's top
counts however poorly the pose was seen (the detector's box, or the box of a followed
person's keypoints)."""


def way_down(before: Features, after: Features) -> bool:
    """Whether a person went down between two of their samples (`after` the later): hips or
    box top dropping fast, or the torso turning towards horizontal."""
    dt = after.t - before.t
    if dt <= 0:
        return False
    posed = after.coverage >= WATCH_COVERAGE
    hips = (
        posed
        and after.hip_drop >= WATCH_DROP
        and (after.hip_drop - before.hip_drop) / dt >= WATCH_SPEED
    )
    top = (
        not (before.at_edge or after.at_edge)
        and after.top_drop >= WATCH_DROP
        and (after.top_drop - before.top_drop) / dt >= WATCH_TOP_SPEED
    )
    turned = (
        posed
        and after.torso_deg >= WATCH_TORSO_DEG
        and (after.torso_deg - before.torso_deg) / dt >= WATCH_TURN_DEG_S
    )
    return bool(hips or top or turned)  # every comparison with nan is False


def watch_until(ring: Sequence[Features], t: float, down: bool, window_s: float) -> float | None:
    """Until when one track keeps the dense looks going, judged at sample time `t`: `window_s`
    after its last sample when its last two show a way down (seen now, or lost right after),
    `window_s` after `t` while the rule has it down or fallen (`down`); None: no reason."""
    until = t + window_s if down else -math.inf
    if len(ring) >= 2 and way_down(ring[-2], ring[-1]):
        until = max(until, ring[-1].t + window_s)
    return until if until > t else None
