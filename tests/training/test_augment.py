"""Clip augmentation: shapes and dtypes kept, exact flips, seeded, temporal order kept."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.training.augment import (
    AugmentConfig,
    augment_batch,
    augment_clip,
    color_jitter,
    crop_resize,
    hflip,
    temporal_indices,
    temporal_jitter,
)

T, H, W = 20, 64, 48


def _clip(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(T, H, W, 3), dtype=np.uint8)


def _numbered_clip() -> np.ndarray:
    """Frame t is filled with the value 10 * t, so a frame's value names its source index."""
    return np.broadcast_to((np.arange(T) * 10).astype(np.uint8)[:, None, None, None], (T, H, W, 3))


ALWAYS = AugmentConfig(flip_p=1.0, crop_p=1.0, color_p=1.0, temporal_p=1.0)


@pytest.mark.parametrize(
    "transform",
    [
        lambda c, r: hflip(c),
        crop_resize,
        color_jitter,
        temporal_jitter,
        lambda c, r: augment_clip(c, r, ALWAYS),
        augment_clip,
    ],
    ids=["hflip", "crop_resize", "color_jitter", "temporal_jitter", "all", "default"],
)
def test_shape_and_dtype_are_kept_and_the_input_is_untouched(transform) -> None:  # type: ignore[no-untyped-def]
    clip = _clip()
    before = clip.copy()
    out = transform(clip, np.random.default_rng(1))
    assert out.shape == clip.shape
    assert out.dtype == np.uint8
    assert np.array_equal(clip, before)


def test_hflip_mirrors_every_frame_exactly_and_twice_is_identity() -> None:
    clip = _clip()
    out = hflip(clip)
    for t in range(T):
        for x in range(W):
            assert np.array_equal(out[t, :, x], clip[t, :, W - 1 - x])
    assert np.array_equal(hflip(out), clip)


def test_same_seed_same_result_other_seed_differs() -> None:
    clip = _clip()
    a = augment_clip(clip, np.random.default_rng(42), ALWAYS)
    b = augment_clip(clip, np.random.default_rng(42), ALWAYS)
    c = augment_clip(clip, np.random.default_rng(43), ALWAYS)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    batch = np.stack([_clip(1), _clip(2), _clip(3)])
    x1 = augment_batch(batch, np.random.default_rng(5))
    x2 = augment_batch(batch, np.random.default_rng(5))
    assert x1.shape == batch.shape and x1.dtype == np.uint8
    assert np.array_equal(x1, x2)


def test_default_config_sometimes_leaves_a_clip_as_it_was_and_sometimes_changes_it() -> None:
    clip = _clip()
    same = [np.array_equal(augment_clip(clip, np.random.default_rng(s)), clip) for s in range(40)]
    assert any(same) and not all(same)


def test_temporal_jitter_keeps_order_and_length_and_only_uses_real_frames() -> None:
    clip = _numbered_clip()
    changed = 0
    for seed in range(50):
        out = temporal_jitter(clip, np.random.default_rng(seed), max_change=0.2)
        source = out[:, 0, 0, 0].astype(int) // 10  # each output frame's source index
        assert len(source) == T
        assert np.all(np.diff(source) >= 0), source
        for t in range(T):
            assert np.array_equal(out[t], clip[source[t]])
        dropped = T - len(np.unique(source))
        assert dropped <= int(0.2 * T)
        changed += dropped > 0
    assert changed > 25  # it does drop and repeat frames


def test_temporal_indices_edge_cases() -> None:
    rng = np.random.default_rng(0)
    assert np.array_equal(temporal_indices(T, rng, max_change=0.0), np.arange(T))
    assert np.array_equal(temporal_indices(1, rng, max_change=0.4), [0])
    with pytest.raises(ValueError):
        temporal_indices(0, rng)


def test_crop_resize_at_full_scale_is_the_identity_and_zooms_otherwise() -> None:
    clip = _clip()
    assert np.array_equal(crop_resize(clip, np.random.default_rng(0), scale=(1.0, 1.0)), clip)
    # A horizontal ramp stays a non-decreasing ramp after crop + resize, but steeper (zoomed).
    ramp = np.broadcast_to(
        np.linspace(0, 240, W).astype(np.uint8)[None, None, :, None], (T, H, W, 3)
    ).copy()
    out = crop_resize(ramp, np.random.default_rng(3), scale=(0.8, 0.8))
    row = out[0, H // 2, :, 0].astype(int)
    assert np.all(np.diff(row) >= 0)
    assert row[-1] - row[0] < 240
    assert np.array_equal(out[0], out[-1])  # same window on every frame


def test_color_jitter_is_the_same_change_on_every_frame() -> None:
    flat = np.full((T, H, W, 3), 100, dtype=np.uint8)
    out = color_jitter(flat, np.random.default_rng(2), brightness=0.15, contrast=0.2)
    assert len(np.unique(out)) == 1
    assert abs(int(out[0, 0, 0, 0]) - 100) <= round(0.15 * 255) + 1
    black_white = np.zeros((T, H, W, 3), dtype=np.uint8)
    black_white[:, :, W // 2 :] = 255
    out = color_jitter(black_white, np.random.default_rng(4), brightness=0.0, contrast=0.2)
    assert out.min() >= 0 and out.max() <= 255  # clipped, not wrapped around
    assert np.all(out[:, :, : W // 2] <= out[:, :, W // 2 :].min())


def test_bad_inputs_and_configs_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="uint8"):
        hflip(_clip().astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        augment_clip(np.zeros((H, W, 3), dtype=np.uint8), rng)
    with pytest.raises(ValueError):
        AugmentConfig(crop_scale=(0.9, 0.8))
    with pytest.raises(ValueError):
        AugmentConfig(flip_p=1.5)
    assert AugmentConfig().to_dict()["crop_scale"] == [0.8, 1.0]
