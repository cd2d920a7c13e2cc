"""Frame extraction: which frames are sampled, how they are scaled, and what a bad file does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from har_daemon.core.errors import VideoError
from har_daemon.video.frames import (
    DEFAULT_FPS,
    TimedFrames,
    extract_clip,
    frames_extraction,
    probe_video,
    sample_indices,
)

STEP = 5  # brightness per frame index: MJPEG keeps a flat frame within +-2 of its value


def _index_frames(n: int, size_wh: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    """Frames whose brightness encodes their index: frame i is flat grey STEP * i."""
    w, h = size_wh
    assert STEP * (n - 1) <= 255
    return [np.full((h, w, 3), STEP * i, dtype=np.uint8) for i in range(n)]


def _write_avi(path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _decoded_index(frame: np.ndarray) -> int:
    return round(float(frame.mean()) / STEP)


@pytest.mark.parametrize(
    ("count", "seq_len"), [(20, 20), (21, 20), (45, 20), (50, 20), (301, 20), (7, 3), (100, 1)]
)
def test_sample_indices_span_the_whole_clip_evenly(count: int, seq_len: int) -> None:
    idx = sample_indices(count, seq_len)
    assert idx.shape == (seq_len,)
    assert idx[0] == 0
    if seq_len > 1:
        assert idx[-1] == count - 1
        gaps = np.diff(idx)
        assert np.all(gaps >= 1)  # strictly increasing
        assert gaps.max() - gaps.min() <= 1  # as even as integer indices allow


def test_sample_indices_repeat_frames_when_the_clip_is_shorter() -> None:
    idx = sample_indices(5, 20)
    assert len(idx) == 20
    assert idx[0] == 0 and idx[-1] == 4
    assert np.all(np.diff(idx) >= 0)
    with pytest.raises(ValueError):
        sample_indices(0, 20)
    with pytest.raises(ValueError):
        sample_indices(10, 0)


def test_extract_clip_samples_the_planned_frames(tmp_path: Path) -> None:
    path = _write_avi(tmp_path / "index.avi", _index_frames(45))
    clip = extract_clip(path, seq_len=10, size_hw=(32, 40))
    assert clip.frames.shape == (10, 32, 40, 3)
    assert clip.frames.dtype == np.uint8
    assert clip.frame_count == 45
    assert clip.fps == pytest.approx(25.0)
    np.testing.assert_array_equal(clip.indices, sample_indices(45, 10))
    # The frames really are the planned ones, first to last.
    assert [_decoded_index(f) for f in clip.frames] == clip.indices.tolist()
    assert clip.spacing_s == pytest.approx((44 / 9) / 25.0)


def test_frames_extraction_is_float_in_unit_range(tmp_path: Path) -> None:
    path = _write_avi(tmp_path / "index.avi", _index_frames(50, (160, 120)))
    x = frames_extraction(path)
    assert x.shape == (20, 64, 64, 3)
    assert x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.max() > 0.8  # the last frame (brightness 245) is sampled
    np.testing.assert_allclose(x, extract_clip(path).frames / 255.0, atol=1e-6)


def test_too_short_clip_is_a_video_error(tmp_path: Path) -> None:
    path = _write_avi(tmp_path / "short.avi", _index_frames(12))
    with pytest.raises(VideoError, match=r"short\.avi: clip too short: 12 frames, need 20"):
        extract_clip(path)


@pytest.mark.parametrize("name", ["notes.avi", "empty.mp4"])
def test_not_a_video_is_a_video_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"this is not a video\n" * 50 if name == "notes.avi" else b"")
    with pytest.raises(VideoError) as err:
        extract_clip(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(VideoError, match=name):
        probe_video(path)


def test_missing_file_and_folder_are_video_errors(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no such video file"):
        extract_clip(tmp_path / "missing.avi")
    with pytest.raises(VideoError, match="is a directory"):
        probe_video(tmp_path)


def test_probe_reports_the_file(tmp_path: Path) -> None:
    path = _write_avi(tmp_path / "p.avi", _index_frames(30, (80, 60)), fps=10.0)
    info = probe_video(path)
    assert (info.frame_count, info.width, info.height) == (30, 80, 60)
    assert info.fps == pytest.approx(10.0)
    assert info.duration_s == pytest.approx(3.0)


def test_header_that_overcounts_is_corrected(tmp_path: Path) -> None:
    """A truncated AVI keeps its header's frame count; sampling must follow the real frames."""
    full = _write_avi(tmp_path / "full.avi", _index_frames(50))
    data = full.read_bytes()
    # Cut just before the 31st frame's chunk ("00dc"), so 30 whole frames remain.
    movi = data.index(b"movi")
    chunks = [i for i in range(movi, len(data)) if data.startswith(b"00dc", i)]
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: chunks[30]])
    assert probe_video(cut).frame_count == 50  # the header's claim
    real = probe_video(cut, exact=True).frame_count
    assert real == 30

    clip = extract_clip(cut, seq_len=10)
    assert clip.frame_count == real
    np.testing.assert_array_equal(clip.indices, sample_indices(real, 10))
    assert [_decoded_index(f) for f in clip.frames] == clip.indices.tolist()


def test_stream_without_a_frame_count_is_counted(tmp_path: Path) -> None:
    """A raw MJPEG stream has no container: no frame count, no frame rate."""
    path = tmp_path / "raw.mjpeg"
    with path.open("wb") as fh:
        for f in _index_frames(40):
            ok, jpg = cv2.imencode(".jpg", f)
            assert ok
            fh.write(jpg.tobytes())
    info = probe_video(path)
    assert info.frame_count == 40
    clip = extract_clip(path, seq_len=8)
    assert clip.frame_count == 40
    assert [_decoded_index(f) for f in clip.frames] == sample_indices(40, 8).tolist()
    assert clip.fps > 0
    assert clip.spacing_s == pytest.approx(float(np.mean(np.diff(clip.indices))) / clip.fps)
    assert DEFAULT_FPS == 25.0


def test_timed_frames_play_every_frame_on_the_files_own_clock(tmp_path: Path) -> None:
    frames = TimedFrames(_write_avi(tmp_path / "t.avi", _index_frames(12), fps=10.0))
    played = [(t, _decoded_index(frame)) for t, frame in frames]
    assert played == [(pytest.approx(i / 10.0), i) for i in range(12)]
    assert frames.count == 12 and frames.duration_s == pytest.approx(1.2)
    with pytest.raises(VideoError, match="no such video file"):
        list(TimedFrames(tmp_path / "missing.avi"))
