"""`distant_view`: a close-up clip made to look like a person far from a camera (issue 19).

It must remove fine detail (what a 50-150 px person in a compressed frame lacks), keep shape,
dtype and coarse content, make one choice per clip, be seeded, and stay off unless asked for,
so that `--augment` alone still reproduces the models trained before it existed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_daemon.cli import main
from har_daemon.cli.parser import build_parser
from har_daemon.cli.training import _train_options
from har_daemon.training.augment import (
    AugmentConfig,
    augment_clip,
    color_jitter,
    crop_resize,
    distant_view,
    hflip,
    temporal_jitter,
)

T, H, W = 20, 64, 48


def _noise_clip(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(T, H, W, 3), dtype=np.uint8)


def _high_frequency_energy(clip: np.ndarray) -> float:
    """Mean absolute difference between horizontally and vertically adjacent pixels."""
    f = clip.astype(np.float64)
    return float(np.abs(np.diff(f, axis=1)).mean() + np.abs(np.diff(f, axis=2)).mean())


def test_shape_dtype_kept_input_untouched_and_seeded() -> None:
    clip = _noise_clip()
    before = clip.copy()
    a = distant_view(clip, np.random.default_rng(7))
    assert a.shape == clip.shape and a.dtype == np.uint8
    assert np.array_equal(clip, before)
    assert np.array_equal(a, distant_view(clip, np.random.default_rng(7)))
    others = [distant_view(clip, np.random.default_rng(s)) for s in range(8, 12)]
    assert any(not np.array_equal(a, o) for o in others)


@pytest.mark.parametrize("seed", range(6))
def test_removes_fine_detail_but_keeps_the_picture(seed: int) -> None:
    noise = _noise_clip(seed)
    out = distant_view(noise, np.random.default_rng(seed))
    assert _high_frequency_energy(out) < 0.5 * _high_frequency_energy(noise)
    # A large bright square on dark keeps its place: coarse content survives.
    square = np.zeros((T, H, W, 3), dtype=np.uint8)
    square[:, 16:48, 12:36] = 200
    out = distant_view(square, np.random.default_rng(seed)).astype(int)
    assert out[:, 28:36, 20:28].min() > 150
    assert out[:, :4, :4].max() < 50 and out[:, -4:, -4:].max() < 50


def test_flat_clip_stays_flat_and_no_degradation_is_the_identity() -> None:
    flat = np.full((T, H, W, 3), 117, dtype=np.uint8)
    out = distant_view(flat, np.random.default_rng(3), scale=(0.3, 0.3), quality=(25, 25))
    assert np.abs(out.astype(int) - 117).max() <= 1
    clip = _noise_clip()
    same = distant_view(clip, np.random.default_rng(0), scale=(1.0, 1.0), quality=(100, 100))
    assert np.array_equal(same, clip)


def test_one_choice_for_the_whole_clip() -> None:
    """Identical frames come out identical: the same shrink and quality on every frame, so
    the change between frames (the motion) is not invented by the augmentation."""
    still = np.broadcast_to(_noise_clip()[:1], (T, H, W, 3)).copy()
    out = distant_view(still, np.random.default_rng(5))
    assert all(np.array_equal(out[0], out[t]) for t in range(T))


def test_off_by_default_and_the_default_draws_are_unchanged() -> None:
    """With distant_p 0, augment_clip is the four older transforms in their order, drawing
    exactly what they draw (the generator ends where they leave it): the shipped models'
    training batches are reproduced bit for bit."""
    cfg = AugmentConfig()
    assert cfg.distant_p == 0.0
    clip = _noise_clip()
    for seed in range(12):
        got_rng, ref_rng = np.random.default_rng(seed), np.random.default_rng(seed)
        got = augment_clip(clip, got_rng, cfg)
        do_flip, do_crop, do_color, do_time = ref_rng.random(4) < (0.5, 0.5, 0.5, 0.5)
        ref = clip
        if do_time:
            ref = temporal_jitter(ref, ref_rng, cfg.temporal_max_change)
        if do_flip:
            ref = hflip(ref)
        if do_crop:
            ref = crop_resize(ref, ref_rng, cfg.crop_scale)
        if do_color:
            ref = color_jitter(ref, ref_rng, cfg.brightness, cfg.contrast)
        assert np.array_equal(got, ref)
        assert got_rng.random() == ref_rng.random()


def test_through_augment_clip_with_its_probability() -> None:
    clip = _noise_clip()
    only = AugmentConfig(flip_p=0, crop_p=0, color_p=0, temporal_p=0, distant_p=1.0)
    out = augment_clip(clip, np.random.default_rng(1), only)
    assert _high_frequency_energy(out) < 0.5 * _high_frequency_energy(clip)
    half = AugmentConfig(flip_p=0, crop_p=0, color_p=0, temporal_p=0, distant_p=0.5)
    kept = [
        np.array_equal(augment_clip(clip, np.random.default_rng(s), half), clip) for s in range(40)
    ]
    assert 5 < sum(kept) < 35


@pytest.mark.parametrize(
    "bad",
    [
        {"distant_p": 1.5},
        {"distant_p": -0.1},
        {"distant_scale": (0.0, 0.5)},
        {"distant_scale": (0.8, 0.3)},
        {"distant_scale": (0.5, 1.2)},
        {"distant_quality": (0, 50)},
        {"distant_quality": (70, 25)},
        {"distant_quality": (50, 101)},
    ],
)
def test_bad_bounds_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="distant"):
        AugmentConfig(**bad)  # type: ignore[arg-type]


def test_model_json_records_it() -> None:
    d = AugmentConfig(distant_p=0.5).to_dict()
    assert d["distant_p"] == 0.5
    assert d["distant_scale"] == [0.3, 0.8] and d["distant_quality"] == [25, 70]


def test_cli_option_reaches_the_training_options_and_needs_augment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["train", "--data", str(tmp_path), "--out", str(tmp_path / "m")]
    args = build_parser().parse_args([*base, "--augment", "--augment-distant", "0.5"])
    assert _train_options(args, tmp_path / "m").augment_distant_p == 0.5
    args = build_parser().parse_args([*base, "--augment"])
    assert _train_options(args, tmp_path / "m").augment_distant_p == 0.0
    assert main([*base, "--augment-distant", "0.5"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "--augment-distant needs --augment" in err[0]
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([*base, "--augment", "--augment-distant", "1.5"])
    assert exc.value.code == 2
