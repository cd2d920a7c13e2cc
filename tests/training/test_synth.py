"""Synthetic clips: UCF50 layout, determinism, and classes that differ only by motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_daemon.tools.media import read_video
from har_daemon.training.dataset import scan_dataset
from har_daemon.training.synth import (
    LINEAR_SPEED_W_PER_S,
    PAPER_CLASSES,
    generate_dataset,
    write_activity_video,
)
from har_daemon.video.frames import extract_clip, probe_video

FPS = 25


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, groups=3, clips_per_group=2, seed=7)
    return root


def _read_all(path: Path) -> np.ndarray:
    return np.stack(read_video(path))


def _centroids(frames: np.ndarray) -> np.ndarray:
    """The object's centre in each frame: pixels far from the clip's median (its background)."""
    frames = frames.astype(np.int16)
    background = np.median(frames, axis=0)
    out = []
    for f in frames:
        mask = np.abs(f - background).sum(axis=-1) > 60
        ys, xs = np.nonzero(mask)
        out.append((xs.mean(), ys.mean()) if len(xs) else (np.nan, np.nan))
    return np.array(out)


def _steps(frames: np.ndarray) -> np.ndarray:
    """Per-frame centroid displacement, without the jumps where the object wraps around."""
    d = np.diff(_centroids(frames), axis=0)
    d = d[~np.isnan(d).any(axis=1)]
    w = frames.shape[2]
    return d[np.abs(d[:, 0]) < w / 8]


def test_layout_and_names(tmp_path: Path) -> None:
    paths = generate_dataset(tmp_path, groups=3, clips_per_group=2, seed=7)
    assert len(paths) == 4 * 3 * 2 and paths == sorted(paths)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(PAPER_CLASSES)
    assert paths[0].relative_to(tmp_path).as_posix() == "Biking/v_Biking_g01_c01.avi"
    recs = scan_dataset(tmp_path, PAPER_CLASSES)
    assert sorted(r.path for r in recs) == paths
    # Every class in every group: group gNN is a scene shared by all classes.
    for cls in PAPER_CLASSES:
        assert sorted({r.group for r in recs if r.label == cls}) == ["g01", "g02", "g03"]


def test_clips_are_readable_and_vary_in_length(synth_root: Path) -> None:
    counts = []
    for rec in scan_dataset(synth_root):
        clip = extract_clip(rec.path)
        assert clip.frames.shape == (20, 64, 64, 3)
        info = probe_video(rec.path)
        assert (info.width, info.height) == (160, 120) and info.fps == pytest.approx(FPS)
        assert 1.6 * FPS - 1 <= clip.frame_count <= 2.4 * FPS + 1
        counts.append(clip.frame_count)
    assert len(set(counts)) > 3


def test_generation_is_deterministic(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", classes=("Swing",), groups=1, clips_per_group=2, seed=3)
    b = generate_dataset(tmp_path / "b", classes=("Swing",), groups=1, clips_per_group=2, seed=3)
    c = generate_dataset(tmp_path / "c", classes=("Swing",), groups=1, clips_per_group=2, seed=4)
    for pa, pb, pc in zip(a, b, c, strict=True):
        fa, fb = _read_all(pa), _read_all(pb)
        np.testing.assert_array_equal(fa, fb)
        fc = _read_all(pc)
        assert fa.shape != fc.shape or not np.array_equal(fa, fc)


def test_a_single_frame_does_not_tell_the_class(synth_root: Path) -> None:
    """Same objects on the same backgrounds: per-class mean colours agree, single frames' mean
    colours do not classify better than chance with a nearest-class-mean rule."""
    recs = scan_dataset(synth_root, PAPER_CLASSES)
    frame_means = {cls: [] for cls in PAPER_CLASSES}
    for rec in recs:
        frames = extract_clip(rec.path).frames.astype(np.float64)
        frame_means[rec.label].extend(frames.reshape(20, -1, 3).mean(axis=1))
    class_means = np.array([np.mean(frame_means[c], axis=0) for c in PAPER_CLASSES])
    assert np.abs(class_means - class_means.mean(axis=0)).max() < 4.0  # grey levels
    correct = total = 0
    for k, cls in enumerate(PAPER_CLASSES):
        for m in frame_means[cls]:
            correct += int(np.argmin(((class_means - m) ** 2).sum(axis=1)) == k)
            total += 1
    assert correct / total < 0.4  # chance is 0.25


def test_classes_differ_by_motion(synth_root: Path) -> None:
    for rec in scan_dataset(synth_root, PAPER_CLASSES):
        frames = _read_all(rec.path)
        w, h = frames.shape[2], frames.shape[1]
        steps = _steps(frames)
        dx, dy = np.median(steps[:, 0]), np.median(steps[:, 1])
        xy = _centroids(frames)
        if rec.label == "HorseRace":
            assert dx > 0.3 * LINEAR_SPEED_W_PER_S * w / FPS, rec.path.name
        elif rec.label == "Biking":
            assert dx < -0.3 * LINEAR_SPEED_W_PER_S * w / FPS, rec.path.name
        elif rec.label == "Swing":  # back and forth across a good part of the frame
            assert np.nanmax(xy[:, 0]) - np.nanmin(xy[:, 0]) > 0.3 * w, rec.path.name
            assert np.sum(np.diff(np.sign(steps[:, 0])) != 0) >= 1, rec.path.name
            assert np.abs(steps[:, 0]).mean() > np.abs(steps[:, 1]).mean()
        else:  # PizzaTossing: up and down, little sideways
            assert np.nanmax(xy[:, 1]) - np.nanmin(xy[:, 1]) > 0.3 * h, rec.path.name
            assert np.abs(steps[:, 1]).mean() > 3 * np.abs(steps[:, 0]).mean()
        if rec.label in ("HorseRace", "Biking"):
            assert abs(dy) < 0.5


@pytest.mark.parametrize("suffix", [".avi", ".mp4"])
def test_activity_video_changes_activity_at_training_speed(tmp_path: Path, suffix: str) -> None:
    path = write_activity_video(
        tmp_path / f"act{suffix}",
        [("Biking", 3.0), ("HorseRace", 3.0), ("Idle", 1.0), ("PizzaTossing", 2.0)],
        seed=1,
        group_style=2,
    )
    frames = _read_all(path)
    assert frames.shape == (9 * FPS, 120, 160, 3)
    assert probe_video(path).fps == pytest.approx(FPS)
    speed = LINEAR_SPEED_W_PER_S * 160 / FPS  # pixels per frame, as in the training clips
    biking = _steps(frames[: 3 * FPS])
    horse = _steps(frames[3 * FPS : 6 * FPS])
    assert np.median(biking[:, 0]) == pytest.approx(-speed, rel=0.15)
    assert np.median(horse[:, 0]) == pytest.approx(speed, rel=0.15)
    idle = frames[6 * FPS + 2 : 7 * FPS].astype(np.int16)
    toss = frames[7 * FPS :].astype(np.int16)
    # Still object: frames differ by sensor noise only; tossing moves far more pixels.
    moving = lambda f: (np.abs(np.diff(f, axis=0)).sum(axis=-1) > 60).mean()  # noqa: E731
    assert moving(idle) < 0.2 * moving(toss)


def test_optional_cues_give_each_class_its_look(tmp_path: Path) -> None:
    """`cue="color"` / `"shape"` add a single-frame cue; everything else stays the same."""
    kw = {"classes": ("HorseRace", "Biking"), "groups": 1, "clips_per_group": 2, "seed": 5}
    plain = generate_dataset(tmp_path / "m", **kw)
    colour = generate_dataset(tmp_path / "c", cue="color", **kw)
    shaped = generate_dataset(tmp_path / "s", cue="shape", **kw)
    for a, b, c in zip(plain, colour, shaped, strict=True):
        assert (
            probe_video(a).frame_count == probe_video(b).frame_count == probe_video(c).frame_count
        )
    mean_colour = {}
    for p in colour:
        frames = _read_all(p).astype(np.int16)
        moving = np.abs(frames - np.median(frames, axis=0)).sum(axis=-1) > 60
        mean_colour.setdefault(p.parent.name, []).append(frames[moving].mean(axis=0))
    red = np.mean(mean_colour["HorseRace"], axis=0)  # BGR
    blue = np.mean(mean_colour["Biking"], axis=0)
    assert red[2] > red[0] + 60 and blue[0] > blue[2] + 60
    with pytest.raises(ValueError, match="unknown cue"):
        generate_dataset(tmp_path / "x", cue="smell", **kw)  # type: ignore[arg-type]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown activity 'Dancing'"):
        generate_dataset(tmp_path, classes=("Dancing",))
    with pytest.raises(ValueError, match="unknown activity"):
        write_activity_video(tmp_path / "x.avi", [("Dancing", 1.0)])
    with pytest.raises(ValueError, match="suffix"):
        write_activity_video(tmp_path / "x.gif", [("Idle", 1.0)])
