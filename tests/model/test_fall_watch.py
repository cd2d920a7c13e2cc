"""model.fall_watch: when adaptive looks turn dense. A way down between two samples by the hips,
the box's top or a turning torso, looser than the rule's loosest learnable thresholds (the box's
top by its own, faster, speed); jitter,
slow changes and poorly seen poses do not count; the watch lasts its window after the last
reason, and while the rule has the person down."""

from __future__ import annotations

import math

import pytest

from har_daemon.model.fall_watch import (
    WATCH_COVERAGE,
    WATCH_DROP,
    WATCH_SPEED,
    WATCH_TOP_SPEED,
    WATCH_TORSO_DEG,
    WATCH_TURN_DEG_S,
    watch_until,
    way_down,
)
from har_daemon.model.pose_features import Features

STEP = 0.5175  # the person stage's spacing with models/fight: what adaptive looks see


def _f(
    t: float,
    drop: float = 0.0,
    torso: float = 5.0,
    top: float = 0.0,
    cov: float = 0.9,
    at_edge: bool = False,
) -> Features:
    return Features(
        t=t, torso_deg=torso, hip_drop=drop, hip_speed=0.0, coverage=cov, aspect=0.4,
        height_ratio=1.0, height_px=200.0, at_edge=at_edge, top_drop=top,
    )  # fmt: skip


def test_the_watch_is_looser_than_the_rules_loosest_learnable_thresholds():
    # scripts/evaluate_falls.py's grid: hip drop >= 0.1, speed >= 0.2/s, torso >= 30, cov >= 0.3
    assert WATCH_SPEED < 0.2 and WATCH_DROP < 0.1
    assert WATCH_TOP_SPEED < 1.0  # the box route's loosest box_speed
    assert WATCH_TORSO_DEG < 30.0 and WATCH_COVERAGE < 0.3


@pytest.mark.parametrize(
    ("before", "after", "down"),
    [
        (_f(0.0), _f(STEP, drop=0.3), True),  # the hips dropped 0.3 heights in 0.52 s
        (_f(0.0), _f(STEP, top=0.4, drop=math.nan, cov=0.1), True),  # the box's top, pose poor
        (_f(0.0, torso=5.0), _f(STEP, torso=60.0), True),  # the torso turned
        (_f(0.0), _f(STEP, drop=0.04), False),  # jitter around standing
        (_f(0.0, drop=0.3), _f(STEP, drop=0.33), False),  # sitting, still
        (_f(0.0), _f(4.0, drop=0.3), False),  # down slowly (lying down on purpose)
        (_f(0.0), _f(STEP, drop=0.3, cov=0.2), False),  # hips of a pose seen too poorly
        (_f(0.0, torso=5.0), _f(STEP, torso=20.0), False),  # leaning, still upright
        (_f(0.0, torso=40.0), _f(STEP, torso=45.0), False),  # turned, not turning
        (_f(0.0, at_edge=True), _f(STEP, top=0.4), False),  # a box cut by the frame's edge
        (_f(0.0, drop=math.nan, top=math.nan, torso=math.nan), _f(STEP, drop=0.3), False),
        (_f(1.0), _f(1.0, drop=0.3), False),  # no time between them
    ],
)
def test_way_down(before: Features, after: Features, down: bool):
    assert way_down(before, after) is down


def test_just_above_and_below_the_speeds():
    dt = 0.2
    fast = WATCH_DROP + WATCH_SPEED * dt * 1.01
    assert way_down(_f(0.0, drop=WATCH_DROP), _f(dt, drop=fast + WATCH_DROP))
    assert not way_down(_f(0.0, drop=WATCH_DROP), _f(dt, drop=WATCH_DROP * 1.5))
    top = WATCH_DROP + WATCH_TOP_SPEED * dt * 1.01
    assert way_down(_f(0.0, top=WATCH_DROP), _f(dt, top=top + WATCH_DROP))
    # as fast as the hips may be is not enough for the box's top (it jitters)
    assert not way_down(_f(0.0, top=WATCH_DROP), _f(dt, top=WATCH_DROP * 2 + WATCH_SPEED * dt))
    turn = WATCH_TORSO_DEG + WATCH_TURN_DEG_S * dt * 1.01
    assert way_down(_f(0.0, torso=WATCH_TORSO_DEG), _f(dt, torso=turn))
    assert not way_down(_f(0.0, torso=WATCH_TORSO_DEG), _f(dt, torso=WATCH_TORSO_DEG + 1.0))


def test_the_watch_lasts_its_window_after_the_last_way_down_and_while_down():
    window = 2.4
    going = [_f(0.0), _f(STEP, drop=0.3)]
    assert watch_until(going, STEP, False, window) == pytest.approx(STEP + window)
    # lost right after going down: the ring ends there, the watch still runs from that sample
    assert watch_until(going, STEP + 1.0, False, window) == pytest.approx(STEP + window)
    assert watch_until(going, STEP + window, False, window) is None
    # down by the rule, however long ago they went down: the window runs from now
    still = [_f(0.0, drop=0.3), _f(STEP, drop=0.3)]
    assert watch_until(still, 10.0, True, window) == pytest.approx(10.0 + window)
    assert watch_until(still, 10.0, False, window) is None
    assert watch_until([_f(0.0, drop=0.3)], 0.0, False, window) is None  # one sample: no pair


@pytest.mark.parametrize(
    ("before", "after"),
    [
        # each route exactly at its thresholds, the others quiet: "at least" counts
        (_f(0.0), _f(1.0, drop=WATCH_SPEED)),  # hips: exactly WATCH_SPEED per second
        (_f(0.0), _f(0.25, drop=WATCH_DROP)),  # hips: exactly WATCH_DROP below standing
        (_f(0.0), _f(1.0, drop=0.3, cov=WATCH_COVERAGE)),  # exactly WATCH_COVERAGE seen
        (_f(0.0), _f(1.0, top=WATCH_TOP_SPEED)),  # top: exactly WATCH_TOP_SPEED
        (_f(0.0), _f(0.05, top=WATCH_DROP)),  # top: exactly WATCH_DROP below
        (_f(0.0, torso=0.0), _f(1.0, torso=WATCH_TURN_DEG_S)),  # exactly WATCH_TURN_DEG_S
        (_f(0.0, torso=5.0), _f(0.5, torso=WATCH_TORSO_DEG)),  # exactly WATCH_TORSO_DEG
    ],
)
def test_a_way_down_exactly_at_the_thresholds_counts(before: Features, after: Features):
    assert way_down(before, after)


def test_the_watch_is_judged_on_the_last_two_samples_of_a_longer_ring():
    window = 2.4
    ring = [_f(0.0), _f(STEP), _f(2 * STEP, drop=0.3)]  # went down between the last two
    assert watch_until(ring, 2 * STEP, False, window) == pytest.approx(2 * STEP + window)
    assert watch_until([*ring, _f(3 * STEP, drop=0.3)], 3 * STEP, False, window) is None
