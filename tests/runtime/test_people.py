"""runtime.people: when the detector looks, which regions a window gets, and region tracks."""

from __future__ import annotations

import numpy as np

from har_daemon.model.meta import PersonRegion
from har_daemon.runtime.people import MISSED_WINDOWS, PeopleStage, iou
from har_daemon.runtime.smoothing import Smoother

HW = (270, 480)


class FakeDetector:
    """Finds the people it is told to, and counts its calls."""

    def __init__(self) -> None:
        self.boxes = np.zeros((0, 5), np.float32)
        self.calls = 0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.boxes


def _stage(detector: FakeDetector) -> PeopleStage:
    return PeopleStage(detector, PersonRegion(detect_every=5), Smoother, span_s=2.0)


def _frame(value: int) -> np.ndarray:
    return np.full((*HW, 3), value, np.uint8)


def test_looks_every_detect_every_frames() -> None:
    det = FakeDetector()
    stage = _stage(det)
    assert stage.due(1)
    stage.look(_frame(10), 0.1, 1)
    assert not stage.due(5) and stage.due(6)


def test_a_still_empty_picture_is_not_looked_at_again() -> None:
    det = FakeDetector()
    stage = _stage(det)
    stage.look(_frame(10), 0.0, 1)
    stage.look(_frame(10), 0.5, 6)  # same picture, nobody found last time: skipped
    assert (det.calls, stage.stats.detections, stage.stats.detections_skipped) == (1, 1, 1)
    stage.look(_frame(200), 1.0, 11)  # the picture changed: looked at
    assert det.calls == 2
    det.boxes = np.array([[10, 10, 40, 100, 0.9]], np.float32)
    stage.look(_frame(90), 1.5, 16)
    stage.look(_frame(90), 2.0, 21)  # still, but somebody was there: looked at again
    assert det.calls == 4


def test_a_window_gets_the_people_seen_during_it() -> None:
    det = FakeDetector()
    stage = _stage(det)
    det.boxes = np.array([[10, 10, 40, 100, 0.9]], np.float32)
    stage.look(_frame(1), 0.0, 1)
    det.boxes = np.zeros((0, 5), np.float32)
    stage.look(_frame(2), 0.5, 6)
    assert len(stage.regions(0.0, 1.9, HW)) == 1  # one look found the person
    assert stage.regions(0.4, 2.0, HW) == []  # nobody in this span
    stage.reset()
    assert stage.regions(0.0, 2.0, HW) == [] and stage.due(1)


def test_region_tracks_follow_overlapping_regions_and_forget_lost_ones() -> None:
    stage = _stage(FakeDetector())
    a, b = (0, 0, 100, 100), (300, 0, 400, 100)
    first = stage.tracks_for([a, b])
    assert [t.id for t in first] == [1, 2]
    moved = (10, 5, 110, 105)
    assert iou(a, moved) > 0.5
    second = stage.tracks_for([moved])
    assert second[0] is first[0]  # the same people, the same smoothing
    assert second[0].region == moved
    for _ in range(MISSED_WINDOWS):
        stage.tracks_for([moved])
    again = stage.tracks_for([b])
    assert again[0].id == 3, "track 2 was forgotten after missing windows"


def test_the_interaction_gate_needs_two_people_close_together_on_one_look() -> None:
    det = FakeDetector()
    stage = PeopleStage(
        det, PersonRegion(detect_every=5), Smoother, span_s=2.0, interaction_gap=1.0
    )
    region = (0, 0, 270, 270)
    # One person, seen at two places over the window: never two people on one look.
    det.boxes = np.array([[10, 10, 40, 100, 0.9]], np.float32)
    stage.look(_frame(1), 0.0, 1)
    det.boxes = np.array([[60, 10, 90, 100, 0.9]], np.float32)
    stage.look(_frame(2), 0.5, 6)
    assert not stage.interacting(0.0, 1.9, region)
    assert stage.stats.gated_windows == 1
    # Two people 2 body heights apart: still alone; then 0.5 apart: interacting.
    det.boxes = np.array([[10, 10, 40, 100, 0.9], [220, 10, 250, 100, 0.9]], np.float32)
    stage.look(_frame(3), 1.0, 11)
    assert not stage.interacting(0.0, 1.9, region)
    det.boxes = np.array([[10, 10, 40, 100, 0.9], [85, 10, 115, 100, 0.9]], np.float32)
    stage.look(_frame(4), 1.5, 16)
    assert stage.interacting(0.0, 1.9, region)
    # ... but not in a region that holds only one of them, nor below the score floor.
    assert not stage.interacting(0.0, 1.9, (0, 0, 60, 60))
    det.boxes = np.array([[10, 10, 40, 100, 0.9], [85, 10, 115, 100, 0.1]], np.float32)
    stage.look(_frame(5), 2.5, 21)
    assert not stage.interacting(2.0, 3.0, region)
    # With the gate off every window passes.
    assert _stage(det).interacting(0.0, 1.0, region)
