"""Generated videos for tests and benchmarks, made with ffmpeg from its test patterns."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

from har_daemon.video.ffmpeg import FFMPEG, FFPROBE

__all__ = [
    "FFMPEG",
    "FFPROBE",
    "STREAM_CODEC",
    "STREAM_CONTENT",
    "concat_clips",
    "make_stream_video",
    "make_test_video",
    "read_video",
    "video_duration_s",
    "write_video",
]


_ENCODERS = {
    # yuv420p, no B-frames and a key frame every GOP: decodable by OpenCV, GStreamer and
    # browsers alike, and cheap to cut or loop.
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0"],
    "mpeg4": ["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"],
    # Lossless, any frame size (odd, 1 pixel): the other encoders need even sides. Use .mkv.
    "ffv1": ["-c:v", "ffv1"],
    # What a camera sends: main profile at a camera-like bit rate.
    "h264-camera": ["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "0",
                    "-b:v", "1M", "-maxrate", "1500k", "-bufsize", "2M", "-pix_fmt", "yuv420p"],
}  # fmt: skip
STREAM_CODEC = "h264 (libx264 veryfast, main, no B-frames, GOP 2 s, ~1 Mbit/s)"
STREAM_CONTENT = "ffmpeg testsrc2 (moving pattern) with temporal noise"


def make_test_video(
    path: str | Path,
    seconds: float,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "h264",
    pattern: str = "testsrc2",
    *,
    noise: int = 0,
    gop_s: float = 1.0,
) -> Path:
    """Write a moving test pattern of `seconds` at `fps` and `size` (width, height) to `path`.

    `pattern` is an ffmpeg lavfi source (`testsrc2`, `testsrc`, `smptebars`, `mandelbrot`...);
    `noise` adds temporal noise of that strength, like a sensor's; a key frame every `gop_s`.
    The container follows the suffix of `path` (use `.mp4`). Returns `path`.
    """
    if codec not in _ENCODERS:
        raise ValueError(f"codec must be one of {sorted(_ENCODERS)}, not {codec!r}")
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be positive")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    filters = ["-vf", f"noise=alls={noise}:allf=t+u"] if noise else []
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"{pattern}=size={width}x{height}:rate={fps}",
        *filters, "-t", f"{seconds}",
        *_ENCODERS[codec],
        "-g", str(max(1, round(gop_s * fps))),
        "-movflags", "+faststart",
        str(path),
    ]  # fmt: skip
    timeout = 120 + seconds  # a long benchmark stream takes a while at 640x480
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()}")
    return path


def make_stream_video(path: Path, width: int, height: int, fps: int, seconds: float) -> Path:
    """A camera-like stream (`STREAM_CODEC`, `STREAM_CONTENT`) for the real-time benchmark."""
    return make_test_video(
        path, seconds, fps, (width, height), codec="h264-camera", noise=6, gop_s=2.0
    )


def camera_encode(src: Path, dst: Path, fps: int = 25, gop_s: float = 2.0) -> Path:
    """`src` re-encoded as a camera sends it (`STREAM_CODEC`), for streams of real content."""
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", str(src),
        *_ENCODERS["h264-camera"], "-g", str(max(1, round(gop_s * fps))), "-an",
        "-movflags", "+faststart", str(dst),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not dst.exists():
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()}")
    return dst


def write_video(
    path: Path, frames: Iterable[np.ndarray], fps: float, size: tuple[int, int]
) -> Path:
    """BGR `frames` of `size` (width, height) encoded as a camera sends them (`STREAM_CODEC`,
    a key frame every 2 s), piped to ffmpeg as they come: nothing is held in memory."""
    width, height = size
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}", "-r", f"{fps:g}",
        "-i", "-", *_ENCODERS["h264-camera"], "-g", str(max(1, round(2 * fps))),
        "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    with (
        tempfile.TemporaryFile() as err,
        subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err) as proc,
    ):
        assert proc.stdin is not None
        try:
            for frame in frames:
                if frame.shape != (height, width, 3):
                    raise ValueError(f"frame {frame.shape} is not {height}x{width}x3")
                proc.stdin.write(np.ascontiguousarray(frame, dtype=np.uint8).tobytes())
        except BaseException:
            proc.kill()
            raise
        finally:
            proc.stdin.close()
        code = proc.wait(timeout=300)
        err.seek(0)
        message = err.read().decode(errors="replace").strip()
    if code != 0 or not path.exists():
        raise RuntimeError(f"ffmpeg failed ({code}): {message}")
    return path


def concat_clips(
    clips: list[Path], path: str | Path, fps: int = 25, size: tuple[int, int] = (640, 480)
) -> list[tuple[float, float]]:
    """Join `clips` into one H.264 stream at `fps` and `size`; return each clip's (start, end) s.

    Clips of mixed resolutions and rates are scaled to one size (aspect not kept: the model
    sees every clip squeezed to a square anyway) and resampled to one rate, as a camera would
    deliver them. Audio is dropped.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    inputs: list[str] = []
    chains: list[str] = []
    for i, clip in enumerate(clips):
        inputs += ["-i", str(clip)]
        chains.append(f"[{i}:v:0]scale={width}:{height},setsar=1,fps={fps}[v{i}]")
    joined = "".join(f"[v{i}]" for i in range(len(clips)))
    graph = ";".join(chains) + f";{joined}concat=n={len(clips)}:v=1:a=0[out]"
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *inputs,
        "-filter_complex", graph, "-map", "[out]",
        *_ENCODERS["h264"], "-g", str(fps), "-movflags", "+faststart", str(path),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"ffmpeg concat failed ({result.returncode}): {result.stderr.strip()}")
    spans: list[tuple[float, float]] = []
    t = 0.0
    for clip in clips:
        # The fps filter keeps each clip's duration, so the spans follow from the durations.
        duration = video_duration_s(clip)
        spans.append((t, t + duration))
        t += duration
    return spans


def video_duration_s(path: str | Path) -> float:
    """Duration of the first video stream, from ffprobe (container headers can be wrong)."""
    cmd = [
        FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_packets",
        "-show_entries", "stream=nb_read_packets,r_frame_rate,duration", "-of", "json", str(path),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    stream = json.loads(out)["streams"][0]
    if stream.get("duration") not in (None, "N/A"):
        return float(stream["duration"])
    num, den = (float(v) for v in stream["r_frame_rate"].split("/"))
    return int(stream["nb_read_packets"]) * den / num


def read_video(path: str | Path) -> list[np.ndarray]:
    """Every frame OpenCV decodes from `path`, BGR, in order (empty when it cannot open it)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                return frames
            frames.append(frame)
    finally:
        cap.release()
