"""Encoding a clip: OpenCV writes MPEG-4, then ffmpeg may re-encode it to H.264.

OpenCV's bundled FFmpeg writes only MPEG-4 Part 2, which browsers and Home Assistant's player
do not play. With codec "h264" (or "auto" when the host's `ffmpeg` has libx264) each finished
file is re-encoded to H.264 with the index at the front (`+faststart`, so a player starts
before the download ends), on one thread so inference keeps the cores. A failed re-encode
keeps the MPEG-4 file: a clip is never lost to its codec.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
import typing
from pathlib import Path
from typing import Literal, Protocol

import cv2
import numpy as np

from har_daemon.config.outputs import ClipCodec
from har_daemon.core.geometry import fit_width_size
from har_daemon.core.logs import get_logger
from har_daemon.outputs.clips.files import ClipsError

log = get_logger(__name__)

Codec = ClipCodec
CODECS: tuple[str, ...] = typing.get_args(ClipCodec)
FOURCC = "mp4v"  # MPEG-4 Part 2: what opencv-python-headless's bundled FFmpeg can encode
_PROBE_TIMEOUT_S = 15


def h264_encoder() -> str | None:
    """The `ffmpeg` on PATH when it can encode H.264 (libx264), else None."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    try:
        listed = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-encoders"],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if re.search(r"\blibx264\b", listed) else None


def resolve_codec(codec: str) -> str | None:
    """The ffmpeg to re-encode with, or None to keep OpenCV's MPEG-4.

    Raises `ClipsError` when "h264" is asked for and no ffmpeg with libx264 is on PATH; "auto"
    then falls back to MPEG-4 with a warning.
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    if codec == "mp4v":
        return None
    exe = h264_encoder()
    if exe is None and codec == "h264":
        raise ClipsError(
            "codec 'h264' needs ffmpeg with libx264 on PATH (Debian/Ubuntu: apt install "
            "ffmpeg); or set codec = 'mp4v'"
        )
    if exe is None:
        log.warning(
            "clips.h264_unavailable",
            reason="no ffmpeg with libx264 on PATH",
            codec="mp4v",
            note="browsers and Home Assistant may not play MPEG-4 Part 2 clips",
        )
    return exe


def clip_size(width: int, height: int, max_width: int | None) -> tuple[int, int]:
    """(width, height) of a clip whose first frame is `width` x `height`: scaled down to
    `max_width` (aspect kept), and even, as MPEG-4 encoders and most players need."""
    width, height = fit_width_size(width, height, max_width)
    return max(2, width - width % 2), max(2, height - height % 2)


class FrameSink(Protocol):
    """What `ClipWriter` writes to: a `cv2.VideoWriter`, or a list-like fake in tests."""

    def write(self, image: np.ndarray, /) -> None: ...

    def release(self) -> None: ...


class ClipWriter:
    """One clip's frames, placed by their timestamps so the clip plays in real time whatever
    rate they arrive at: early extra frames are skipped, gaps repeat the previous frame."""

    def __init__(self, sink: FrameSink, size: tuple[int, int], fps: float) -> None:
        self.sink = sink
        self.size = size  # (width, height)
        self.fps = fps
        self.written = 0
        self._t0: float | None = None
        self._last: np.ndarray | None = None

    @classmethod
    def open(
        cls, path: Path, fps: float, first_frame: np.ndarray, max_width: int | None
    ) -> ClipWriter | None:
        """An MPEG-4 file at `path` sized from `first_frame`; None (logged) if OpenCV fails."""
        height, width = first_frame.shape[:2]
        size = clip_size(width, height, max_width)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*FOURCC), fps, size)
        if not writer.isOpened():
            writer.release()
            log.error("clips.open_failed", path=str(path), size=list(size))
            return None
        return cls(writer, size, fps)

    def add(self, frame: np.ndarray, t: float) -> bool:
        """Write `frame` taken at `t` (after repeats filling any gap); False if skipped."""
        if self._t0 is None:
            self._t0 = t
        index = round((t - self._t0) * self.fps)
        if index < self.written:
            return False
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if (frame.shape[1], frame.shape[0]) != self.size:
            # A camera that reconnected at another resolution: keep the clip's first size.
            frame = cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        frame = np.ascontiguousarray(frame)
        while self.written < index and self._last is not None:
            self.sink.write(self._last)
            self.written += 1
        self.sink.write(frame)
        self.written += 1
        self._last = frame
        return True

    def release(self) -> None:
        """Finish the file (MP4 writes its index now)."""
        self.sink.release()
        self._last = None


Transcoded = tuple[Literal["h264", "mp4v"], str | None]
"""The clip's codec afterwards, and why the re-encode failed (None: it did not fail)."""


class H264Transcoder:
    """Re-encodes finished clips in place with ffmpeg, one at a time; `stop` (shutdown) ends
    the one under way and refuses new ones, so a stop never waits on an encoder."""

    def __init__(self, exe: str) -> None:
        self.exe = exe
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._stopping = False

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            if self._proc is not None:
                with contextlib.suppress(ProcessLookupError):
                    self._proc.terminate()

    def command(self, source: Path, out: Path) -> list[str]:
        """Single-threaded, so a re-encode never starves inference of cores."""
        return [
            self.exe, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-i", str(source), "-an",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            "-threads", "1", "-movflags", "+faststart", str(out),
        ]  # fmt: skip

    def transcode(self, path: Path, seconds: float) -> Transcoded:
        """Re-encode the `seconds`-long MPEG-4 file at `path` to H.264 in place."""
        out = path.with_name(path.stem + ".h264.mp4")
        reason = ""
        try:
            with self._lock:
                if self._stopping:
                    return "mp4v", None
                proc = self._proc = subprocess.Popen(
                    self.command(path, out),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            try:
                _, stderr = proc.communicate(timeout=60 + 4 * seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                stderr = "ffmpeg timed out"
            finally:
                with self._lock:
                    self._proc = None
            if proc.returncode == 0 and out.is_file() and out.stat().st_size > 0:
                os.replace(out, path)
                return "h264", None
            lines = (stderr or "").strip().splitlines()
            reason = lines[-1][:300] if lines else f"ffmpeg exited {proc.returncode}"
            if self._stopping:
                reason = "stopped for shutdown"
        except OSError as exc:
            reason = str(exc)
        with contextlib.suppress(OSError):
            out.unlink()
        return "mp4v", reason
