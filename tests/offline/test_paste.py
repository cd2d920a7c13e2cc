"""The paste test's compositing rules, on arrays: placement, timing, degradation, blending."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from har_daemon.offline.paste import (
    Look,
    Placement,
    blend,
    case_rng,
    degrade,
    feather_mask,
    pingpong,
    place,
    resample,
    scene_start,
    timeline,
)


@pytest.mark.parametrize("fraction", [1 / 2, 1 / 3, 1 / 4])
def test_place_sizes_the_clip_to_its_fraction_and_keeps_it_inside(fraction: float) -> None:
    for key in range(50):
        at = place((384, 288), (640, 360), fraction, case_rng(0, key))
        assert at.width == round(384 * fraction)
        assert at.height == round(at.width * 360 / 640)
        assert 0 <= at.x <= 384 - at.width and 0 <= at.y <= 288 - at.height


def test_place_shrinks_a_clip_that_would_be_taller_than_the_frame() -> None:
    at = place((480, 200), (300, 400), 1 / 2, case_rng(0, 1))  # 240 wide would be 320 tall
    assert (at.width, at.height) == (150, 200)
    assert at.y == 0


def test_place_is_repeatable_per_seed_and_case_and_varies_between_cases() -> None:
    first = place((768, 432), (320, 240), 1 / 3, case_rng(7, 3, 1))
    assert place((768, 432), (320, 240), 1 / 3, case_rng(7, 3, 1)) == first
    others = {place((768, 432), (320, 240), 1 / 3, case_rng(7, k, 1)) for k in range(20)}
    assert len(others) > 10


def test_place_refuses_a_fraction_out_of_range() -> None:
    with pytest.raises(ValueError, match="fraction"):
        place((384, 288), (320, 240), 0.0, case_rng(0))


def test_pingpong_plays_forward_backward_forward_without_repeating_the_turn() -> None:
    assert pingpong(4, 1) == [0, 1, 2, 3]
    assert pingpong(4, 3) == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]
    assert pingpong(1, 3) == [0, 0, 0]


def test_resample_shows_the_frame_on_screen_at_each_output_time() -> None:
    assert resample([0, 1, 2, 3, 4, 5], 30.0, 10.0) == [0, 3]
    assert resample([0, 1, 2], 10.0, 20.0) == [0, 0, 1, 1, 2, 2]
    assert resample(list(range(25)), 25.0, 25.0) == list(range(25))


def test_timeline_puts_the_clip_between_the_scene_stretches() -> None:
    plan = timeline(50, 25.0, 25.0, repeats=3, pre_s=3.0, post_s=2.0)
    assert plan.first == 75
    assert len(plan.indices) == 148  # 50 + 49 + 49 frames
    assert plan.total == 75 + 148 + 50
    assert plan.interval_s == pytest.approx((3.0, 3.0 + 148 / 25))
    assert plan.clip_frame(74) is None
    assert plan.clip_frame(75) == 0
    assert plan.clip_frame(75 + 50) == 48  # on its way back
    assert plan.clip_frame(75 + 148) is None


def test_scene_start_leaves_room_for_the_composite() -> None:
    starts = {scene_start(100, 40, case_rng(0, k)) for k in range(200)}
    assert min(starts) >= 0 and max(starts) <= 60 and len(starts) > 20
    assert scene_start(40, 40, case_rng(0)) == 0
    with pytest.raises(ValueError, match="shorter"):
        scene_start(39, 40, case_rng(0))


def test_degrade_gives_the_pasted_size_and_loses_detail() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    sharp = degrade(frame, 80, 60, Look(blur_factor=1.0, jpeg_quality=100))
    soft = degrade(frame, 80, 60, Look(blur_factor=3.0, jpeg_quality=30))
    assert sharp.shape == soft.shape == (60, 80, 3)
    # Blur and compression remove high-frequency energy: neighbouring pixels grow alike.
    assert (
        np.abs(np.diff(soft.astype(int), axis=1)).mean()
        < np.abs(np.diff(sharp.astype(int), axis=1)).mean()
    )


def test_look_refuses_settings_that_mean_nothing() -> None:
    with pytest.raises(ValueError, match="blur_factor"):
        Look(blur_factor=0.5)


def test_feather_mask_is_one_inside_and_ramps_to_the_edge() -> None:
    m = feather_mask(20, 10, 3)
    assert m.shape == (10, 20, 1)
    assert m[5, 10, 0] == 1.0
    assert 0 < m[0, 10, 0] < m[1, 10, 0] < m[2, 10, 0] <= 1.0
    assert m[0, 0, 0] == m[0, 10, 0]  # a corner ramps like an edge
    assert np.all(feather_mask(5, 4, 0) == 1.0)


def test_blend_replaces_the_placed_region_only() -> None:
    frame = np.zeros((20, 30, 3), np.uint8)
    patch = np.full((4, 6, 3), 200, np.uint8)
    at = Placement(x=10, y=5, width=6, height=4)
    out = blend(frame, patch, at, feather_mask(6, 4, 0))
    assert np.all(out[5:9, 10:16] == 200)
    out[5:9, 10:16] = 0
    assert not out.any()
    assert not frame.any()  # the scene frame itself is untouched
    half = blend(frame, patch, at, np.full((4, 6, 1), 0.5, np.float32))
    assert np.all(half[5:9, 10:16] == 100)


def test_blend_refuses_a_patch_that_does_not_fit_its_placement() -> None:
    frame = np.zeros((20, 30, 3), np.uint8)
    with pytest.raises(ValueError, match="do not fit"):
        blend(frame, np.zeros((5, 6, 3), np.uint8), Placement(0, 0, 6, 4), feather_mask(6, 4, 0))


@pytest.mark.parametrize(
    "bad", [{"blur_factor": 0.99}, {"jpeg_quality": 0}, {"jpeg_quality": 101}, {"feather_px": -1}]
)
def test_look_refuses_each_setting_out_of_range(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="bad look"):
        Look(**bad)  # type: ignore[arg-type]


def test_look_accepts_the_edges_of_its_ranges() -> None:
    Look(blur_factor=1.0, jpeg_quality=1, feather_px=0)
    Look(jpeg_quality=100)


def test_place_fills_a_frame_as_wide_as_the_clip_at_fraction_one() -> None:
    for key in range(20):
        at = place((384, 288), (640, 360), 1.0, case_rng(0, key))
        assert (at.x, at.width, at.height) == (0, 384, 216)
        at = place((480, 200), (300, 400), 1 / 2, case_rng(0, key))  # as tall as the frame
        assert at.y == 0


def test_place_keeps_at_least_two_pixels_and_never_exceeds_the_frame() -> None:
    tiny = place((100, 100), (10, 10), 0.001, case_rng(0))
    assert (tiny.width, tiny.height) == (2, 2)
    flat = place((100, 100), (1000, 10), 0.5, case_rng(0))  # 50 wide would be 0.5 tall
    assert (flat.width, flat.height) == (50, 2)
    tall = place((100, 2), (10, 100), 0.5, case_rng(0))  # shrunk to the frame: 0.2 wide
    assert (tall.width, tall.height) == (2, 2)
    # Exactly as tall as the frame once rounded: the width stays (33 px tall from 100 wide,
    # not 99 wide from 33 tall).
    assert place((300, 33), (300, 100), 1 / 3, case_rng(0)).width == 100
    narrow = place((1, 10), (1, 1), 1.0, case_rng(0))  # at least 2 wide, but the frame is 1
    assert (narrow.x, narrow.width) == (0, 1)


@pytest.mark.parametrize(
    ("frame_wh", "clip_wh", "fraction"),
    [((384, 288), (320, 240), 1.01), ((0, 288), (320, 240), 0.5), ((384, 0), (320, 240), 0.5),
     ((384, 288), (0, 240), 0.5), ((384, 288), (320, 0), 0.5)],
)  # fmt: skip
def test_place_refuses_a_fraction_over_one_and_empty_sizes(
    frame_wh: tuple[int, int], clip_wh: tuple[int, int], fraction: float
) -> None:
    with pytest.raises(ValueError, match="fraction"):
        place(frame_wh, clip_wh, fraction, case_rng(0))


def test_pingpong_turns_at_both_ends_and_refuses_nothing_to_play() -> None:
    assert pingpong(3, 4) == [0, 1, 2, 1, 0, 1, 2, 1, 0]
    assert pingpong(2, 3) == [0, 1, 0, 1]
    for n, repeats in ((0, 1), (1, 0)):
        with pytest.raises(ValueError, match="^n and repeats must be positive$"):
            pingpong(n, repeats)


def test_resample_is_exact_at_rates_that_do_not_divide_in_floating_point() -> None:
    # 22 * 14.985 / 29.97 is 10.999999999999998: still frame 11, and 11 frames in all
    assert resample(list(range(22)), 29.97, 14.985) == list(range(0, 22, 2))
    assert resample(list(range(12)), 14.985, 29.97) == [k // 2 for k in range(24)]
    assert resample([5], 30.0, 10.0) == [5]  # shorter than one output frame: still shown
    assert resample([0, 1], 1.0, 0.5) == [0]  # rates under 1 frame a second are rates too
    assert resample([0, 1], 0.5, 1.0) == [0, 0, 1, 1]
    for src, out in ((0.0, 10.0), (10.0, 0.0)):
        with pytest.raises(ValueError, match="^frame rates must be positive$"):
            resample([0, 1], src, out)


def test_timeline_defaults_are_three_legs_three_seconds_before_and_two_after() -> None:
    assert timeline(50, 25.0, 25.0) == timeline(50, 25.0, 25.0, repeats=3, pre_s=3.0, post_s=2.0)


def test_degrade_without_blur_or_compression_is_the_area_average() -> None:
    frame = np.random.default_rng(1).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    want = frame.reshape(60, 4, 80, 4, 3).mean(axis=(1, 3))
    sharp = degrade(frame, 80, 60, Look(blur_factor=1.0, jpeg_quality=100))
    assert np.abs(sharp - want).max() <= 0.5 + 1e-9  # JPEG at quality 100 would still move some
    corner = np.zeros((240, 320, 3), np.uint8)
    corner[:40, :40] = 255  # one pixel of the 8x6 patch
    flat = degrade(corner, 8, 6, Look(blur_factor=100.0, jpeg_quality=100))  # shrunk to 1 px
    assert np.all(flat == 5)  # the patch's average, 255 / 48: an area shrink, not a sample


def test_degrade_blurs_at_the_default_factor_and_compresses_at_the_looks_quality() -> None:
    frame = np.random.default_rng(2).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    sharp = degrade(frame, 80, 60, Look(blur_factor=1.0, jpeg_quality=100)).astype(int)

    def detail(patch: np.ndarray) -> float:
        return float(np.abs(np.diff(patch.astype(int), axis=1)).mean())

    blurred = degrade(frame, 80, 60, Look(blur_factor=2.0, jpeg_quality=100))
    assert detail(blurred) < 0.8 * detail(sharp)
    loss = [
        np.abs(degrade(frame, 80, 60, Look(blur_factor=1.0, jpeg_quality=q)) - sharp).mean()
        for q in (10, 90)
    ]
    assert loss[0] > loss[1] > 0  # (the encoder's default quality is 95)


def test_feather_mask_ramps_from_half_a_pixel_in() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a feather of 0
        assert np.all(feather_mask(5, 4, 0) == 1.0)
    one = feather_mask(4, 3, 1)[..., 0]
    np.testing.assert_array_equal(one, [[0.5] * 4, [0.5, 1.0, 1.0, 0.5], [0.5] * 4])
    m = feather_mask(20, 10, 3)
    assert m.dtype == feather_mask(5, 4, 0).dtype == np.float32
    np.testing.assert_allclose(m[:4, 10, 0], [0.5 / 3, 1.5 / 3, 2.5 / 3, 1.0], rtol=1e-6)
    np.testing.assert_allclose(m[-4:, 10, 0], [1.0, 2.5 / 3, 1.5 / 3, 0.5 / 3], rtol=1e-6)
    np.testing.assert_allclose(m[5, :4, 0], [0.5 / 3, 1.5 / 3, 2.5 / 3, 1.0], rtol=1e-6)
    np.testing.assert_allclose(m[5, -4:, 0], [1.0, 2.5 / 3, 1.5 / 3, 0.5 / 3], rtol=1e-6)


def test_blend_rounds_to_the_nearest_level_and_refuses_a_mask_of_another_size() -> None:
    frame = np.full((20, 30, 3), 10, np.uint8)
    at = Placement(x=10, y=5, width=6, height=4)
    patch = np.full((4, 6, 3), 213, np.uint8)
    half = blend(frame, patch, at, np.full((4, 6, 1), 0.5, np.float32))
    assert np.all(half[5:9, 10:16] == 112)  # 10 + 101.5: rounded to nearest (even), not down
    with pytest.raises(ValueError, match=r"^patch \(4, 6\) / mask \(5, 6\) do not fit Placement"):
        blend(frame, patch, at, feather_mask(6, 5, 0))
