"""Falls from pose tracks: a transparent rule on the per-person features, and its event logic.

A fall, as pose sees it: the person ends up *down* — hips well below where they stood
(`hip_drop`, in standing heights) with the torso turned towards horizontal or the body much
shorter than standing — and got there *fast* (a peak downward hip speed, in standing heights
per second, shortly before), and *stays* down for `hold_s`. Lying down on a bed or sofa turns
the torso just as far, but slowly and with the hips staying at seat height; sitting drops the
hips but keeps the torso upright and the body tall. The thresholds are learned from data
(scripts/evaluate_falls.py) and shipped in models/fall/rule.json.

Pure: no I/O, no clock; the caller feeds one feature set per sampled frame per track, or None
for a sample in which the track was not seen (a fallen person is often missed by the detector:
the last state then holds until the track is forgotten).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Literal

from har_daemon.model.pose_features import Features


@dataclass(frozen=True)
class FallRule:
    torso_deg: float = 50.0
    """Down: the torso at least this far from vertical ..."""
    low_height: float = 0.55
    """... or the box below this share of the standing height ..."""
    hip_drop: float = 0.2
    """... and the hips at least this far (standing heights) below where they stood."""
    speed: float = 0.5
    """Fast: a downward hip speed of at least this (standing heights/s) ..."""
    fall_window_s: float = 1.6
    """... within this long before the person was first down ..."""
    speed_span_s: float = 0.4
    """... measured over at least this long."""
    hold_s: float = 0.8
    """Down this long after a fast way down: a fall."""
    up_s: float = 1.0
    """Not down for this long: the person got up, the event ends."""
    min_coverage: float = 0.5
    """Only a person with at least this share of keypoints seen can be down ..."""
    min_height_px: float = 0.0
    """... who stands at least this many pixels tall (a box cut by the frame's edge counts as
    short only by its torso angle)."""
    box_drop: float = math.inf
    """Down by the box alone when the detector loses the person right after it (`box_down`):
    its top at least this far (standing heights) below where it was while they stood tall,
    clear of the frame's edge ... (inf: never; GMDCSA24 actor 3 is lost lying)"""
    box_height: float = 0.5
    """... and the box under this share of the standing height."""
    box_speed: float = math.inf
    """Fast by the box: its top went down at least this fast (standing heights/s), measured
    over at least `speed_span_s` (the head drops about twice as far as the hips)."""
    lost_coverage: float = math.inf
    """A person lost right after a sample whose keypoints said down and fast, with at least
    this share of them seen (under `min_coverage`, which a person in view needs), is down from
    that sample (inf: never; GMDCSA24 `s3_fall_20`: 11 of 17 keypoints, then lost)."""
    look_s: float = 0.0
    """For this long after a person went down fast, one who is lost or poorly seen is looked
    at again with the picture turned by 90 degrees (runtime.lying; 0: never)."""


def box_down(f: Features, rule: FallRule) -> bool:
    """Down by the box alone (`FallRule.box_drop`): for the last sample of a person whom the
    detector then lost (lying people are often missed), whatever their keypoints said. Not
    for a person still in view: sitting, crouching or a false box also shorten the box and
    lower its top, and the keypoints judge them (tried: the box for every poorly seen person
    alerted on crouching and on a shopping-centre corridor)."""
    return (
        f.top_drop >= rule.box_drop  # False for nan (no reference yet)
        and f.height_ratio <= rule.box_height
        and not f.at_edge
        and f.height_px >= rule.min_height_px
    )


def lost_down(ring: list[Features], rule: FallRule) -> bool:
    """Whether a person the detector has just lost was down and fast at their last sample
    (`ring[-1]`): by the box (`box_down`, fast by the box's top only) or by keypoints seen a
    little too poorly to count while in view (`lost_coverage`)."""
    last = ring[-1]
    if box_down(last, rule) and fell_fast(ring, last.t, rule, by_box=True):
        return True
    return (
        last.coverage >= rule.lost_coverage
        and is_down(replace(last, coverage=1.0), rule)
        and fell_fast(ring, last.t, rule)
    )


def is_down(f: Features, rule: FallRule) -> bool:
    if math.isnan(f.hip_drop) or f.hip_drop < rule.hip_drop:
        return False
    if f.coverage < rule.min_coverage or f.height_px < rule.min_height_px:
        return False
    turned = not math.isnan(f.torso_deg) and f.torso_deg >= rule.torso_deg
    # a box cut by the frame's edge is short because part of the person is outside
    return turned or (f.height_ratio <= rule.low_height and not f.at_edge)


def _went_down(pts: list[tuple[float, float]], speed: float, span_s: float) -> bool:
    """Whether the (t, drop) points went down at `speed` or more over at least `span_s`."""
    return any(
        b[0] - a[0] >= span_s - 1e-6 and (b[1] - a[1]) / (b[0] - a[0]) >= speed
        for i, a in enumerate(pts)
        for b in pts[i + 1 :]
    )


def fell_fast(
    ring: Iterable[Features], t_down: float, rule: FallRule, by_box: bool = False
) -> bool:
    """A fast way down: within the `fall_window_s` before `t_down` (inclusive), the hips went
    down at `speed` or more, or the box's top at `box_speed` or more, measured over at least
    `speed_span_s` (one 0.2 s step is noisy: a keypoint that jumps reads as speed). `by_box`:
    the box's top only (a person lost right after: someone walking away from a high camera
    also lowers and shrinks their box, slowly, and is lost in the distance)."""
    window = [f for f in ring if t_down - rule.fall_window_s - 1e-6 <= f.t <= t_down + 1e-6]
    hips = [(f.t, f.hip_drop) for f in window if not math.isnan(f.hip_drop)]
    tops = [(f.t, f.top_drop) for f in window if not math.isnan(f.top_drop) and not f.at_edge]
    by_hips = not by_box and _went_down(hips, rule.speed, rule.speed_span_s)
    return by_hips or (
        math.isfinite(rule.box_speed) and _went_down(tops, rule.box_speed, rule.speed_span_s)
    )


Change = Literal["start", "update", "end"]


@dataclass
class FallState:
    """One track's fall state across samples."""

    down_since: float | None = None
    fast: bool = False
    open_since: float | None = None
    """When the open fall event started (None: no event open)."""
    last_down: float | None = None

    def step(
        self, t: float, ring: Iterable[Features], rule: FallRule, seen: bool = True
    ) -> Change | None:
        """Advance to sample time `t`; `ring` is the track's features (newest last). Returns
        the event change at this sample: "start" (down `hold_s` after a fast way down),
        "update" (still down), "end" (up again for `up_s`), or None."""
        ring = list(ring)
        # a person seen too poorly says nothing new: the last state holds, as when unseen
        now = ring[-1] if seen and ring else None
        if now is not None and now.coverage >= rule.min_coverage:
            down = is_down(now, rule)
        elif now is None and ring and self.down_since is None and lost_down(ring, rule):
            down = True  # lost right after the box went down fast: down since that sample
            self.down_since, self.fast = ring[-1].t, True
        else:
            down = self.down_since is not None
        if down:
            if self.down_since is None:
                self.down_since = t
                self.fast = fell_fast(ring, t, rule)
            self.last_down = t
        elif self.last_down is None or t - self.last_down >= rule.up_s:
            self.down_since, self.fast = None, False
        if self.open_since is not None:
            if self.down_since is None:
                self.open_since = None
                return "end"
            return "update"
        if down and self.fast and t - self.down_since >= rule.hold_s:  # type: ignore[operator]
            self.open_since = t
            return "start"
        return None


@dataclass
class FallEvents:
    """Fall states of all tracks of one camera; forgets the tracks that are gone."""

    rule: FallRule
    states: dict[int, FallState] = field(default_factory=dict)

    def step(
        self, t: float, tracks: Iterable[tuple[int, Iterable[Features], bool]]
    ) -> list[tuple[int, Change]]:
        """(track id, ring, seen this sample) for every live track -> the changes."""
        out: list[tuple[int, Change]] = []
        live = set()
        for track_id, ring, seen in tracks:
            live.add(track_id)
            change = self.states.setdefault(track_id, FallState()).step(t, ring, self.rule, seen)
            if change is not None:
                out.append((track_id, change))
        for gone in set(self.states) - live:
            if self.states.pop(gone).open_since is not None:
                out.append((gone, "end"))
        return out
