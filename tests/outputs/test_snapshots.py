"""Snapshots: real JPEGs decoded back, the caption really drawn, and the best-window pick."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from har_daemon.outputs.snapshots import BestWindow, encode_snapshot, snapshot_lines
from tests.infra.media import make_test_video


def _video_frame(tmp_path: Path, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    video = make_test_video(tmp_path / "pattern.mp4", 0.2, fps=10, size=size)
    cap = cv2.VideoCapture(str(video))
    ok, frame = cap.read()
    cap.release()
    assert ok
    return frame


def _decode(jpeg: bytes) -> np.ndarray:
    assert jpeg[:2] == b"\xff\xd8" and jpeg[-2:] == b"\xff\xd9"
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def test_snapshot_is_a_jpeg_scaled_to_max_width(tmp_path: Path) -> None:
    frame = _video_frame(tmp_path)
    before = frame.copy()
    image = _decode(encode_snapshot(frame, max_width=640, quality=85))
    assert image.shape == (360, 640, 3)
    # Without a caption the picture is the frame, give or take JPEG and scaling.
    expected = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
    assert np.abs(image.astype(int) - expected).mean() < 6
    assert np.array_equal(frame, before)  # the history's frame is never drawn on


def test_small_frames_keep_their_size_and_quality_changes_the_size(tmp_path: Path) -> None:
    frame = _video_frame(tmp_path, (320, 240))
    low = encode_snapshot(frame, max_width=640, quality=20)
    high = encode_snapshot(frame, max_width=640, quality=95)
    assert _decode(low).shape == _decode(high).shape == (240, 320, 3)
    assert len(low) < len(high)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert _decode(encode_snapshot(grey, max_width=640, quality=80)).shape == (240, 320, 3)


def test_overlay_draws_a_dark_box_with_light_text_in_the_corner(tmp_path: Path) -> None:
    frame = np.full((480, 640, 3), 200, np.uint8)
    lines = snapshot_lines(1_700_000_000.0, "front door", "fighting", 0.873)
    assert lines[1:] == ["front door", "fighting 87%"]
    assert lines[0].startswith("2023-11-1")
    plain = _decode(encode_snapshot(frame, max_width=640, quality=90))
    marked = _decode(encode_snapshot(frame, max_width=640, quality=90, overlay_lines=lines))
    assert marked.shape == plain.shape
    corner = marked[:60, :150].astype(int)
    assert corner.mean() < 120  # darkened box behind the text...
    assert (corner.max(axis=2) > 230).sum() > 50  # ...with bright text on it
    # The rest of the picture is untouched.
    assert np.abs(marked[300:, 300:].astype(int) - plain[300:, 300:]).max() <= 3
    # Non-ASCII names still produce a caption rather than an error.
    encode_snapshot(frame, max_width=640, quality=90, overlay_lines=["Küche", "Ärger 50%"])


def test_bad_frames_are_rejected() -> None:
    with pytest.raises(ValueError, match="BGR"):
        encode_snapshot(np.zeros((10, 10, 4), np.uint8), max_width=64, quality=80)


def test_best_window_picks_the_highest_recent_score_for_the_class() -> None:
    best = BestWindow(3)
    assert best.best(0) is None
    best.add(1.0, np.array([0.2, 0.8]))
    best.add(2.0, np.array([0.9, 0.1]))
    best.add(3.0, np.array([0.5, 0.5]))
    assert best.best(0) == 2.0
    assert best.best(1) == 1.0
    best.add(4.0, np.array([0.1, 0.6]))  # window 1.0 falls out of the last 3
    assert len(best) == 3
    assert best.best(1) == 4.0
    best.add(5.0, np.array([0.9, 0.0]))  # a tie goes to the latest window
    assert best.best(0) == 5.0
    assert best.best(7) is None  # an index the model does not have
    best.clear()
    assert best.best(0) is None and len(best) == 0
