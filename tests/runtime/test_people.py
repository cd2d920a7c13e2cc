"""runtime.people: when the detector looks, which regions a window gets, and region tracks."""

from __future__ import annotations

import numpy as np

from har_daemon.model.meta import PersonRegion
from har_daemon.runtime.people import MATCH_IOU, MISSED_WINDOWS, PeopleStage, iou
from har_daemon.runtime.smoothing import Smoother

HW = (270, 480)


class FakeDetector:
    """Finds the people it is told to, and counts its calls."""

    def __init__(self) -> None:
        self.boxes = np.zeros((0, 5), np.float32)
        self.calls = 0
        self.frames: list[np.ndarray] = []

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.frames.append(frame)
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


def test_a_slightly_changed_picture_still_counts_as_still() -> None:
    """The change is measured as a fraction of full scale: 2 grey levels (0.8 %) is still,
    4 (1.6 %) is a new picture."""
    det = FakeDetector()
    stage = _stage(det)
    stage.look(_frame(100), 0.0, 1)
    stage.look(_frame(102), 0.5, 6)
    assert det.calls == 1, "a 2-level change is noise, not a new picture"
    stage.look(_frame(104), 1.0, 11)
    assert det.calls == 2, "a 4-level change is a new picture"


def test_after_a_reset_a_region_starts_a_new_track() -> None:
    stage = _stage(FakeDetector())
    a = (0, 0, 100, 100)
    before = stage.tracks_for([a])[0]
    stage.reset()
    after = stage.tracks_for([a])[0]
    assert after is not before and after.id == before.id + 1
    assert after.smoother is not before.smoother, "smoothing does not carry across a gap"


def test_a_track_survives_one_window_less_than_missed_windows() -> None:
    stage = _stage(FakeDetector())
    a, other = (0, 0, 100, 100), (300, 0, 400, 100)
    kept = stage.tracks_for([a])[0]
    for _ in range(MISSED_WINDOWS - 1):
        stage.tracks_for([other])
    assert stage.tracks_for([a])[0] is kept, "missed one window less than the limit: kept"
    for _ in range(MISSED_WINDOWS - 1):  # seen again: its count of missed windows starts over
        stage.tracks_for([other])
    assert stage.tracks_for([a])[0] is kept
    for _ in range(MISSED_WINDOWS):
        stage.tracks_for([other])
    assert stage.tracks_for([a])[0] is not kept, "missed exactly the limit: forgotten"


def test_two_regions_never_share_one_track() -> None:
    stage = _stage(FakeDetector())
    a = (0, 0, 100, 100)
    first = stage.tracks_for([a])[0]
    both = stage.tracks_for([a, (10, 0, 110, 100)])  # both overlap the one track
    assert both[0] is first
    assert both[1] is not first and both[1].id == first.id + 1


def test_iou_of_known_boxes() -> None:
    a, b = (0, 0, 10, 20), (5, 10, 25, 30)  # 5 x 10 overlap; areas 200 and 400
    assert iou(a, b) == iou(b, a) == 50 / 550
    assert iou((0, 0, 10, 10), (0, 0, 10, 2)) == 0.2  # one inside the other
    assert iou((0, 0, 1, 1), (0, 0, 1, 1)) == 1.0
    assert iou((0, 0, 10, 10), (20, 0, 30, 10)) == 0.0  # apart in x only
    assert iou((0, 0, 10, 10), (0, 20, 10, 30)) == 0.0  # apart in y only
    assert iou((0, 0, 10, 10), (10, 10, 20, 20)) == 0.0  # touching corners
    assert iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0  # empty boxes overlap nowhere


def test_a_region_overlapping_exactly_match_iou_continues_the_track() -> None:
    stage = _stage(FakeDetector())
    first = stage.tracks_for([(0, 0, 10, 10)])[0]
    assert iou((0, 0, 10, 10), (0, 0, 10, 2)) == MATCH_IOU
    assert stage.tracks_for([(0, 0, 10, 2)])[0] is first


def test_the_detector_sees_the_frame_and_the_counts_add_up() -> None:
    det = FakeDetector()
    stage = _stage(det)
    frame = _frame(10)
    stage.look(frame, 0.0, 1)
    assert det.frames[0] is frame
    for i in range(1, 4):  # still and empty: skipped each time, never looked at again
        stage.look(_frame(10), 0.5 * i, 1 + 5 * i)
    assert (det.calls, stage.stats.detections, stage.stats.detections_skipped) == (1, 1, 3)
    stage.look(_frame(200), 2.0, 21)
    stage.look(_frame(10), 2.5, 26)
    assert (det.calls, stage.stats.detections, stage.stats.detections_skipped) == (3, 3, 3)
    stage.reset()
    stage.look(_frame(10), 3.0, 31)  # nothing to compare with after a gap: looked at
    assert det.calls == 4


def test_the_still_check_compares_brightness_averaged_over_blocks() -> None:
    """Grey levels of 32x32 block means: a colour change at equal brightness or a fine pattern
    shifting by one pixel is no new picture; grey frames work too."""
    det = FakeDetector()
    stage = _stage(det)
    stage.look(np.full((*HW, 3), 100, np.uint8), 0.0, 1)
    stage.look(np.full((*HW, 3), (0, 100, 138), np.uint8), 0.5, 6)  # luma 100 too
    stripes = np.zeros((256, 256), np.uint8)  # 8 x 8 pixel blocks: two 4-pixel periods each
    stripes[:, np.arange(256) % 4 < 2] = 255
    stage.look(stripes, 1.0, 11)
    stage.look(np.roll(stripes, 1, axis=1), 1.5, 16)
    assert det.calls == 2, "colour at equal brightness and a 1-pixel shift are still"


def test_the_still_threshold_is_a_fraction_of_full_scale() -> None:
    """Mean change 2.554 grey levels: just above 1 % of 255 (a new picture)."""
    det = FakeDetector()
    stage = _stage(det)
    base = np.full((32, 32), 100, np.uint8)
    changed = base + 2
    changed.flat[:567] += 1  # (1024 * 2 + 567) / 1024 = 2.554 levels = 1.0016 % of 255
    stage.look(base, 0.0, 1)
    stage.look(changed, 0.5, 6)
    assert det.calls == 2


def test_looks_are_kept_for_two_window_spans() -> None:
    det = FakeDetector()
    stage = _stage(det)  # span_s = 2.0
    det.boxes = np.array([[10, 10, 40, 100, 0.9]], np.float32)
    stage.look(_frame(1), 0.0, 1)
    det.boxes = np.zeros((0, 5), np.float32)
    stage.look(_frame(2), 4.0, 41)  # exactly two spans later: the first look is still kept
    assert len(stage.regions(0.0, 4.0, HW)) == 1
    stage.look(_frame(3), 4.5, 46)  # now it is older than two spans
    assert stage.regions(0.0, 4.5, HW) == []


def test_a_window_includes_a_look_at_its_last_frame_and_none_after() -> None:
    det = FakeDetector()
    stage = _stage(det)
    stage.look(_frame(1), 0.0, 1)
    det.boxes = np.array([[10, 10, 40, 100, 0.9]], np.float32)
    stage.look(_frame(200), 0.5, 6)
    assert len(stage.regions(0.0, 0.5, HW)) == 1
    assert stage.regions(0.0, 0.4, HW) == []


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
