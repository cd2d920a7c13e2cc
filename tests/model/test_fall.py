"""model.fall: the rule tells a fast fall that stays down from lying down slowly and from
sitting, and its events start, update and end as the person stays down and gets up."""

from __future__ import annotations

import math
from dataclasses import replace

from har_daemon.model.fall import FallEvents, FallRule, FallState, fell_fast, is_down
from har_daemon.model.pose_features import Features

RULE = FallRule(torso_deg=50, low_height=0.55, hip_drop=0.2, speed=0.5, hold_s=0.8, up_s=1.0)
STEP = 0.2


def f(t, torso=5.0, drop=0.0, speed=0.0, ratio=0.95):
    return Features(t=t, torso_deg=torso, hip_drop=drop, hip_speed=speed, coverage=0.9,
                    aspect=0.4, height_ratio=ratio, height_px=200.0)  # fmt: skip


def standing(t0, n):
    return [f(t0 + i * STEP) for i in range(n)]


def fall(t0):
    """Down within 0.6 s: hips 0.4 body heights lower, torso level."""
    return [f(t0, 30, 0.1), f(t0 + 0.2, 60, 0.25), f(t0 + 0.4, 85, 0.4)]


def lying(t0, n, torso=88.0, drop=0.4, ratio=0.35):
    return [f(t0 + i * STEP, torso, drop, 0.0, ratio) for i in range(n)]


def run(seq, rule=RULE, seen=None):
    state, ring, out = FallState(), [], []
    for i, feat in enumerate(seq):
        ring = ([*ring, feat])[-20:]
        out.append((round(feat.t, 1), state.step(feat.t, ring, rule, True if seen is None
                                                  else seen[i])))  # fmt: skip
    return [(t, ch) for t, ch in out if ch is not None]


def test_down_needs_dropped_hips_and_a_turned_or_short_body():
    assert is_down(f(0, torso=80, drop=0.3), RULE)
    assert is_down(f(0, torso=10, drop=0.3, ratio=0.4), RULE)  # fell towards the camera
    assert not is_down(f(0, torso=10, drop=0.3, ratio=0.7), RULE)  # sat down: upright, tall
    assert not is_down(f(0, torso=90, drop=0.05), RULE)  # lying on a bed: hips at seat height
    assert not is_down(f(0, torso=math.nan, drop=math.nan), RULE)


def test_only_a_person_seen_well_and_whole_can_be_down():
    down = f(0, torso=80, drop=0.3)
    assert not is_down(replace(down, coverage=0.2), RULE)
    short = f(0, torso=10, drop=0.3, ratio=0.4)
    assert is_down(short, RULE) and not is_down(replace(short, at_edge=True), RULE)
    assert is_down(replace(down, at_edge=True), RULE)  # the torso still says so
    assert not is_down(replace(down, height_px=40.0), replace(RULE, min_height_px=60.0))


def test_fast_means_hips_going_down_quickly_just_before_being_down():
    ring = standing(0.0, 5) + fall(1.0)
    assert fell_fast(ring, 1.4, RULE)  # 0.4 body heights in 0.6 s
    assert not fell_fast(ring, 1.4 + RULE.fall_window_s + 0.3, RULE)


def test_one_jumpy_step_is_not_speed():
    jump = [f(0.0), f(0.2, drop=0.15), f(0.4, drop=0.0), f(0.6)]
    assert not fell_fast(jump, 0.6, RULE)  # 0.75 body heights/s, but for one step only


def test_a_fall_that_stays_down_starts_updates_and_ends_when_the_person_gets_up():
    seq = standing(0.0, 5) + fall(1.0) + lying(1.6, 10) + standing(3.6, 10)
    changes = run(seq)
    assert changes[0] == (1.2 + RULE.hold_s, "start")  # down at 1.2 s, held 0.8 s
    assert all(ch == "update" for _, ch in changes[1:-1])
    assert changes[-1] == (4.4, "end")  # last down at 3.4 s, then up for up_s


def test_lying_down_slowly_is_not_a_fall():
    slow = [f(1.0 + i * STEP, 10 + 8 * i, 0.03 * i, 0.1, 0.95 - 0.06 * i) for i in range(11)]
    assert run(standing(0.0, 5) + slow + lying(3.2, 15)) == []


def test_a_fast_fall_that_gets_straight_up_is_no_event():
    assert run(standing(0.0, 5) + fall(1.0) + standing(1.6, 10)) == []


def test_unseen_after_falling_counts_as_still_down():
    seq = standing(0.0, 5) + fall(1.0) + lying(1.6, 6)
    seen = [True] * 8 + [False] * 6
    assert run(seq, seen=seen)[0] == (2.0, "start")


def test_events_of_a_track_that_is_gone_end():
    events = FallEvents(RULE)
    ring = []
    changes = []
    for feat in standing(0.0, 5) + fall(1.0) + lying(1.6, 5):
        ring = ([*ring, feat])[-20:]
        changes += events.step(feat.t, [(7, ring, True)])
    assert (7, "start") in changes
    assert events.step(3.0, []) == [(7, "end")]
