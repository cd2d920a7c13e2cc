"""The paste test's compositing rules, on arrays: placement, timing, degradation, blending."""

from __future__ import annotations

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
