"""The daemon's `ClipRecorder` from its configuration, with a segmenter per camera that names a
`record_source` (recorded by copy, see `segments`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from har_daemon.config import DaemonConfig
from har_daemon.outputs.clips.recorder import ClipRecorder
from har_daemon.outputs.clips.segments import SEGMENT_S, SegmentRecorder
from har_daemon.runtime.camera import Camera


def clip_recorder_for(
    config: DaemonConfig, cameras: Mapping[str, Camera], clock: Callable[[], float]
) -> ClipRecorder:
    """Raises `ClipsError` when the directory or the codec cannot be used."""
    c = config.clips
    keep_s = c.pre_roll_s + 2 * SEGMENT_S + 5.0  # the pre-roll, and a segment either side
    copy_from = {
        name: SegmentRecorder(
            name,
            str(cam.config.record_source),
            c.path,
            keep_s=keep_s,
            clock=clock,
            rtsp_transport=cam.config.rtsp_transport,
        )
        for name, cam in cameras.items()
        if cam.config.record_source is not None
    }
    return ClipRecorder(
        c.path,
        fps=c.fps,
        pre_roll_s=c.pre_roll_s,
        post_roll_s=c.post_roll_s,
        max_clip_s=c.max_clip_s,
        max_bytes=c.max_bytes,
        max_age_s=c.max_age,
        history={name: cam.history for name, cam in cameras.items()},
        max_width=c.max_width,
        codec=c.codec,
        copy_from=copy_from,
    )
