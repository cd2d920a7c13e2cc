"""[snapshots] and [clips]: what the daemon keeps of an event besides its messages."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from har_daemon.config.paths import default_state_dir
from har_daemon.config.types import ExpandedPath, FrameWidth, Seconds, Section, SizeBytes

ClipCodec = Literal["auto", "h264", "mp4v"]
"""'h264' re-encodes with the host's ffmpeg; 'mp4v' is what OpenCV writes itself; 'auto': h264
when ffmpeg with libx264 is on PATH, else mp4v."""


class SnapshotsConfig(Section):
    """[snapshots]"""

    enabled: bool = Field(
        False, title="Snapshots", description="Publish a JPEG of the frame that started an event."
    )
    max_width: FrameWidth = Field(
        640,
        title="Snapshot width",
        description="Frames wider than this are scaled down (aspect kept) before encoding.",
    )
    quality: int = Field(
        85, ge=10, le=100, title="JPEG quality", description="JPEG quality, 10 (small) to 100."
    )
    overlay: bool = Field(
        True,
        title="Overlay",
        description="Draw the time, camera, activity and confidence onto the snapshot.",
    )


CLIPS_SUBDIR = "clips"
"""Where clips go without a `[clips] path`: this folder inside `[spool] path`, so one
directory (systemd's StateDirectory=, or the one an operator chose) holds all the daemon
writes. `DaemonConfig` applies it; a lone `ClipsConfig` uses the default state directory."""


def _default_clips_dir() -> Path:
    return default_state_dir() / CLIPS_SUBDIR


class ClipsConfig(Section):
    """[clips]"""

    enabled: bool = Field(False, title="Clips", description="Save a video clip of each event.")
    path: ExpandedPath = Field(
        default_factory=_default_clips_dir,
        title="Clip directory",
        description="Default: 'clips' inside [spool] path (itself the state directory unless set).",
    )
    pre_roll_s: Seconds = Field(
        5.0,
        ge=0,
        le=60,
        title="Pre-roll",
        description="Seconds of video before the event's start included in its clip.",
    )
    post_roll_s: Seconds = Field(
        2.0,
        ge=0,
        le=60,
        title="Post-roll",
        description="Seconds of video after the event's end included in its clip.",
    )
    max_clip_s: Seconds = Field(
        120.0,
        ge=1,
        le=3600,
        title="Longest clip",
        description="A clip is closed after this long even if the activity goes on.",
    )
    fps: float = Field(
        10.0,
        ge=1,
        le=30,
        title="Clip frame rate",
        description="Frames per second kept for clips (at most the camera's own rate).",
    )
    max_width: FrameWidth = Field(
        640,
        title="Clip width",
        description="Frames wider than this are scaled down (aspect kept) before writing.",
    )
    codec: ClipCodec = Field(
        "auto",
        title="Clip codec",
        description=(
            "'h264' (plays in browsers and Home Assistant) needs ffmpeg with libx264 on PATH; "
            "'mp4v' is MPEG-4 Part 2, written by OpenCV itself; 'auto' uses h264 when it can."
        ),
    )
    max_bytes: SizeBytes = Field(
        10**9,
        ge=10**6,
        le=10**15,
        title="Disk budget",
        description="Oldest clips are deleted when the directory grows past this (e.g. '2GB').",
    )
    max_age: Seconds = Field(
        7 * 86400.0,
        ge=60,
        le=3660 * 86400,
        title="Clip age limit",
        description="Clips older than this are deleted (e.g. '7d').",
    )
