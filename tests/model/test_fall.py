"""model.fall: the rule tells a fast fall that stays down from lying down slowly and from
sitting, and its events start, update and end as the person stays down and gets up."""

from __future__ import annotations

import math
from dataclasses import replace

from har_daemon.model.fall import (
    FallEvents,
    FallRule,
    FallState,
    box_down,
    fell_fast,
    is_down,
    lost_down,
)
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


BOX_RULE = replace(RULE, box_drop=0.4, box_height=0.5, box_speed=1.0)


def boxed(t, top, ratio, coverage=0.9, edge=False, drop=0.0, torso=5.0):
    """A person whose keypoints say little (hips barely lower, torso upright) but whose box's
    top went `top` standing heights down and whose box is `ratio` of the standing height."""
    return replace(f(t, torso, drop, 0.0, ratio), top_drop=top, coverage=coverage, at_edge=edge)


def lost_after(last: list[Features], t_end: float):
    """Step a state through `last` (seen), then unseen samples until `t_end` (the ring keeps
    the last seen sample, as a track's does)."""
    state, ring, out = FallState(), [], []
    for feat in last:
        ring = [*ring, feat][-20:]
        out.append((round(feat.t, 1), state.step(feat.t, ring, BOX_RULE, True)))
    k = 1
    while (t := last[-1].t + k * STEP) < t_end - 1e-6:
        out.append((round(t, 1), state.step(t, ring, BOX_RULE, False)))
        k += 1
    return [(t, ch) for t, ch in out if ch is not None]


def test_a_person_lost_right_after_the_box_went_down_fast_has_fallen():
    way_down = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.05, 0.9), boxed(0.4, 0.5, 0.45)]
    # down since the last seen sample (0.4), started hold_s later though never seen again
    assert lost_after(way_down, 2.0)[0] == (1.2, "start")


def test_the_lost_route_needs_a_low_short_box_a_fast_top_and_no_frame_edge():
    assert lost_after([boxed(0.0, 0.0, 0.95), boxed(0.2, 0.05, 0.9)], 2.0) == []  # upright
    slow = [boxed(i * STEP, 0.5 * i / 10, 0.95 - 0.05 * i) for i in range(11)]
    assert slow[-1].top_drop >= 0.5 and slow[-1].height_ratio <= 0.5
    assert lost_after(slow, 4.0) == []  # went down at 0.25/s: walked away, sat, lay down
    short_but_high = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.3, 0.45)]
    assert lost_after(short_but_high, 2.0) == []  # top not low enough
    edge = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.05, 0.9), boxed(0.4, 0.5, 0.45, edge=True)]
    assert lost_after(edge, 2.0) == []  # a box cut by the frame says nothing of the top
    off = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.05, 0.9), boxed(0.4, 0.5, 0.45)]
    state, ring = FallState(), []
    for feat in off:
        ring = [*ring, feat]
        state.step(feat.t, ring, RULE, True)  # RULE: box_drop inf, the route is off
    assert all(state.step(0.4 + i * STEP, ring, RULE, False) is None for i in range(1, 8))


def test_a_person_still_in_view_is_judged_by_keypoints_not_the_box():
    crouched = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.05, 0.9)] + [
        boxed(0.4 + i * STEP, 0.55, 0.45) for i in range(10)
    ]  # box low and short, but seen: hips and torso say crouching, not down
    assert run(crouched, rule=BOX_RULE) == []


def test_fast_by_the_box_top_alone_counts_only_with_box_speed():
    ring = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.1, 0.8), boxed(0.4, 0.45, 0.5)]
    assert fell_fast(ring, 0.4, BOX_RULE)  # top 1.75 standing heights/s
    assert not fell_fast(ring, 0.4, RULE)  # hips did not move; box_speed inf
    assert not fell_fast(ring, 0.4, replace(BOX_RULE, box_speed=2.0))


def test_a_person_lost_after_keypoints_said_down_counts_when_seen_almost_well_enough():
    rule = replace(RULE, min_coverage=0.65, lost_coverage=0.5)
    way_down = standing(0.0, 5) + fall(1.0)
    for i in (-2, -1):  # down, but 11 of 17 keypoints: 0.647 < 0.65
        way_down[i] = replace(way_down[i], coverage=11 / 17)
    state, ring = FallState(), []
    for feat in way_down:
        ring = [*ring, feat]
        assert state.step(feat.t, ring, rule, True) is None  # in view: too poorly seen
    unseen = [state.step(1.4 + k * STEP, ring, rule, False) for k in range(1, 7)]
    assert "start" in unseen  # lost right after: down since 1.4 s
    for off in (replace(rule, lost_coverage=math.inf), replace(rule, lost_coverage=0.7)):
        state, ring = FallState(), []
        for feat in way_down:
            ring = [*ring, feat]
            state.step(feat.t, ring, off, True)
        assert all(state.step(1.4 + k * STEP, ring, off, False) is None for k in range(1, 7))


def test_down_counts_at_each_threshold():
    at = replace(f(0, torso=RULE.torso_deg, drop=RULE.hip_drop), coverage=RULE.min_coverage)
    assert is_down(at, RULE)  # torso, hips and coverage each exactly at the rule's value
    short = f(0, torso=10, drop=0.3, ratio=RULE.low_height)
    assert is_down(short, RULE)
    tall_enough = replace(RULE, min_height_px=200.0)  # f stands 200 px tall
    assert is_down(f(0, torso=80, drop=0.3), tall_enough)


def test_box_down_needs_every_one_of_its_conditions():
    down = boxed(0.4, 0.5, 0.45)
    assert box_down(down, BOX_RULE)
    assert not box_down(replace(down, top_drop=0.3), BOX_RULE)  # short, but the top is high
    assert not box_down(replace(down, height_ratio=0.6), BOX_RULE)  # top low, box tall
    assert not box_down(replace(down, at_edge=True), BOX_RULE)
    assert not box_down(down, replace(BOX_RULE, min_height_px=250.0))  # stood too small
    at = boxed(0.4, BOX_RULE.box_drop, BOX_RULE.box_height)  # exactly at both thresholds
    assert box_down(at, replace(BOX_RULE, min_height_px=200.0))


def test_a_lost_person_whose_box_went_down_slowly_is_not_down_by_fast_hips():
    # the hips dropped fast at the end, the box's top slowly all along (0.5/s): by the box,
    # only the top's speed counts
    tops, hips = (0.0, 0.1, 0.2, 0.3, 0.4), (0.0, 0.0, 0.0, 0.1, 0.4)
    ring = [boxed(i * STEP, top, 0.45 if i == 4 else 0.9, drop=hip)
            for i, (top, hip) in enumerate(zip(tops, hips, strict=True))]  # fmt: skip
    assert box_down(ring[-1], BOX_RULE) and fell_fast(ring, 0.8, BOX_RULE)  # by the hips
    assert not fell_fast(ring, 0.8, BOX_RULE, by_box=True)
    assert not lost_down(ring, BOX_RULE)


def test_lost_coverage_counts_at_its_value():
    ring = standing(0.0, 5) + fall(1.0)
    ring[-1] = replace(ring[-1], coverage=0.5)
    assert lost_down(ring, replace(RULE, min_coverage=0.65, lost_coverage=0.5))
    assert not lost_down(ring, replace(RULE, min_coverage=0.65, lost_coverage=0.55))


def test_speed_counts_at_its_value_and_over_one_step_as_long_as_speed_span_s():
    at = [f(0.0), f(0.5, drop=0.25)]  # 0.5 standing heights/s over 0.5 s: two looks only
    assert fell_fast(at, 0.5, RULE)
    assert not fell_fast([f(0.0), f(0.5, drop=0.24)], 0.5, RULE)


def test_one_jumpy_step_late_in_a_clip_is_not_speed_either():
    jump = [f(10.0), f(10.2, drop=0.15), f(10.4, drop=0.0), f(10.6)]
    assert not fell_fast(jump, 10.6, RULE)


def test_the_fall_window_includes_its_start_and_ends_at_t_down():
    way_down = [f(0.0), f(0.5, drop=0.4)]
    assert fell_fast(way_down, RULE.fall_window_s, RULE)  # starts exactly fall_window_s before
    assert not fell_fast(way_down, 0.0, RULE)  # the way down came after t_down


def test_a_box_top_cut_by_the_frame_says_nothing_about_its_speed():
    ring = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.1, 0.8), boxed(0.4, 0.45, 0.5)]
    assert fell_fast(ring, 0.4, BOX_RULE)  # the top: 0.45 standing heights in 0.4 s
    # the first sample cut by the frame's edge: what is left spans under speed_span_s
    assert not fell_fast([replace(ring[0], at_edge=True), *ring[1:]], 0.4, BOX_RULE)


def test_events_judge_an_unseen_track_as_unseen_and_a_state_is_seen_by_default():
    way_down = [boxed(0.0, 0.0, 0.95), boxed(0.2, 0.05, 0.9), boxed(0.4, 0.5, 0.45)]
    events, state, ring, changes = FallEvents(BOX_RULE), FallState(), [], []
    for feat in way_down:
        ring.append(feat)
        changes += events.step(feat.t, [(3, ring, True)])
        assert state.step(feat.t, ring, BOX_RULE) is None
    for k in range(1, 5):  # lost after the box went down fast (the ring keeps the last sample)
        changes += events.step(0.4 + k * STEP, [(3, ring, False)])
        assert state.step(0.4 + k * STEP, ring, BOX_RULE) is None  # seen: upright keypoints
    assert changes == [(3, "start")]  # down since 0.4 s, held 0.8 s: at 1.2 s
    assert state.down_since is None


def test_a_person_seen_with_exactly_min_coverage_is_judged():
    seq = standing(0.0, 5) + fall(1.0) + lying(1.6, 6)
    at = [replace(x, coverage=RULE.min_coverage) for x in seq]
    assert run(at) == run(seq) != []
    below = [replace(x, coverage=RULE.min_coverage - 0.01) for x in seq]
    assert run(below) == []  # too poorly seen all along: never judged
