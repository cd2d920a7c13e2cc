"""Test videos made with ffmpeg."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"

_ENCODERS = {
    # yuv420p, no B-frames and a key frame every second: decodable by OpenCV, GStreamer and
    # browsers alike, and cheap to cut or loop.
    "h264": ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-bf", "0"],
    "mpeg4": ["-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p"],
}


def make_test_video(
    path: str | Path,
    seconds: float,
    fps: int = 25,
    size: tuple[int, int] = (320, 240),
    codec: str = "h264",
    pattern: str = "testsrc2",
) -> Path:
    """Write a moving test pattern of `seconds` at `fps` and `size` (width, height) to `path`.

    `pattern` is an ffmpeg lavfi source (`testsrc2`, `testsrc`, `smptebars`, `mandelbrot`...).
    The container follows the suffix of `path` (use `.mp4`). Returns `path`.
    """
    if codec not in _ENCODERS:
        raise ValueError(f"codec must be one of {sorted(_ENCODERS)}, not {codec!r}")
    if seconds <= 0 or fps <= 0:
        raise ValueError("seconds and fps must be positive")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    cmd = [
        FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", f"{pattern}=size={width}x{height}:rate={fps}",
        "-t", f"{seconds}",
        *_ENCODERS[codec],
        "-g", str(fps),
        "-movflags", "+faststart",
        str(path),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0 or not path.exists():
        raise RuntimeError(f"ffmpeg failed ({result.returncode}): {result.stderr.strip()}")
    return path


def probe_video(path: str | Path) -> tuple[int, int, float, int]:
    """(width, height, fps, frame count) of the first video stream of `path`, read by OpenCV."""
    import cv2

    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise RuntimeError(f"OpenCV cannot open {path}")
        return (
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            float(cap.get(cv2.CAP_PROP_FPS)),
            int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
        )
    finally:
        cap.release()


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
    ffprobe = shutil.which("ffprobe") or "/usr/bin/ffprobe"
    cmd = [
        ffprobe, "-v", "error", "-select_streams", "v:0", "-count_packets",
        "-show_entries", "stream=nb_read_packets,r_frame_rate,duration", "-of", "json", str(path),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    stream = json.loads(out)["streams"][0]
    if stream.get("duration") not in (None, "N/A"):
        return float(stream["duration"])
    num, den = (float(v) for v in stream["r_frame_rate"].split("/"))
    return int(stream["nb_read_packets"]) * den / num
