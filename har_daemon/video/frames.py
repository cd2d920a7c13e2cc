"""Reading a video file into the fixed-length frame sequence a model is trained on.

Frames are sampled evenly over the whole clip, first frame to last (`sample_indices`), decoded
sequentially (`grab()` every frame, `retrieve()` only the sampled ones: seeking with
CAP_PROP_POS_FRAMES lands on the wrong frame for many codecs) and resized with
`preprocess.resize_frame`, the same function serving uses.

The container's frame count (CAP_PROP_FRAME_COUNT) is only a hint: it can be too high (a
truncated file), too low, zero or garbage (raw streams). When the stream disagrees with it, the
clip is read again with the real count, so the samples always span the frames that decode.

Only cv2 and numpy are imported here: dataset workers import this module in fresh processes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from har_daemon.core.errors import VideoError
from har_daemon.model.preprocess import Interpolation, resize_frame, to_model_input

DEFAULT_FPS = 25.0
"""Assumed when a file reports no usable frame rate (raw streams, broken headers)."""

_MAX_PLAUSIBLE_FRAMES = 100_000_000
_MAX_PLAUSIBLE_FPS = 1000.0
_MAX_READ_ATTEMPTS = 3


@dataclass(frozen=True)
class VideoInfo:
    """What a video file says about itself (frame count verified when the header has none)."""

    frame_count: int
    fps: float
    width: int
    height: int
    duration_s: float


@dataclass(frozen=True)
class ClipFrames:
    """`seq_len` frames sampled evenly over a clip, resized, uint8 BGR (seq_len, h, w, 3)."""

    frames: np.ndarray
    fps: float
    frame_count: int
    indices: np.ndarray
    spacing_s: float


def sample_indices(frame_count: int, seq_len: int) -> np.ndarray:
    """`seq_len` frame indices spread evenly from the first frame (0) to the last (count - 1).

    Strictly increasing when `frame_count >= seq_len`; with fewer frames some repeat.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    if frame_count < 1:
        raise ValueError(f"frame_count must be >= 1, got {frame_count}")
    if seq_len == 1:
        return np.zeros(1, dtype=np.int64)
    positions = np.linspace(0.0, frame_count - 1, seq_len)
    # Round half up (not numpy's half-to-even) so the pattern does not depend on parity.
    return np.floor(positions + 0.5).astype(np.int64)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: no such video file")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video file")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path}: permission denied")


def _backend() -> int:
    # FFmpeg reads every container we meet; CAP_ANY would also try the image-sequence reader.
    try:
        if cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG):
            return cv2.CAP_FFMPEG
    except AttributeError:  # pragma: no cover - very old OpenCV
        pass
    return cv2.CAP_ANY  # pragma: no cover - OpenCV built without FFmpeg


def _open(path: Path) -> cv2.VideoCapture:
    cap = cv2.VideoCapture(str(path), _backend())
    if not cap.isOpened():
        cap.release()
        raise VideoError(f"{path}: cannot open as a video (not a video file, or unsupported codec)")
    return cap


def _meta_count(cap: cv2.VideoCapture) -> int | None:
    """The header's frame count, or None where it is absent or nonsense."""
    value = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    if not np.isfinite(value) or value < 1 or value > _MAX_PLAUSIBLE_FRAMES:
        return None
    return round(value)


def usable_fps(value: float | None) -> float:
    """A container's frame rate, or `DEFAULT_FPS` where it is absent or nonsense: the one rule
    for probing, extraction and the daemon's capture, so they agree on a file's time."""
    if value is None or not np.isfinite(value) or value <= 0 or value > _MAX_PLAUSIBLE_FPS:
        return DEFAULT_FPS
    return float(value)


def _meta_fps(cap: cv2.VideoCapture) -> float:
    return usable_fps(cap.get(cv2.CAP_PROP_FPS))


class TimedFrames:
    """Every frame of a video file in order, with its time on the file's own clock (frame n at
    n / fps, `usable_fps`'s rate): a file played as a camera would see it, only faster.

    Iterating opens the file (a `VideoError` naming the path when it cannot be read); `count`
    and `duration_s` then tell how much of it has been read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.fps = DEFAULT_FPS
        self.count = 0

    @property
    def duration_s(self) -> float:
        return self.count / self.fps

    def __iter__(self) -> Iterator[tuple[float, np.ndarray]]:
        _check_path(self.path)
        cap = _open(self.path)
        try:
            self.fps, self.count = _meta_fps(cap), 0
            while True:
                ok, frame = cap.read()
                if not ok:
                    return
                t = self.count / self.fps
                self.count += 1
                yield t, frame
        finally:
            cap.release()


def _count_frames(path: Path) -> int:
    """Count the frames that can be grabbed, reading the whole stream."""
    cap = _open(path)
    try:
        n = 0
        while cap.grab():
            n += 1
        return n
    finally:
        cap.release()


def _header(path: Path) -> tuple[float, int | None]:
    """The container's frame rate and frame count (None when implausible), from its header."""
    _check_path(path)
    cap = _open(path)
    try:
        return _meta_fps(cap), _meta_count(cap)
    finally:
        cap.release()


def probe_video(path: str | os.PathLike[str], exact: bool = False) -> VideoInfo:
    """Open a video file, check that its first frame decodes, and report its properties.

    The frame count comes from the header when it has a plausible one, else (or with
    `exact=True`) from reading the whole stream. Raises `VideoError` (naming the path) for
    missing, unreadable or non-video files.
    """
    p = Path(path)
    _check_path(p)
    cap = _open(p)
    try:
        fps = _meta_fps(cap)
        count = _meta_count(cap)
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        ok, frame = cap.read()
        if not ok or frame is None:
            raise VideoError(f"{p}: no decodable frame (empty, corrupt or not a video)")
        if width <= 0 or height <= 0:
            height, width = frame.shape[:2]
    finally:
        cap.release()
    if count is None or exact:
        count = _count_frames(p)
    return VideoInfo(frame_count=count, fps=fps, width=width, height=height, duration_s=count / fps)


def _decode(
    path: Path,
    indices: np.ndarray,
    prepare: Callable[[np.ndarray], np.ndarray],
) -> tuple[list[np.ndarray], int | None]:
    """Decode the frames at `indices` (increasing) in one sequential pass.

    Returns the resized frames and, when the stream did not have exactly `indices[-1] + 1`
    frames, the real number of decodable frames (else None).
    """
    cap = _open(path)
    try:
        frames: list[np.ndarray] = []
        pos = 0  # index of the next frame to grab
        j = 0
        n = len(indices)
        while j < n:
            if not cap.grab():
                return frames, pos  # stream ended early: only `pos` frames exist
            if pos == indices[j]:
                ok, frame = cap.retrieve()
                if not ok or frame is None:
                    return frames, pos  # treat an undecodable frame as the end of the clip
                resized = prepare(frame)
                while j < n and indices[j] == pos:  # repeated indices share one decode
                    frames.append(resized)
                    j += 1
            pos += 1
        # The header may undercount: if more frames follow, count them all.
        extra = 0
        while cap.grab():
            extra += 1
        return frames, (pos + extra) if extra else None
    finally:
        cap.release()


def extract_clip(
    path: str | os.PathLike[str],
    seq_len: int = 20,
    size_hw: tuple[int, int] = (64, 64),
    interpolation: Interpolation = "area",
    prepare: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ClipFrames:
    """Sample `seq_len` frames evenly over the whole clip, resized to `size_hw`, uint8 BGR
    (or made what `prepare` makes of a decoded frame: a person-centric model's working frame).

    Raises `VideoError` for missing, unreadable or non-video files and for clips with fewer than
    `seq_len` decodable frames.
    """
    p = Path(path)
    fps, count = _header(p)
    if count is not None and count < seq_len:
        count = None  # the header may undercount: verify before calling the clip too short
    for _ in range(_MAX_READ_ATTEMPTS):
        if count is None:
            count = _count_frames(p)
        if count < seq_len:
            raise VideoError(f"{p}: clip too short: {count} frames, need {seq_len}")
        indices = sample_indices(count, seq_len)
        frames, real_count = _decode(
            p,
            indices,
            prepare or partial(resize_frame, size_hw=size_hw, interpolation=interpolation),
        )
        if real_count is None:
            gap = float(np.mean(np.diff(indices))) if seq_len > 1 else 0.0
            return ClipFrames(
                frames=np.stack(frames),
                fps=fps,
                frame_count=count,
                indices=indices,
                spacing_s=gap / fps,
            )
        if real_count == 0:
            raise VideoError(f"{p}: no decodable frame (empty, corrupt or not a video)")
        count = real_count  # header was wrong: read again with the real count
    raise VideoError(f"{p}: frame count changes between reads; the file may still be growing")


def frames_extraction(
    path: str | os.PathLike[str],
    seq_len: int = 20,
    size_hw: tuple[int, int] = (64, 64),
    interpolation: Interpolation = "area",
) -> np.ndarray:
    """The tutorial's function: a clip as a float32 (seq_len, h, w, 3) BGR array in [0, 1]."""
    return to_model_input(extract_clip(path, seq_len, size_hw, interpolation).frames)
