"""Where the host's FFmpeg programs are.

The daemon decodes through OpenCV; the stream builder, the benchmark's media and the test
harness call `ffmpeg`/`ffprobe` themselves, through these paths (found once, at import).
"""

from __future__ import annotations

import shutil

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
