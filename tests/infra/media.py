"""Test videos made with ffmpeg."""

from __future__ import annotations

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
