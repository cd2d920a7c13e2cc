"""The event state machine: every transition, with time passed in."""

from __future__ import annotations

import math
import re
import uuid

import numpy as np
import pytest

from har_daemon.runtime.events import ActivityTracker, TrackerConfig, Transition

CLASSES = ["fight", "walk", "run", "idle"]


def scores(**kw: float) -> dict[str, float]:
    out = dict.fromkeys(CLASSES, 0.0)
    out.update(kw)
    return out


def kinds(transitions: list[Transition]) -> list[tuple[str, str]]:
    return [(t.kind, t.activity) for t in transitions]


def tracker(**cfg) -> ActivityTracker:
    return ActivityTracker(TrackerConfig(**cfg), classes=CLASSES, camera="cam1")


def test_start_needs_min_windows_consecutive_windows() -> None:
    tr = tracker(min_windows=3)
    assert tr.step(scores(fight=0.7), 0.0) == []
    assert tr.step(scores(fight=0.8), 1.0) == []
    assert tr.state.activity is None
    [start] = tr.step(scores(fight=0.9), 2.0)
    assert (start.kind, start.activity, start.camera) == ("start", "fight", "cam1")
    assert start.confidence == pytest.approx(0.9)
    assert start.peak_confidence == pytest.approx(0.9)
    assert start.started_at == 2.0 and start.at == 2.0
    assert start.ended_at is None and start.duration_s == 0.0 and start.reason is None
    assert uuid.UUID(start.occurrence_id).version == 4
    state = tr.state
    assert (state.activity, state.since, state.alerting) == ("fight", 2.0, True)
    assert state.occurrence_id == start.occurrence_id


@pytest.mark.parametrize(
    "dip",
    [scores(fight=0.55), scores(walk=0.7, fight=0.2), scores(fight=0.61, walk=0.62)],
    ids=["below-enter", "other-top-class", "not-argmax"],
)
def test_a_dip_before_min_windows_restarts_the_count(dip: dict[str, float]) -> None:
    tr = tracker(min_windows=3)
    assert tr.step(scores(fight=0.7), 0.0) == []
    assert tr.step(scores(fight=0.7), 1.0) == []
    assert tr.step(dip, 2.0) == []
    assert tr.step(scores(fight=0.7), 3.0) == []
    assert tr.step(scores(fight=0.7), 4.0) == []
    assert kinds(tr.step(scores(fight=0.7), 5.0)) == [("start", "fight")]


def test_min_windows_one_starts_at_once() -> None:
    tr = tracker(min_windows=1)
    assert kinds(tr.step(scores(run=0.65), 0.0)) == [("start", "run")]


def test_hysteresis_keeps_it_active_then_it_ends_below_exit() -> None:
    tr = tracker(enter_threshold=0.6, exit_threshold=0.4, update_interval_s=100)
    tr.step(scores(fight=0.9), 0.0)
    [start] = tr.step(scores(fight=0.95), 1.0)
    for t, s in [(2.0, 0.59), (3.0, 0.45), (4.0, 0.4)]:  # between exit and enter, and == exit
        assert tr.step(scores(fight=s, walk=0.5), t) == []
        assert tr.state.activity == "fight"
        assert tr.state.confidence == pytest.approx(s)
    [end] = tr.step(scores(fight=0.39, walk=0.55), 5.5)
    assert (end.kind, end.activity, end.reason) == ("end", "fight", "below_exit")
    assert end.occurrence_id == start.occurrence_id
    assert end.started_at == 1.0 and end.ended_at == 5.5 and end.at == 5.5
    assert end.duration_s == pytest.approx(4.5)
    assert end.confidence == pytest.approx(0.39)
    assert end.peak_confidence == pytest.approx(0.95)
    state = tr.state
    assert (state.activity, state.confidence, state.since, state.occurrence_id) == (
        None,
        0.0,
        5.5,
        None,
    )


def test_takeover_by_another_alerting_activity_ends_then_starts() -> None:
    tr = tracker(enter_threshold=0.5, exit_threshold=0.2, min_windows=2)
    tr.step(scores(fight=0.7), 0.0)
    [start_fight] = tr.step(scores(fight=0.7), 1.0)
    # run becomes the top class while fight stays above exit: not yet min_windows
    assert tr.step(scores(run=0.6, fight=0.3), 2.0) == []
    assert tr.state.activity == "fight"
    out = tr.step(scores(run=0.65, fight=0.3), 3.0)
    assert kinds(out) == [("end", "fight"), ("start", "run")]
    end, start_run = out
    assert end.reason == "takeover" and end.occurrence_id == start_fight.occurrence_id
    assert end.ended_at == 3.0 and start_run.started_at == 3.0
    assert start_run.occurrence_id != start_fight.occurrence_id
    assert start_run.confidence == pytest.approx(0.65)
    assert tr.state.activity == "run"


def test_updates_are_throttled_to_the_interval() -> None:
    tr = tracker(update_interval_s=10.0)
    tr.step(scores(fight=0.7), 0.0)
    [start] = tr.step(scores(fight=0.7), 1.0)
    updates = []
    for i in range(2, 32):
        conf = 0.6 + (i % 5) / 20  # varies between 0.6 and 0.8
        for t in tr.step(scores(fight=conf), float(i)):
            updates.append((t, conf))
    assert [t.at for t, _ in updates] == [11.0, 21.0, 31.0]
    for t, conf in updates:
        assert t.kind == "update" and t.occurrence_id == start.occurrence_id
        assert t.confidence == pytest.approx(conf)
        assert t.peak_confidence == pytest.approx(0.8)
        assert t.duration_s == pytest.approx(t.at - 1.0)
        assert t.ended_at is None


def test_irregular_windows_never_update_more_often_than_the_interval() -> None:
    tr = tracker(update_interval_s=5.0, min_windows=1)
    tr.step(scores(fight=0.9), 0.0)
    ats = [
        t.at
        for now in (3.0, 4.9, 5.0, 7.0, 9.9, 10.1, 16.0)
        for t in tr.step(scores(fight=0.9), now)
    ]
    assert ats == [5.0, 10.1, 16.0]


def test_update_interval_zero_updates_every_window() -> None:
    tr = tracker(update_interval_s=0.0, min_windows=1)
    assert kinds(tr.step(scores(fight=0.9), 0.0)) == [("start", "fight")]
    assert kinds(tr.step(scores(fight=0.9), 0.5)) == [("update", "fight")]
    assert kinds(tr.step(scores(fight=0.9), 1.0)) == [("update", "fight")]


def test_non_alerting_activity_shows_in_state_but_emits_nothing() -> None:
    tr = tracker(alert_activities={"fight"})
    assert tr.step(scores(walk=0.8), 0.0) == []
    assert tr.step(scores(walk=0.8), 1.0) == []
    state = tr.state
    assert (state.activity, state.alerting, state.since) == ("walk", False, 1.0)
    assert state.confidence == pytest.approx(0.8)
    assert tr.step(scores(walk=0.8), 20.0) == []  # no updates either
    # another non-alerting activity replaces it silently
    tr.step(scores(run=0.9), 21.0)
    assert tr.step(scores(run=0.9), 22.0) == []
    assert tr.state.activity == "run"
    # an alerting one takes over: a start, and no end for the silent one
    tr.step(scores(fight=0.9), 23.0)
    assert kinds(tr.step(scores(fight=0.9), 24.0)) == [("start", "fight")]
    # a silent activity falling below exit ends silently
    tr2 = tracker(alert_activities={"fight"})
    tr2.step(scores(walk=0.8), 0.0)
    tr2.step(scores(walk=0.8), 1.0)
    assert tr2.step(scores(walk=0.1), 2.0) == []
    assert tr2.state.activity is None


def test_non_alerting_activity_cannot_take_over_an_alerting_one() -> None:
    tr = tracker(alert_activities={"fight"}, enter_threshold=0.5, exit_threshold=0.2)
    tr.step(scores(fight=0.9), 0.0)
    tr.step(scores(fight=0.9), 1.0)
    for t in (2.0, 3.0, 4.0):
        assert tr.step(scores(walk=0.6, fight=0.3), t) == []
        assert tr.state.activity == "fight"
    # fight falls below exit: it ends, and walk (already confirmed) is shown at once
    [end] = tr.step(scores(walk=0.6, fight=0.1), 5.0)
    assert (end.kind, end.reason) == ("end", "below_exit")
    assert (tr.state.activity, tr.state.alerting) == ("walk", False)


def test_ignored_class_never_becomes_active_and_blocks_starts() -> None:
    tr = tracker(ignore_activities={"idle"}, min_windows=1)
    assert tr.step(scores(idle=0.95), 0.0) == []
    assert tr.state.activity is None
    assert tr.step(scores(idle=0.5, fight=0.45), 1.0) == []
    assert kinds(tr.step(scores(idle=0.3, fight=0.7), 2.0)) == [("start", "fight")]


def test_finish_ends_the_open_activity() -> None:
    tr = tracker()
    assert tr.finish(0.0) == []  # nothing open
    tr.step(scores(fight=0.8), 1.0)
    [start] = tr.step(scores(fight=0.8), 2.0)
    [end] = tr.finish(7.0)
    assert (end.kind, end.reason, end.ended_at, end.duration_s) == ("end", "finish", 7.0, 5.0)
    assert end.occurrence_id == start.occurrence_id
    assert tr.state.activity is None and tr.state.since == 7.0
    assert tr.finish(8.0) == []
    # the start count restarts after finish
    assert tr.step(scores(fight=0.8), 9.0) == []


def test_each_occurrence_gets_a_new_id_and_keeps_it() -> None:
    tr = tracker(update_interval_s=1.0)
    ids: list[list[str]] = []
    now = 0.0
    for _ in range(2):
        occ: list[Transition] = []
        for s in (0.8, 0.8, 0.8, 0.8, 0.1):
            now += 1.0
            occ += tr.step(scores(fight=s), now)
        assert [t.kind for t in occ] == ["start", "update", "update", "end"]
        ids.append([t.occurrence_id for t in occ])
    assert len(set(ids[0])) == 1 and len(set(ids[1])) == 1
    assert ids[0][0] != ids[1][0]


def test_vector_scores_in_class_order() -> None:
    tr = tracker(min_windows=1)
    assert kinds(tr.step(np.array([0.1, 0.1, 0.7, 0.1]), 0.0)) == [("start", "run")]
    with pytest.raises(ValueError, match="4 classes"):
        tr.step([0.5, 0.5], 1.0)
    with pytest.raises(ValueError, match="no class names"):
        ActivityTracker().step([0.5, 0.5], 0.0)


def test_nan_score_counts_as_zero() -> None:
    tr = tracker(min_windows=1)
    tr.step(scores(fight=0.9), 0.0)
    [end] = tr.step(scores(fight=math.nan), 1.0)
    assert end.kind == "end" and end.confidence == 0.0


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="lower than enter_threshold"):
        TrackerConfig(enter_threshold=0.5, exit_threshold=0.5)
    with pytest.raises(ValueError, match="min_windows"):
        TrackerConfig(min_windows=0)
    with pytest.raises(ValueError, match="unknown activity 'fihgt'"):
        ActivityTracker(TrackerConfig(alert_activities={"fihgt"}), classes=CLASSES)
    cfg = TrackerConfig(alert_activities=["fight"], ignore_activities=["idle"])
    assert cfg.alert_activities == frozenset({"fight"})
    assert cfg.alerts("fight") and not cfg.alerts("walk") and not cfg.alerts("idle")
    assert TrackerConfig().alerts("walk")


def test_transition_as_dict_round_trips() -> None:
    tr = tracker(min_windows=1)
    [start] = tr.step(scores(fight=0.9), 0.0)
    d = start.as_dict()
    assert d["kind"] == "start" and d["activity"] == "fight" and d["camera"] == "cam1"
    assert Transition(**d) == start
    assert tr.state.as_dict()["activity"] == "fight"


def test_config_bounds_and_refusals() -> None:
    """The thresholds' edges: enter may be 1, exit may be 0; each refusal names its value."""
    assert TrackerConfig(enter_threshold=1.0, exit_threshold=0.0).exit_threshold == 0.0
    for enter in (0.0, 1.5, -0.1):
        with pytest.raises(
            ValueError, match=rf"^enter_threshold must be in \(0, 1\], got {enter}$"
        ):
            TrackerConfig(enter_threshold=enter, exit_threshold=0.0)
    with pytest.raises(ValueError, match=r"^update_interval_s must be >= 0, got -1.0$"):
        TrackerConfig(update_interval_s=-1.0)
    cfg = TrackerConfig(ignore_activities=["idle"])  # any iterable, stored frozen and hashable
    assert cfg.ignore_activities == frozenset({"idle"}) and hash(cfg) == hash(cfg)


def test_unknown_activities_are_named_with_the_models_classes() -> None:
    known = "the model's classes are fight, walk, run, idle"
    one = f"alert_activities: unknown activity 'fihgt'; {known}"
    with pytest.raises(ValueError, match=f"^{re.escape(one)}$"):
        ActivityTracker(TrackerConfig(alert_activities={"fihgt"}), classes=CLASSES)
    two = f"ignore_activities: unknown activities 'a', 'b'; {known}"
    with pytest.raises(ValueError, match=f"^{re.escape(two)}$"):
        ActivityTracker(TrackerConfig(ignore_activities={"b", "a"}), classes=CLASSES)
    with pytest.raises(
        ValueError, match="^scores given as a vector, but the tracker has no class names$"
    ):
        ActivityTracker().step([0.5, 0.5], 0.0)


def test_a_score_exactly_at_enter_starts() -> None:
    tr = tracker(min_windows=1, enter_threshold=0.5, exit_threshold=0.2)
    assert kinds(tr.step(scores(fight=0.5), 0.0)) == [("start", "fight")]


def test_a_fresh_tracker_was_never_active() -> None:
    state = tracker().state
    assert (state.activity, state.confidence, state.since, state.alerting) == (
        None,
        0.0,
        None,
        False,
    )


def test_an_active_class_missing_from_the_scores_counts_as_zero() -> None:
    """Scores as a mapping may leave a class out: the active one then ends, below exit."""
    tr = ActivityTracker(TrackerConfig(min_windows=1))
    tr.step({"fight": 0.9, "walk": 0.1}, 0.0)
    [end] = tr.step({"walk": 0.1}, 1.0)
    assert (end.kind, end.reason, end.confidence, end.peak_confidence) == (
        "end", "below_exit", 0.0, pytest.approx(0.9),
    )  # fmt: skip
    assert tr.state.activity is None


def test_takeover_between_two_listed_alerting_activities() -> None:
    tr = tracker(alert_activities={"fight", "run"}, min_windows=1)
    tr.step(scores(fight=0.9), 0.0)
    assert kinds(tr.step(scores(run=0.9, fight=0.5), 1.0)) == [("end", "fight"), ("start", "run")]


def test_a_held_back_activity_starts_with_its_own_score_and_time() -> None:
    """A non-alerting activity confirmed while an alerting one held on starts, when that one
    ends below exit, with its score and the time of that window."""
    tr = tracker(alert_activities={"fight"}, enter_threshold=0.5, exit_threshold=0.2, min_windows=1)
    tr.step(scores(fight=0.9), 0.0)
    tr.step(scores(walk=0.6, fight=0.3), 1.0)
    tr.step(scores(walk=0.7, fight=0.1), 2.0)
    state = tr.state
    assert (state.activity, state.confidence, state.since) == ("walk", pytest.approx(0.7), 2.0)
