"""model.regions: people grouped into square regions inside the frame, windows cropped to them."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.meta import ModelMeta, PersonRegion
from har_daemon.model.preprocess import resize_frame
from har_daemon.model.regions import (
    box_gap,
    close_pair,
    crop_kept,
    crop_window,
    detection_frames,
    group_boxes,
    inside,
    keep,
    kept_area,
    kept_budget,
    kept_view,
    normalised,
    ring_frame,
    square_region,
    window_regions,
    working_size,
)

RULES = PersonRegion()


def _box(x1: float, y1: float, x2: float, y2: float, score: float = 0.9) -> list[float]:
    return [x1, y1, x2, y2, score]


def test_nearby_people_form_one_group_and_distant_ones_another() -> None:
    boxes = np.array(
        [_box(10, 10, 30, 90), _box(40, 12, 60, 92), _box(300, 10, 320, 50)], np.float32
    )
    groups = group_boxes(boxes, gap=0.5)
    assert len(groups) == 2
    np.testing.assert_allclose(groups[0], [10, 10, 60, 92])  # the larger group first
    np.testing.assert_allclose(groups[1], [300, 10, 320, 50])
    # 10 px apart: within half a body height (40 px), not within a tenth (8 px).
    assert len(group_boxes(boxes[:2], gap=0.1)) == 2
    assert group_boxes(np.zeros((0, 5), np.float32), gap=0.5) == []


def test_grouping_is_transitive() -> None:
    chain = np.array([_box(0, 0, 10, 40), _box(25, 0, 35, 40), _box(50, 0, 60, 40)])
    assert len(group_boxes(chain, gap=0.5)) == 1


def test_square_region_pads_and_stays_inside_the_frame() -> None:
    rules = PersonRegion(pad=0.25, min_side=48)
    region = square_region(np.array([100, 100, 140, 180]), (480, 640), rules)
    x1, y1, x2, y2 = region
    assert x2 - x1 == y2 - y1 == 120  # 80 px tall + 25 % on each side
    assert (x1 + x2) / 2 == 120 and (y1 + y2) / 2 == 140  # centred on the person
    edge = square_region(np.array([0, 0, 20, 40]), (480, 640), rules)
    assert edge[:2] == (0, 0) and edge[2] - edge[0] == 60  # shifted in, not shrunk
    small = square_region(np.array([300, 300, 305, 310]), (480, 640), rules)
    assert small[2] - small[0] == 48  # at least min_side
    huge = square_region(np.array([0, 0, 600, 470]), (480, 640), rules)
    assert huge[3] - huge[1] == 480 and huge[0] >= 0 and huge[2] <= 640  # at most the frame


def test_window_regions_use_every_look_and_the_score_floor() -> None:
    looks = [
        np.array([_box(10, 10, 30, 90)], np.float32),
        np.array([_box(20, 10, 40, 90), _box(400, 10, 420, 90, score=0.2)], np.float32),
        np.zeros((0, 5), np.float32),
    ]
    regions = window_regions(looks, (480, 640), RULES)
    assert len(regions) == 1  # the low-score box is not a person
    x1, _, x2, _ = regions[0]
    assert x1 <= 10 and x2 >= 40  # the union of both looks at the person
    many = [np.array([_box(100 * i, 0, 100 * i + 20, 40) for i in range(6)], np.float32)]
    assert len(window_regions(many, (480, 640), RULES)) == RULES.max_regions


def test_crop_window_resizes_each_frame_of_the_region() -> None:
    frames = np.zeros((20, 120, 160, 3), np.uint8)
    frames[:, 20:60, 40:80] = 200  # a bright square exactly where the region is
    crops = crop_window(frames, (40, 20, 80, 60), (64, 64))
    assert crops.shape == (20, 64, 64, 3)
    assert crops.min() == 200
    assert normalised((40, 20, 80, 60), (120, 160)) == [0.25, 0.1667, 0.5, 0.5]


def test_working_frames_and_detection_frames() -> None:
    assert working_size((1080, 1920), 480) == (270, 480)
    assert working_size((240, 320), 480) == (240, 320)  # never upscaled
    assert detection_frames(20, PersonRegion(detect_every=5)) == [4, 9, 14, 19]
    meta = ModelMeta(
        name="p", classes=["fight", "noFight"], frame_spacing_s=0.1, architecture="lrcn",
        input_region="person",
    )  # fmt: skip
    assert meta.person_region == PersonRegion()
    assert ring_frame(np.zeros((720, 1280, 3), np.uint8), meta).shape == (270, 480, 3)
    whole = meta.model_copy(update={"input_region": "frame", "person_region": None})
    assert ring_frame(np.zeros((720, 1280, 3), np.uint8), whole).shape == (64, 64, 3)
    with pytest.raises(ValueError, match="person_region is set"):
        ModelMeta.model_validate({**whole.model_dump(), "person_region": {}})


def test_grouping_margin_comes_from_the_taller_box_whichever_comes_first() -> None:
    """A child (20 px tall) 30 px beside an adult (100 px): within half the adult's height
    (50 px), far beyond half the child's (10 px): one group, in either order."""
    adult, child = _box(0, 0, 40, 100), _box(70, 80, 80, 100)
    for boxes in ([adult, child], [child, adult]):
        groups = group_boxes(np.array(boxes, np.float32), gap=0.5)
        assert len(groups) == 1, boxes
        np.testing.assert_allclose(groups[0], [0, 0, 80, 100])
    # 60 px apart: beyond half the adult's height too.
    far = _box(100, 80, 110, 100)
    assert len(group_boxes(np.array([adult, far], np.float32), gap=0.5)) == 2
    # Apart vertically only: the same margin applies to rows.
    below = _box(10, 130, 20, 150)
    assert len(group_boxes(np.array([below, adult], np.float32), gap=0.5)) == 1


def test_square_region_is_shifted_in_at_the_right_and_bottom_edges() -> None:
    """A wide frame (480 x 640): the right edge is 640 px away, the bottom 480 px."""
    rules = PersonRegion(pad=0.25, min_side=48)
    corner = square_region(np.array([620, 440, 640, 480]), (480, 640), rules)
    assert corner == (580, 420, 640, 480)  # 60 px square, flush with both far edges
    right = square_region(np.array([620, 100, 640, 140]), (480, 640), rules)
    assert right == (580, 90, 640, 150)
    bottom = square_region(np.array([100, 440, 120, 480]), (480, 640), rules)
    assert bottom == (80, 420, 140, 480)
    tall = square_region(np.array([230, 600, 250, 640]), (640, 480), rules)  # portrait
    assert tall == (210, 580, 270, 640)


def test_working_size_has_even_sides() -> None:
    """Video encoders and the thumbnails want even sides: odd results are rounded to even."""
    assert working_size((1004, 1920), 480) == (252, 480)  # 251 scaled
    assert working_size((1080, 1920), 481) == (270, 480)  # an odd width
    assert working_size((241, 321), 480) == (240, 320)  # not scaled, still even
    assert working_size((3, 1920), 480) == (2, 480)  # never below 2 rows


def test_boxes_exactly_the_margin_apart_are_one_group() -> None:
    left, right = _box(0, 0, 10, 40), _box(30, 0, 40, 40)  # 20 px = half of 40 px apart
    above, below = _box(0, 0, 10, 40), _box(0, 60, 10, 100)
    for pair in ([left, right], [above, below]):
        assert len(group_boxes(np.array(pair, np.float32), gap=0.5)) == 1, pair
        assert len(group_boxes(np.array(pair, np.float32), gap=0.49)) == 2, pair


def test_far_apart_or_overlapping_anywhere_in_the_frame() -> None:
    """Each side compared with the same side: two people low in the frame and far apart are
    two groups, two overlapping people far to the right one, in either order."""
    low_left, low_right = _box(0, 250, 10, 300), _box(100, 250, 110, 300)
    right_a, right_b = _box(300, 0, 310, 50), _box(305, 10, 315, 60)
    for a, b in ((low_left, low_right), (low_right, low_left)):
        assert len(group_boxes(np.array([a, b]), gap=0.1)) == 2
    for a, b in ((right_a, right_b), (right_b, right_a)):
        assert len(group_boxes(np.array([a, b]), gap=0.1)) == 1


def test_groups_come_largest_area_first() -> None:
    wide = _box(0, 100, 100, 110)  # 100 x 10 = 1000 px
    tall = _box(200, 100, 230, 140)  # 30 x 40 = 1200 px
    for boxes in ([wide, tall], [tall, wide]):
        groups = group_boxes(np.array(boxes), gap=0.5)
        np.testing.assert_allclose(groups[0], tall[:4])
        np.testing.assert_allclose(groups[1], wide[:4])


def test_square_region_takes_scored_boxes_and_a_portrait_frame() -> None:
    rules = PersonRegion(pad=0.25, min_side=48)
    scored = square_region(np.array([100, 100, 140, 180, 0.9]), (480, 640), rules)
    assert scored == square_region(np.array([100, 100, 140, 180]), (480, 640), rules)
    huge = square_region(np.array([0, 0, 470, 600]), (640, 480), rules)  # portrait
    assert huge[2] - huge[0] == huge[3] - huge[1] == 480  # at most the narrower side


def test_window_regions_edges() -> None:
    assert window_regions([], (480, 640), RULES) == []  # no look at all
    at_floor = [np.array([_box(10, 10, 30, 90, score=RULES.min_score)], np.float32)]
    assert len(window_regions(at_floor, (480, 640), RULES)) == 1  # the floor itself counts


def test_crop_window_and_ring_frame_use_the_interpolation_asked_for() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 120, 160, 3), dtype=np.uint8)
    linear = crop_window(frames, (0, 0, 100, 100), (64, 64), "linear")
    np.testing.assert_array_equal(
        linear[0], resize_frame(frames[0, :100, :100], (64, 64), "linear")
    )
    assert not np.array_equal(linear, crop_window(frames, (0, 0, 100, 100), (64, 64), "area"))
    meta = ModelMeta(
        name="p", classes=["fight", "noFight"], frame_spacing_s=0.1, architecture="lrcn",
        resize_interpolation="linear",
    )  # fmt: skip
    frame = rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    np.testing.assert_array_equal(ring_frame(frame, meta), resize_frame(frame, (64, 64), "linear"))


def test_normalised_has_four_decimals_everywhere() -> None:
    assert normalised((1, 1, 6, 5), (7, 7)) == [0.1429, 0.1429, 0.8571, 0.7143]


def test_detection_frames_reach_the_first_frame() -> None:
    assert detection_frames(21, PersonRegion(detect_every=5)) == [0, 5, 10, 15, 20]
    assert detection_frames(1, PersonRegion(detect_every=5)) == [0]


def test_working_size_edges() -> None:
    assert working_size((243, 480), 480) == (242, 480)  # exactly the width: not scaled
    assert working_size((245, 321), 480) == (244, 320)
    assert working_size((1080, 1920), 485) == (272, 484)


def test_box_gap_is_in_body_heights_of_the_taller_person() -> None:
    a = np.array([0, 0, 40, 100])
    assert box_gap(a, np.array([140, 0, 180, 100])) == pytest.approx(1.0)  # 100 px apart
    assert box_gap(a, np.array([140, 50, 160, 100])) == pytest.approx(1.0)  # shorter one
    assert box_gap(a, np.array([20, 20, 60, 120])) < 0  # overlapping
    assert box_gap(a, np.array([90, 0, 130, 200])) == pytest.approx(0.25)  # 50 px, 200 tall


def test_a_close_pair_needs_two_people_within_the_distance() -> None:
    one = np.array([[0, 0, 40, 100, 0.9]])
    assert not close_pair(one, 5.0)
    assert not close_pair(np.zeros((0, 5)), 5.0)
    pair = np.array([[0, 0, 40, 100, 0.9], [90, 0, 130, 100, 0.8]])  # 0.5 body heights apart
    assert close_pair(pair, 0.5) and not close_pair(pair, 0.49)
    far = np.array([[0, 0, 40, 100, 0.9], [400, 0, 440, 100, 0.8], [60, 0, 100, 100, 0.7]])
    assert close_pair(far, 0.2)  # the third stands next to the first


def test_inside_keeps_the_boxes_whose_centre_is_in_the_region() -> None:
    boxes = np.array([[0, 0, 40, 100, 0.9], [90, 0, 130, 100, 0.8], [300, 0, 340, 100, 0.7]])
    kept = inside(boxes, (0, 0, 200, 200))
    assert [float(b[4]) for b in kept] == pytest.approx([0.9, 0.8])
    assert inside(np.zeros((0, 5)), (0, 0, 10, 10)).shape == (0, 5)


def test_kept_area_grows_each_region_by_half_its_side_and_stays_inside_the_frame() -> None:
    assert kept_area((360, 480), []) is None
    assert kept_area((360, 480), [(100, 100, 160, 160)]) == (70, 70, 190, 190)
    # two regions: the union of both grown squares; the second is clipped at the frame's edge
    assert kept_area((360, 480), [(100, 100, 160, 160), (400, 300, 460, 360)]) == (
        70,
        70,
        480,
        360,
    )


def test_kept_view_keeps_the_people_at_full_resolution_only_when_they_fit_a_quarter() -> None:
    hw = (360, 480)
    assert kept_budget(hw) == 180 * 240
    assert kept_view(hw, (70, 70, 190, 190)) == ((70, 70, 190, 190), 1)
    assert kept_view(hw, None) == ((0, 0, 480, 360), 2)  # nobody seen: the whole frame halved
    assert kept_view(hw, (0, 0, 300, 300)) == ((0, 0, 480, 360), 2)  # 90000 px > 43200
    assert kept_view(hw, (-10, -10, 50, 50)) == ((0, 0, 50, 50), 1)  # clipped to the frame


def _frame(rng: np.random.Generator, hw: tuple[int, int] = (360, 480)) -> np.ndarray:
    # smooth enough that halving changes little, textured enough that an offset shows
    small = rng.integers(0, 256, (hw[0] // 8, hw[1] // 8, 3), dtype=np.uint8)
    return resize_frame(small, hw, "linear")


def test_a_region_cropped_from_the_kept_box_is_the_crop_of_the_whole_frame() -> None:
    rng = np.random.default_rng(1)
    frames = np.stack([_frame(rng) for _ in range(3)])
    box, region = (70, 50, 230, 210), (100, 80, 190, 170)
    kept = [keep(f, box, 1) for f in frames]
    got = np.stack([crop_kept(k, box, 1, region, (64, 64)) for k in kept])  # type: ignore[misc]
    np.testing.assert_array_equal(got, crop_window(frames, region, (64, 64)))
    # one pixel off is not the same picture: the test sees a wrong offset
    shifted = crop_window(frames, (101, 80, 191, 170), (64, 64))
    assert not np.array_equal(got, shifted)


def test_a_region_from_the_halved_frame_is_close_to_the_full_resolution_crop() -> None:
    rng = np.random.default_rng(2)
    frame = _frame(rng)
    whole = (0, 0, 480, 360)
    kept = keep(frame, whole, 2)
    assert kept.shape == (180, 240, 3)
    region = (100, 80, 260, 240)  # 160 px: 80 px kept, still more than the model's 64
    got = crop_kept(kept, whole, 2, region, (64, 64))
    want = crop_window(frame[None], region, (64, 64))[0]
    assert got is not None and got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 3.0


def test_the_part_of_a_region_outside_the_kept_box_repeats_its_edge() -> None:
    frame = np.zeros((360, 480, 3), np.uint8)
    frame[:, :, 0] = np.arange(480, dtype=np.uint8)[None, :] % 200
    box = (100, 100, 200, 200)
    kept = keep(frame, box, 1)
    got = crop_kept(kept, box, 1, (150, 120, 250, 220), (100, 100), "linear")
    assert got is not None
    np.testing.assert_array_equal(got[:, :50, 0], np.broadcast_to(frame[0, 150:200, 0], (100, 50)))
    assert (got[:, 50:, 0] == frame[0, 199, 0]).all()  # the box's last column, repeated
    assert crop_kept(kept, box, 1, (300, 300, 350, 350), (64, 64)) is None  # no overlap
