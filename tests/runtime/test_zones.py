"""A camera's zones and masks at run time: blanking, dropped boxes, zones of people, gating."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.config import CameraConfig
from har_daemon.model.meta import PersonRegion, read_meta
from har_daemon.runtime.people import PeopleStage
from har_daemon.runtime.smoothing import Smoother
from har_daemon.runtime.zones import BLANK_BGR, CameraZones, zone_problem
from tests.shared_data import REPO

LEFT = [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]
RIGHT = [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]
TOP = [[0, 0], [1, 0], [1, 0.25], [0, 0.25]]
CLASSES = ["fight", "noFight"]


def _camera(**kw: object) -> CameraConfig:
    return CameraConfig.model_validate({"name": "cam", "source": 0, **kw})


def _zones(**kw: object) -> CameraZones:
    zones = CameraZones.from_config(_camera(**kw), CLASSES)
    assert zones is not None
    return zones


def test_no_zones_no_masks_builds_nothing() -> None:
    assert CameraZones.from_config(_camera(), CLASSES) is None


def test_blank_covers_the_mask_and_leaves_the_source_whole() -> None:
    zones = _zones(masks=[{"name": "sky", "points": TOP}])
    source = np.full((40, 80, 3), 7, np.uint8)
    out = zones.blank(source, source=source)
    assert out is not source and (source == 7).all()
    assert (out[:10] == BLANK_BGR).all() and (out[11:] == 7).all()  # row 10: the edge
    assert zones.stats.masked_fraction == pytest.approx(0.25, abs=0.03)


def test_boxes_standing_in_a_mask_are_dropped_and_counted() -> None:
    zones = _zones(masks=[{"points": LEFT}])
    boxes = np.array([[10, 10, 30, 90, 0.9], [110, 10, 130, 90, 0.8]], np.float32)
    kept = zones.unmasked(boxes, (100, 200))
    assert kept.tolist() == boxes[1:].tolist()
    assert zones.stats.masked_boxes == 1
    zones.unmasked(boxes, (100, 200))
    assert zones.stats.masked_boxes == 2  # counted over the camera's life


def test_a_foot_point_on_the_frames_last_row_or_column_reads_that_pixel() -> None:
    bottom = [[0, 0.99], [1, 0.99], [1, 1], [0, 1]]  # row 99 of 100 only
    right = [[0.995, 0], [1, 0], [1, 1], [0.995, 1]]  # column 199 of 200 only
    zones = _zones(masks=[{"points": bottom}, {"points": right}])
    boxes = np.array(
        [
            [90, 10, 110, 100, 0.9],  # foot (0.5, 1.0): on the bottom edge, in the mask
            [190, 10, 210, 50, 0.9],  # foot (1.0, 0.5): half out of the frame, in the mask
            [90, 10, 110, 50, 0.9],  # foot (0.5, 0.5): free
        ],
        np.float32,
    )
    assert zones.unmasked(boxes, (100, 200)).tolist() == boxes[2:].tolist()


def test_zones_without_masks_blank_and_drop_nothing() -> None:
    zones = _zones(zones=[{"name": "left", "points": LEFT}])
    frame = np.full((100, 200, 3), 7, np.uint8)
    assert zones.blank(frame) is frame and (frame == 7).all()
    boxes = np.array([[10, 10, 30, 90, 0.9]], np.float32)
    assert zones.unmasked(boxes, (100, 200)) is boxes
    assert zones.stats.masked_fraction == 0.0 and not zones.all_masked


def test_blank_works_in_place_unless_the_frame_is_the_source_and_blanks_grey_frames() -> None:
    zones = _zones(masks=[{"name": "sky", "points": TOP}])
    source = np.full((40, 80, 3), 7, np.uint8)
    frame = source.copy()  # e.g. the working frame, resized from the source
    assert zones.blank(frame, source=source) is frame and (frame[:10] == BLANK_BGR).all()
    grey = np.full((40, 80), 7, np.uint8)
    zones.blank(grey)
    assert (grey[:10] == int(BLANK_BGR.mean())).all() and (grey[11:] == 7).all()


def test_zones_of_people_and_gating() -> None:
    zones = _zones(
        zones=[{"name": "left", "points": LEFT}, {"name": "right", "points": RIGHT}],
        required_zones={"fight": ["right"]},
    )
    on_left = np.array([[10, 10, 30, 90, 0.9]], np.float32)
    assert zones.zones_of(on_left, (100, 200)) == ["left"]
    probs = np.array([0.9, 0.1], np.float32)
    assert zones.gate(probs, ["left"]).tolist() == [0.0, pytest.approx(0.1)]
    assert probs.tolist() == [pytest.approx(0.9), pytest.approx(0.1)]  # a copy was gated
    assert zones.gate(probs, ["left", "right"]) is probs  # untouched inside
    assert zones.gate(probs, []).tolist()[0] == 0.0  # nobody in a zone


def test_a_requirement_names_one_activity_and_leaves_the_others_everywhere() -> None:
    zones = _zones(
        zones=[{"name": "left", "points": LEFT}, {"name": "right", "points": RIGHT}],
        required_zones={"fall": ["right"]},
    )
    assert not zones.allows("fall", ["left"]) and zones.allows("fall", ["left", "right"])
    assert zones.allows("fight", []), "fight requires no zone here"
    probs = np.array([0.9, 0.1], np.float32)
    assert zones.gate(probs, []) is probs, "the fall's requirement does not touch the classifier"


class _Fixed:
    def __init__(self, boxes: np.ndarray) -> None:
        self.boxes, self.calls = boxes, 0

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.boxes


def test_people_stage_drops_masked_people_and_names_the_zones_of_a_region() -> None:
    zones = _zones(
        zones=[{"name": "right", "points": RIGHT}], masks=[{"name": "left", "points": LEFT}]
    )
    boxes = np.array([[10, 10, 30, 90, 0.9], [110, 10, 130, 90, 0.8]], np.float32)
    stage = PeopleStage(_Fixed(boxes), PersonRegion(), lambda: Smoother(), 2.0, zones)
    stage.look(np.zeros((100, 200, 3), np.uint8), 1.0, 1)
    assert stage.boxes(0.0, 1.0).tolist() == boxes[1:].tolist()
    assert stage.zones_in((100, 0, 200, 100), 0.0, 1.0, (100, 200)) == ["right"]
    assert stage.zones_in((0, 0, 100, 100), 0.0, 1.0, (100, 200)) == []


def test_a_frame_masked_whole_is_never_detected() -> None:
    zones = _zones(masks=[{"points": [[0, 0], [1, 0], [1, 1], [0, 1]]}])
    detector = _Fixed(np.zeros((0, 5), np.float32))
    stage = PeopleStage(detector, PersonRegion(), lambda: Smoother(), 2.0, zones)
    stage.look(np.zeros((100, 200, 3), np.uint8), 1.0, 1)
    assert detector.calls == 0 and stage.stats.detections_masked == 1


def test_required_zones_need_known_activities_and_people() -> None:
    fight = read_meta(REPO / "models" / "fight")
    demo = read_meta(REPO / "models" / "demo")
    ok = _camera(zones=[{"name": "z", "points": LEFT}], required_zones={"fight": ["z"]})
    assert zone_problem(ok, fight) is None
    swing = _camera(zones=[{"name": "z", "points": LEFT}], required_zones={"Swing": ["z"]})
    problem = zone_problem(swing, demo)
    assert problem is not None and "person-centric" in problem
    bad = _camera(zones=[{"name": "z", "points": LEFT}], required_zones={"punch": ["z"]})
    assert zone_problem(bad, fight) == (
        "camera 'cam': required_zones names unknown activity 'punch'; the model's classes are "
        "fight, noFight"
    )
    two = _camera(
        zones=[{"name": "z", "points": LEFT}],
        required_zones={"punch": ["z"], "kick": ["z"]},
        recognisers=[{"kind": "classifier"}, {"kind": "fall"}],
    )
    assert zone_problem(two, fight) == (
        "camera 'cam': required_zones names unknown activities 'kick', 'punch'; the model's "
        "classes are fight, noFight, and the camera's recognisers raise fall"
    )


def test_motion_inside_a_mask_costs_no_detection() -> None:
    """A tree or a road under a mask: its changes are blanked before the still-picture check,
    so with nobody there the detector is not run again; a change outside the mask is."""
    zones = _zones(masks=[{"name": "road", "points": LEFT}])
    detector = _Fixed(np.zeros((0, 5), np.float32))
    stage = PeopleStage(detector, PersonRegion(detect_every=5), lambda: Smoother(), 2.0, zones)
    rng = np.random.default_rng(0)
    base = np.full((100, 200, 3), 90, np.uint8)
    for i in range(4):
        frame = base.copy()
        frame[:, :100] = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)  # traffic
        stage.look(zones.blank(frame), 0.5 * i, 1 + 5 * i)
    assert detector.calls == 1, "only the first look; the masked traffic is not a new picture"
    assert stage.stats.detections_skipped == 3
    moved = base.copy()
    moved[:, 150:] = 200  # something changes where the camera does look
    stage.look(zones.blank(moved), 2.0, 21)
    assert detector.calls == 2
