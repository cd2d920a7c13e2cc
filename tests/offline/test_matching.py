"""har_daemon.offline.matching: alert events against ground-truth intervals, exact figures."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from har_daemon.offline.matching import (
    ActivityFigures,
    AlertEvent,
    TruthInterval,
    match_events,
    read_truth_csv,
    write_truth_csv,
)

T = TruthInterval
E = AlertEvent


def _counts(f: ActivityFigures) -> tuple[int, int, int, int, int, int]:
    """(intervals, detected, events, matched_events, false_alerts, duplicate_alerts)."""
    return (
        f.intervals,
        f.detected,
        f.events,
        f.matched_events,
        f.false_alerts,
        f.duplicate_alerts,
    )


def _tta(f: ActivityFigures) -> tuple[float | None, float | None, float | None]:
    return (f.tta_p50_s, f.tta_p95_s, f.tta_max_s)


# ---- the basic cases -------------------------------------------------------------------------


def test_no_events_detects_nothing_and_has_no_precision() -> None:
    fig = match_events([T(10, 20, "fight")], [], duration_s=100)
    o = fig.overall
    assert _counts(o) == (1, 0, 0, 0, 0, 0)
    assert o.recall == 0.0
    assert o.precision is None
    assert o.false_alerts_per_hour == 0.0
    assert (o.quiet_s, o.quiet_alert_s, o.quiet_alert_fraction) == (90.0, 0.0, 0.0)
    assert _tta(o) == (None, None, None)
    assert list(fig.per_activity) == ["fight"]


def test_no_truth_every_event_is_false() -> None:
    fig = match_events([], [E(10, 20, "fight")], duration_s=3600)
    o = fig.overall
    assert _counts(o) == (0, 0, 1, 0, 1, 0)
    assert o.recall is None
    assert o.precision == 0.0
    assert o.false_alerts_per_hour == 1.0
    assert (o.quiet_s, o.quiet_alert_s) == (3600.0, 10.0)
    assert o.quiet_alert_fraction == pytest.approx(10 / 3600)
    assert _tta(o) == (None, None, None)


def test_nothing_at_all() -> None:
    fig = match_events([], [], duration_s=60)
    assert _counts(fig.overall) == (0, 0, 0, 0, 0, 0)
    assert (fig.overall.recall, fig.overall.precision) == (None, None)
    assert fig.overall.quiet_alert_fraction == 0.0
    assert fig.per_activity == {}


def test_perfect_single_match() -> None:
    fig = match_events([T(10, 20, "fight")], [E(10, 20, "fight")], duration_s=100)
    o = fig.overall
    assert _counts(o) == (1, 1, 1, 1, 0, 0)
    assert (o.recall, o.precision, o.false_alerts_per_hour) == (1.0, 1.0, 0.0)
    assert (o.quiet_s, o.quiet_alert_s, o.quiet_alert_fraction) == (90.0, 0.0, 0.0)
    assert _tta(o) == (0.0, 0.0, 0.0)
    assert fig.per_activity["fight"] == o


def test_late_alert_time_to_alert() -> None:
    fig = match_events([T(10, 20, "fight")], [E(13.5, 25, "fight")], duration_s=100)
    o = fig.overall
    assert _counts(o) == (1, 1, 1, 1, 0, 0)
    assert _tta(o) == (3.5, 3.5, 3.5)
    # The alert lingers 5 s past the incident, in 90 s of quiet.
    assert (o.quiet_s, o.quiet_alert_s) == (90.0, 5.0)
    assert o.quiet_alert_fraction == pytest.approx(5 / 90)


def test_alert_opened_before_the_interval_counts_zero() -> None:
    fig = match_events([T(10, 20, "fight")], [E(5, 15, "fight")], duration_s=100)
    assert _tta(fig.overall) == (0.0, 0.0, 0.0)
    assert _counts(fig.overall) == (1, 1, 1, 1, 0, 0)
    assert fig.overall.quiet_alert_s == 5.0


def test_tta_percentiles_are_numpy_linear() -> None:
    truth = [T(0, 10, "fight"), T(20, 30, "fight"), T(40, 50, "fight"), T(60, 70, "fight")]
    events = [E(1, 5, "fight"), E(22, 25, "fight"), E(43, 45, "fight"), E(64, 65, "fight")]
    o = match_events(truth, events, duration_s=100).overall
    # TTAs 1, 2, 3, 4: p50 halfway between 2 and 3; p95 at rank 0.95 * 3 = 2.85 -> 3.85.
    assert o.tta_p50_s == pytest.approx(2.5)
    assert o.tta_p95_s == pytest.approx(3.85)
    assert o.tta_max_s == 4.0


def test_event_spanning_two_intervals_detects_both() -> None:
    truth = [T(10, 20, "fight"), T(30, 40, "fight")]
    fig = match_events(truth, [E(15, 35, "fight")], duration_s=100)
    o = fig.overall
    assert _counts(o) == (2, 2, 1, 1, 0, 0)
    assert (o.recall, o.precision) == (1.0, 1.0)
    # 5 s late on the first, already open when the second begins.
    assert _tta(o) == (2.5, pytest.approx(4.75), 5.0)
    # [20, 30) between the incidents is quiet time spent in alert.
    assert (o.quiet_s, o.quiet_alert_s) == (80.0, 10.0)
    assert o.quiet_alert_fraction == 0.125


def test_two_events_on_one_interval_are_true_but_one_is_a_duplicate() -> None:
    truth = [T(10, 30, "fight")]
    events = [E(20, 25, "fight"), E(12, 15, "fight")]  # out of order on purpose
    o = match_events(truth, events, duration_s=100).overall
    assert _counts(o) == (1, 1, 2, 2, 0, 1)
    assert (o.recall, o.precision) == (1.0, 1.0)
    assert _tta(o) == (2.0, 2.0, 2.0)  # the earliest event is the interval's first


def test_duplicate_counted_once_per_event_not_per_interval() -> None:
    # E1 spans both intervals and is first on both; E2 also spans both: one extra event.
    truth = [T(10, 20, "fight"), T(30, 40, "fight")]
    events = [E(12, 35, "fight"), E(15, 38, "fight")]
    o = match_events(truth, events, duration_s=100).overall
    assert _counts(o) == (2, 2, 2, 2, 0, 1)


def test_events_starting_together_first_in_list_is_first() -> None:
    truth = [T(10, 20, "fight"), T(30, 40, "fight")]
    # Both start at 12; the second in the list also reaches the second interval, where it is
    # the only one, so neither is a duplicate.
    events = [E(12, 14, "fight"), E(12, 32, "fight")]
    o = match_events(truth, events, duration_s=100).overall
    assert _counts(o) == (2, 2, 2, 2, 0, 0)
    assert _tta(o) == (1.0, pytest.approx(1.9), 2.0)


def test_event_still_open_at_the_end_of_the_video() -> None:
    fig = match_events([T(50, 60, "fight")], [E(55, None, "fight")], duration_s=60)
    o = fig.overall
    assert _counts(o) == (1, 1, 1, 1, 0, 0)
    assert _tta(o) == (5.0, 5.0, 5.0)
    assert (o.quiet_s, o.quiet_alert_s, o.quiet_alert_fraction) == (50.0, 0.0, 0.0)


def test_open_event_in_the_quiet_runs_to_the_end() -> None:
    o = match_events([T(0, 10, "fight")], [E(40, None, "fight")], duration_s=60).overall
    assert _counts(o) == (1, 0, 1, 0, 1, 0)
    assert (o.quiet_s, o.quiet_alert_s) == (50.0, 20.0)
    assert o.quiet_alert_fraction == 0.4


def test_event_end_past_the_video_is_clipped() -> None:
    o = match_events([], [E(50, 75, "fight")], duration_s=60).overall
    assert o.quiet_alert_s == 10.0


def test_false_alerts_per_hour_arithmetic() -> None:
    truth = [T(100, 200, "fight")]
    events = [
        E(150, 160, "fight"),  # true
        E(300, 310, "fight"),  # false
        E(500, 510, "fight"),  # false
        E(900, 901, "fight"),  # false
    ]
    o = match_events(truth, events, duration_s=1800).overall  # half an hour
    assert _counts(o) == (1, 1, 4, 1, 3, 0)
    assert o.false_alerts_per_hour == 6.0
    assert o.precision == 0.25


def test_quiet_fraction_with_overlapping_events() -> None:
    truth = [T(40, 60, "fight")]
    events = [
        E(10, 30, "fight"),  # false
        E(20, 45, "fight"),  # overlaps the first event and the incident
        E(55, 70, "fight"),
        E(90, 100, "fight"),  # false, runs to the end
    ]
    o = match_events(truth, events, duration_s=100).overall
    # Alert union [10, 45) + [55, 70) + [90, 100) = 60 s, of which 10 s inside [40, 60).
    assert (o.quiet_s, o.quiet_alert_s) == (80.0, 50.0)
    assert o.quiet_alert_fraction == 0.625
    assert _counts(o) == (1, 1, 4, 2, 2, 1)
    assert _tta(o) == (0.0, 0.0, 0.0)


def test_quiet_fraction_none_when_truth_covers_the_video() -> None:
    o = match_events([T(0, 10, "fight")], [E(2, 4, "fight")], duration_s=10).overall
    assert (o.quiet_s, o.quiet_alert_s, o.quiet_alert_fraction) == (0.0, 0.0, None)


def test_other_activity_events_do_not_match() -> None:
    fig = match_events([T(10, 20, "fight")], [E(10, 20, "fall")], duration_s=100)
    fight, fall = fig.per_activity["fight"], fig.per_activity["fall"]
    assert _counts(fight) == (1, 0, 0, 0, 0, 0)
    assert _counts(fall) == (0, 0, 1, 0, 1, 0)
    assert fall.quiet_alert_fraction == 0.1  # no fall happened: 10 s in alert out of 100
    o = fig.overall
    assert _counts(o) == (1, 0, 1, 0, 1, 0)
    assert (o.recall, o.precision) == (0.0, 0.0)
    assert o.false_alerts_per_hour == 36.0
    # Overall is activity-blind: the fall alert was shown during the fight, not in the quiet.
    assert (o.quiet_s, o.quiet_alert_s, o.quiet_alert_fraction) == (90.0, 0.0, 0.0)


def test_touching_intervals_do_not_match() -> None:
    truth = [T(10, 20, "fight")]
    o = match_events(truth, [E(0, 10, "fight"), E(20, 30, "fight")], duration_s=100).overall
    assert _counts(o) == (1, 0, 2, 0, 2, 0)


def test_zero_length_event_is_an_instant_in_closed_open_time() -> None:
    truth = [T(10, 20, "fight")]
    at_start = match_events(truth, [E(10, 10, "fight")], duration_s=100).overall
    assert _counts(at_start) == (1, 1, 1, 1, 0, 0)
    assert at_start.quiet_alert_s == 0.0
    at_end = match_events(truth, [E(20, 20, "fight")], duration_s=100).overall
    assert _counts(at_end) == (1, 0, 1, 0, 1, 0)


def test_per_activity_split_and_pooled_overall() -> None:
    truth = [T(0, 10, "fight"), T(20, 30, "fight"), T(50, 55, "fall")]
    events = [
        E(2, 8, "fight"),  # detects the first fight 2 s late
        E(70, 80, "fight"),  # false
        E(48, 52, "fall"),  # detects the fall, open before it: 0 s
        E(53, 54, "fall"),  # duplicate on the fall
        E(90, 91, "fall"),  # false
    ]
    fig = match_events(truth, events, duration_s=360)
    assert list(fig.per_activity) == ["fall", "fight"]

    fight = fig.per_activity["fight"]
    assert _counts(fight) == (2, 1, 2, 1, 1, 0)
    assert (fight.recall, fight.precision) == (0.5, 0.5)
    assert fight.false_alerts_per_hour == 10.0
    assert _tta(fight) == (2.0, 2.0, 2.0)
    assert (fight.quiet_s, fight.quiet_alert_s) == (340.0, 10.0)

    fall = fig.per_activity["fall"]
    assert _counts(fall) == (1, 1, 3, 2, 1, 1)
    assert fall.recall == 1.0
    assert fall.precision == pytest.approx(2 / 3)
    assert fall.false_alerts_per_hour == 10.0
    assert _tta(fall) == (0.0, 0.0, 0.0)
    assert (fall.quiet_s, fall.quiet_alert_s) == (355.0, 3.0)

    o = fig.overall
    assert _counts(o) == (3, 2, 5, 3, 2, 1)
    assert o.recall == pytest.approx(2 / 3)
    assert o.precision == 0.6
    assert o.false_alerts_per_hour == 20.0
    assert _tta(o) == (1.0, pytest.approx(1.9), 2.0)
    # Truth union 25 s; alerts outside it: [48, 50) + [70, 80) + [90, 91) = 13 s.
    assert (o.quiet_s, o.quiet_alert_s) == (335.0, 13.0)
    assert o.quiet_alert_fraction == pytest.approx(13 / 335)


def test_overlapping_truth_intervals_of_one_activity_are_two_incidents() -> None:
    truth = [T(10, 30, "fight"), T(20, 40, "fight")]
    o = match_events(truth, [E(25, 26, "fight")], duration_s=100).overall
    assert _counts(o) == (2, 2, 1, 1, 0, 0)
    assert (o.quiet_s, o.quiet_alert_s) == (70.0, 0.0)
    assert _tta(o) == (10.0, pytest.approx(14.5), 15.0)


def test_as_dict_is_json_ready_and_rounded() -> None:
    truth = [T(0, 10, "fight"), T(20, 30, "fight"), T(40, 50, "fight")]
    events = [E(1 / 3, 5, "fight"), E(200, 201, "fight")]
    d = match_events(truth, events, duration_s=7000).as_dict()
    json.dumps(d)  # no numpy scalars, no NaN
    o = d["overall"]
    assert o["recall"] == 0.3333
    assert o["precision"] == 0.5
    assert o["tta_p50_s"] == 0.333
    assert o["false_alerts_per_hour"] == round(3600 / 7000, 3)
    assert o["quiet_alert_fraction"] == round(1 / 6970, 4)
    assert d["duration_s"] == 7000.0
    assert d["per_activity"]["fight"] == o
    empty = match_events([], [], duration_s=1).as_dict()["overall"]
    assert empty["recall"] is None and empty["tta_max_s"] is None


# ---- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: T(-1, 5, "fight"), "TruthInterval start_s must be >= 0"),
        (lambda: T(5, 2, "fight"), "TruthInterval end_s (2.0) must be greater than start_s"),
        (lambda: T(5, 5, "fight"), "zero-length"),
        (lambda: T(0, float("nan"), "fight"), "TruthInterval end_s must be finite"),
        (lambda: T(0, 1, ""), "activity must be a non-empty string"),
        (lambda: T("0", 1, "fight"), "TruthInterval start_s must be a number"),
        (lambda: E(-0.5, None, "fight"), "AlertEvent start_s must be >= 0"),
        (lambda: E(5, 4, "fight"), "AlertEvent end_s (4.0) is before start_s (5.0)"),
        (lambda: E(1, float("inf"), "fight"), "AlertEvent end_s must be finite"),
    ],
)
def test_invalid_items_are_rejected(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_truth_past_the_video_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"truth\[1\] \(fall 50.0-61.0 s\) ends after the video"):
        match_events([T(0, 1, "fight"), T(50, 61, "fall")], [], duration_s=60)


def test_event_starting_after_the_video_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"events\[0\] \(fight\) starts at 61.0 s, after"):
        match_events([], [E(61, None, "fight")], duration_s=60)


@pytest.mark.parametrize("duration", [0, -5, float("nan"), float("inf")])
def test_bad_duration_is_rejected(duration: float) -> None:
    with pytest.raises(ValueError, match="duration_s must be finite and > 0"):
        match_events([], [], duration_s=duration)


def test_wrong_item_types_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"truth\[0\] is not a TruthInterval"):
        match_events([(0, 1, "fight")], [], duration_s=10)  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"events\[0\] is not an AlertEvent"):
        match_events([], [T(0, 1, "fight")], duration_s=10)  # type: ignore[list-item]


# ---- truth CSV -------------------------------------------------------------------------------


def test_read_truth_csv() -> None:
    text = "start_s,end_s,activity\n1.5,4,fight\n\n10, 12.25 , fall\n"
    assert read_truth_csv(text) == [T(1.5, 4.0, "fight"), T(10.0, 12.25, "fall")]


def test_read_truth_csv_header_only_is_no_intervals() -> None:
    assert read_truth_csv("start_s,end_s,activity\n") == []


def test_read_truth_csv_tolerates_bom_crlf_and_quotes() -> None:
    text = '\ufeffstart_s,end_s,activity\r\n0,1,"fight, armed"\r\n'
    assert read_truth_csv(text) == [T(0.0, 1.0, "fight, armed")]


def test_write_then_read_round_trips() -> None:
    intervals = [T(0.1, 0.30000000000000004, "fight"), T(2, 3, "fall, backwards")]
    text = write_truth_csv(intervals)
    assert text.splitlines()[0] == "start_s,end_s,activity"
    assert text.splitlines()[1] == "0.1,0.30000000000000004,fight"
    assert read_truth_csv(text) == intervals
    assert write_truth_csv([]) == "start_s,end_s,activity\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "truth CSV is empty: expected the header 'start_s,end_s,activity'$"),
        ("\n\n", "truth CSV is empty"),
        (
            "start,end,activity\n0,1,fight\n",
            "line 1: expected the header 'start_s,end_s,activity', got 'start,end,activity'",
        ),
        ("0,1,fight\n", "line 1: expected the header"),
        ("start_s,end_s,activity\n0,1\n", r"line 2: expected 3 fields .* got 2: '0,1'$"),
        ("start_s,end_s,activity\n0,1,fight,x\n", r"line 2: expected 3 fields .* got 4"),
        (
            "start_s,end_s,activity\n\n0,one,fight\n",
            "line 3: start_s and end_s must be numbers, got '0', 'one'$",
        ),
        ("start_s,end_s,activity\n0,1,fight\n5,2,fall\n", "line 3: TruthInterval end_s"),
        ("start_s,end_s,activity\n-1,2,fall\n", "line 2: TruthInterval start_s must be >= 0"),
        ("start_s,end_s,activity\nnan,2,fall\n", "line 2: TruthInterval start_s must be finite"),
        ("start_s,end_s,activity\n0,2, \n", "line 2: activity must be a non-empty string"),
        ('start_s,end_s,activity\n0,2,"fi"ght\n', "line 2: malformed CSV"),
    ],
)
def test_read_truth_csv_names_the_bad_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_truth_csv(text)


def test_event_starting_exactly_at_the_end_of_the_video_is_counted() -> None:
    """The last window of a video can open an alert at its very end: a zero-length event at
    `duration_s`, a false alert; a start past the end is an error."""
    o = match_events([T(0, 10, "fight")], [E(60, None, "fight")], duration_s=60).overall
    assert _counts(o) == (1, 0, 1, 0, 1, 0)
    assert o.quiet_alert_s == 0.0
    with pytest.raises(ValueError, match=r"events\[0\] \(fight\) starts at 60.5 s, after"):
        match_events([], [E(60.5, None, "fight")], duration_s=60)


def test_as_dict_names_and_rounds_every_figure() -> None:
    """The whole document, every key and every rounding (seconds and rates to 3 decimals,
    ratios to 4), as reports and `evaluate-stream --json` read it."""
    duration = 7000.12345
    truth = [T(0, 10, "fight"), T(20, 30, "fight"), T(40, 50, "fight")]
    events = [E(1 / 3, 5, "fight"), E(200, 201.23456, "fight")]
    quiet = duration - 30
    expected = {
        "intervals": 3,
        "detected": 1,
        "events": 2,
        "matched_events": 1,
        "false_alerts": 1,
        "duplicate_alerts": 0,
        "recall": 0.3333,
        "precision": 0.5,
        "false_alerts_per_hour": round(3600 / duration, 3),
        "quiet_s": 6970.123,
        "quiet_alert_s": 1.235,
        "quiet_alert_fraction": round(1.23456 / quiet, 4),
        "tta_p50_s": 0.333,
        "tta_p95_s": 0.333,
        "tta_max_s": 0.333,
    }
    d = match_events(truth, events, duration_s=duration).as_dict()
    assert d == {"duration_s": 7000.123, "overall": expected, "per_activity": {"fight": expected}}


def test_a_duration_that_is_no_number_is_named() -> None:
    with pytest.raises(ValueError, match=re.escape("duration_s must be a number, got '60'")):
        match_events([], [], duration_s="60")  # type: ignore[arg-type]


def test_quiet_fraction_of_a_quiet_time_under_a_second() -> None:
    o = match_events([T(0, 10, "fight")], [E(10.25, None, "fight")], duration_s=10.5).overall
    assert (o.quiet_s, o.quiet_alert_s, o.quiet_alert_fraction) == (0.5, 0.25, 0.5)
