"""Person-centric samples: which regions teach what, how a clip is scored, and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from har_daemon.model.meta import ModelMeta
from har_daemon.model.regions import crop_window, normalised, working_size
from har_daemon.offline.clip import clip_windows, person_frames
from har_daemon.tools.media import make_test_video
from har_daemon.training.dataset import ClipRecord
from har_daemon.training.people import (
    PersonClip,
    build_person_clips,
    clip_probabilities,
    describe,
    region_motion,
    training_indices,
    training_samples,
)

CLASSES = ["fight", "noFight"]


def _window(motion: int) -> np.ndarray:
    """A 4-frame 8x8 window whose frames alternate by `motion` grey levels."""
    w = np.full((4, 8, 8, 3), 100, np.uint8)
    w[1::2] += np.uint8(motion)
    return w


def _clip(label: str, motions: list[int], name: str = "c") -> PersonClip:
    windows = np.stack([_window(m) for m in motions]) if motions else np.zeros((0, 4, 8, 8, 3))
    rec = ClipRecord(Path(f"{label}/{name}.mp4"), label, "g")
    return PersonClip(rec, windows.astype(np.uint8), np.zeros((len(motions), 4)), 0.1)


def test_region_motion_is_the_mean_change_between_frames() -> None:
    assert region_motion(np.stack([_window(0), _window(51)])) == pytest.approx([0.0, 0.2])
    assert region_motion(np.zeros((0, 4, 8, 8, 3), np.uint8)).shape == (0,)


def test_a_fight_clip_teaches_with_its_most_moving_region_and_others_with_all() -> None:
    fight = _clip("fight", [5, 40, 10])  # a bystander, the fight, another bystander
    quiet = _clip("noFight", [5, 40, 10])
    nobody = _clip("fight", [])
    assert training_indices(fight, "fight") == [1]
    assert training_indices(quiet, "fight") == [0, 1, 2]
    assert training_indices(nobody, "fight") == []
    x, labels = training_samples([fight, quiet, nobody], "fight")
    assert labels == ["fight", "noFight", "noFight", "noFight"]
    assert np.array_equal(x[0], fight.windows[1])
    assert describe([fight, quiet, nobody], "fight") == {
        "clips": 3,
        "windows": 6,
        "no_person_clips": {"fight": 1, "noFight": 0},
        "alert_clips_with_several_regions": 1,
    }


def test_a_clip_scores_as_its_most_alarming_region_and_nobody_as_the_other_class() -> None:
    clips = [_clip("fight", [1, 2, 3]), _clip("noFight", []), _clip("noFight", [4])]
    fight_p = {1: 0.2, 2: 0.9, 3: 0.4, 4: 0.3}  # the predictor reads a window's motion level

    def predict(x: np.ndarray) -> np.ndarray:
        levels = np.rint(region_motion(x) * 255).astype(int)
        return np.array([[fight_p[v], 1 - fight_p[v]] for v in levels], np.float32)

    probs = clip_probabilities(predict, clips, CLASSES, "fight")
    assert probs == pytest.approx(np.array([[0.9, 0.1], [0.0, 1.0], [0.3, 0.7]]))


class CountingDetector:
    """One person box in the middle of every frame; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, frame: np.ndarray) -> np.ndarray:
        self.calls += 1
        h, w = frame.shape[:2]
        return np.array([[w * 0.3, h * 0.2, w * 0.6, h * 0.9, 0.9]], np.float32)


def test_person_windows_are_cut_by_the_model_rules_and_cached(tmp_path: Path) -> None:
    clip = make_test_video(tmp_path / "fight" / "a.mp4", 2.0, fps=10, size=(160, 120))
    broken = tmp_path / "fight" / "b.mp4"
    broken.write_bytes(b"not a video")
    recs = [ClipRecord(clip, "fight", "g1"), ClipRecord(broken, "fight", "g2")]
    meta = ModelMeta(
        name="t",
        classes=CLASSES,
        frame_spacing_s=0.1,
        architecture="lrcn",
        input_region="person",
    )
    detector = CountingDetector()
    first = build_person_clips(
        recs, meta, cache_dir=tmp_path / "cache", detector=detector, progress=False
    )
    assert detector.calls == 4  # frames 4, 9, 14, 19 of the 20: every detect_every-th
    assert [c.record.path for c in first.clips] == [clip]
    assert [r.path for r, _ in first.skipped] == [broken]
    (only,) = first.clips
    assert only.windows.shape == (1, 20, 64, 64, 3) and only.windows.dtype == np.uint8
    assert only.regions.shape == (1, 4)

    again = build_person_clips(
        recs[:1], meta, cache_dir=tmp_path / "cache", detector=detector, progress=False
    )
    assert detector.calls == 4  # read from the cache: no detection
    assert np.array_equal(again.clips[0].windows, only.windows)
    assert np.allclose(again.clips[0].regions, only.regions)

    other = meta.model_copy(
        update={"person_region": meta.person_region.model_copy(update={"pad": 0.5})}
    )  # type: ignore[union-attr]
    build_person_clips(
        recs[:1], other, cache_dir=tmp_path / "cache", detector=detector, progress=False
    )
    assert detector.calls == 8  # other crop rules: other windows, cut again


def test_person_frames_are_what_the_windows_are_cut_from(tmp_path: Path) -> None:
    clip = make_test_video(tmp_path / "a.mp4", 2.0, fps=10, size=(320, 240))
    meta = ModelMeta(
        name="t", classes=CLASSES, frame_spacing_s=0.1, architecture="lrcn", input_region="person"
    )
    seen = person_frames(clip, meta, CountingDetector())
    assert seen.frames.shape[0] == meta.sequence_length
    rules = meta.person_region
    assert rules is not None
    assert seen.frames.shape[1:3] == working_size((240, 320), rules.working_width)
    (region,) = seen.regions
    x1, y1, x2, y2 = region
    assert x2 - x1 == y2 - y1 and min(x1, y1) >= 0 and x2 <= 320 and y2 <= 240
    cut = clip_windows(clip, meta, CountingDetector())
    expected = crop_window(seen.frames, region, meta.frame_size, meta.resize_interpolation)
    assert np.array_equal(cut.windows[0], expected)
    assert cut.regions == [normalised(region, (240, 320))]
    whole = meta.model_copy(update={"input_region": "frame", "person_region": None})
    with pytest.raises(ValueError, match="person"):
        person_frames(clip, whole, CountingDetector())
