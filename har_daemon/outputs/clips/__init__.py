"""Event clips: a short MP4 of each event, pre-roll to post-roll, within a disk budget.

`recorder` (the `ClipRecorder` and its writer thread), `encoder` (OpenCV's MPEG-4 writer and
the optional H.264 re-encode), `retention` (pruning by age and bytes), `files` (names and the
`.partial/` directory).
"""

from __future__ import annotations

from har_daemon.outputs.clips.encoder import CODECS, Codec, h264_encoder
from har_daemon.outputs.clips.files import PARTIAL_DIR, ClipsError, clip_filename
from har_daemon.outputs.clips.recorder import ClipRecorder, ClipStats

__all__ = [
    "CODECS",
    "PARTIAL_DIR",
    "ClipRecorder",
    "ClipStats",
    "ClipsError",
    "Codec",
    "clip_filename",
    "h264_encoder",
]
