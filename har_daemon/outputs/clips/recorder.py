"""`ClipRecorder`: a short MP4 of each event, from a pre-roll before it to a post-roll after it.

The recorder never touches a camera: the daemon feeds it the downscaled frames it already keeps
in each camera's `FrameHistory` (pre-roll at `start`, then live frames through `add_frame`).

Threading: `start`, `add_frame`, `end`, `tick` and `close_all` only update bookkeeping and
queue work, so neither a capture thread nor the inference thread waits for an encoder; one
writer thread per recorder encodes, closes, renames and prunes. Live frames queued beyond
`max_queued_frames` are dropped (the clip repeats the previous frame instead, so it keeps real
time); pre-roll frames are never dropped.

Files, codecs and the disk budget: see `files`, `encoder` and `retention` beside this module.

Cameras with a `record_source` (`copy_from`) are recorded by copy instead (`segments`): their
clips are the main stream's segments covering the event, joined by copying bytes on the
writer thread once a segment past the post-roll has finished; no frame is fed to them.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_daemon.config import ClipsConfig, default_of
from har_daemon.core.logs import get_logger
from har_daemon.outputs.clips import retention
from har_daemon.outputs.clips.encoder import ClipWriter, Codec, H264Transcoder, resolve_codec
from har_daemon.outputs.clips.files import clip_filename, prepare_directory
from har_daemon.outputs.clips.segments import (
    SEGMENT_S,
    SegmentRecorder,
    join_segments,
    one_run,
)
from har_daemon.runtime.history import FrameHistory

log = get_logger(__name__)

_CLOSE_GRACE_S = 1.0  # how long `tick` waits past a clip's last second for late frames
_RECENT_PATHS = 256  # ended or capped clips whose path `end` can still return
_COPY_GRACE_S = 2 * SEGMENT_S + 5.0  # how long a copied clip waits for its last segment
_DEFAULT_CODEC: Codec = default_of(ClipsConfig, "codec")


@dataclass
class ClipStats:
    """Counters for the daemon's statistics (files_deleted: clips removed by the budget)."""

    clips_started: int = 0
    clips_saved: int = 0
    clips_failed: int = 0
    transcode_failed: int = 0
    frames_written: int = 0
    frames_dropped: int = 0
    files_deleted: int = 0


@dataclass(eq=False)
class _Clip:
    """One event's clip: bookkeeping shared by the callers and the writer thread."""

    event_id: str
    camera: str
    path: Path
    partial: Path
    first_t: float  # the clip covers [first_t, stop_at] in frame time
    stop_at: float
    # Caller side (under the recorder's lock).
    last_t: float = -math.inf
    # Writer thread only.
    writer: ClipWriter | None = None
    failed: bool = False
    segments: SegmentRecorder | None = None  # recorded by copy from the camera's main stream


class ClipRecorder:
    """Writes one MP4 per event; see the module docstring for threads and files."""

    def __init__(
        self,
        directory: Path,
        *,
        fps: float,
        pre_roll_s: float,
        post_roll_s: float,
        max_clip_s: float,
        max_bytes: int,
        max_age_s: float,
        history: FrameHistory | Mapping[str, FrameHistory] | None,
        max_width: int | None = None,
        max_queued_frames: int = 600,
        codec: Codec = _DEFAULT_CODEC,
        copy_from: Mapping[str, SegmentRecorder] | None = None,
    ) -> None:
        """`history`: one history for every camera, or one per camera name (the daemon's case).
        `copy_from`: the segmenters of cameras recorded by copy (started here, stopped by
        `close_all`).

        Raises `ClipsError` when `directory` cannot be created or written, or when codec "h264"
        is asked for and no ffmpeg with libx264 is on PATH.
        """
        if fps <= 0 or max_clip_s <= 0 or pre_roll_s < 0 or post_roll_s < 0:
            raise ValueError("fps and max_clip_s must be positive, the rolls not negative")
        self.directory = Path(directory).expanduser()
        self.fps = float(fps)
        self.pre_roll_s = float(pre_roll_s)
        self.post_roll_s = float(post_roll_s)
        self.max_clip_s = float(max_clip_s)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.history = history
        self.max_width = max_width
        self.max_queued_frames = max_queued_frames
        self.stats = ClipStats()
        ffmpeg = resolve_codec(codec)
        self._transcoder = H264Transcoder(ffmpeg) if ffmpeg else None
        self.codec = "h264" if ffmpeg else "mp4v"
        self.partial_dir = prepare_directory(self.directory)

        self._lock = threading.Lock()
        self._open: dict[str, _Clip] = {}
        self._recent: OrderedDict[str, Path] = OrderedDict()
        self._closed = False
        self._queued_frames = 0
        self._pending = 0  # commands queued or running, for `wait_idle`
        self._idle = threading.Condition(self._lock)
        self._queue: queue.SimpleQueue[tuple[str, _Clip | None, np.ndarray | None, float]] = (
            queue.SimpleQueue()
        )

        self.prune()
        self.copy_from = dict(copy_from or {})
        for segmenter in self.copy_from.values():
            segmenter.start()
        self._thread = threading.Thread(target=self._run, name="clip-writer", daemon=True)
        self._thread.start()

    # -- caller side ------------------------------------------------------------------------

    def _history_for(self, camera: str) -> FrameHistory | None:
        if isinstance(self.history, FrameHistory):
            return self.history
        if self.history is None:
            return None
        return self.history.get(camera)

    def _put(
        self, kind: str, clip: _Clip | None, frame: np.ndarray | None = None, t: float = 0.0
    ) -> None:
        # Caller holds self._lock.
        self._pending += 1
        if kind == "frame":
            self._queued_frames += 1
        self._queue.put((kind, clip, frame, t))

    def start(self, event_id: str, camera: str, activity: str, t_start: float) -> Path:
        """Begin the clip of an event that started at `t_start` (epoch s); returns its final path.

        The pre-roll is taken from the camera's history now, so frames already pushed there
        are in the clip; later frames must come through `add_frame`. Starting an event that
        is already recording returns its path again.
        """
        name = clip_filename(camera, t_start, activity, event_id)
        path = self.directory / name
        first_t = t_start - self.pre_roll_s
        segments = self.copy_from.get(camera)
        history = self._history_for(camera) if segments is None else None
        frames = history.since(first_t) if history is not None else []
        with self._lock:
            if event_id in self._open:
                return self._open[event_id].path
            if self._closed:
                log.warning("clips.start_after_close", event_id=event_id, camera=camera)
                return path
            clip = _Clip(
                event_id=event_id,
                camera=camera,
                path=path,
                partial=self.partial_dir / name,
                first_t=first_t,
                stop_at=first_t + self.max_clip_s,
                segments=segments,
            )
            if segments is not None:
                segments.hold(event_id, first_t)
            self._open[event_id] = clip
            self.stats.clips_started += 1
            self._put("open", clip)
            for t, frame in frames:
                if t > clip.stop_at:
                    break
                self._put("frame", clip, frame, t)
                clip.last_t = t
            if frames and frames[-1][0] > clip.stop_at:
                self._close(clip)
        log.info("clips.started", event_id=event_id, camera=camera, path=str(path))
        return path

    def add_frame(self, camera: str, frame: np.ndarray, t: float) -> None:
        """Offer a frame of `camera` taken at `t` to every clip recording it.

        Call it after pushing the frame into the camera's `FrameHistory` (pass the array that
        `push` returned); the frame is kept by reference and must not be modified afterwards.
        """
        with self._lock:
            for clip in [
                c for c in self._open.values() if c.camera == camera and c.segments is None
            ]:
                if t <= clip.last_t:
                    continue  # already queued from the history at `start`
                if t > clip.stop_at:
                    self._close(clip)
                    continue
                clip.last_t = t
                if self._queued_frames >= self.max_queued_frames:
                    self.stats.frames_dropped += 1
                    continue
                self._put("frame", clip, frame, t)

    def end(self, event_id: str, t_end: float) -> Path | None:
        """The event ended at `t_end`: record `post_roll_s` more seconds, then close.

        Returns the path the clip will have. The file appears there only once the post-roll
        has been recorded (or `tick`/`close_all` closed it), and not at all if no frame was
        ever recorded. None for an event this recorder does not know.
        """
        with self._lock:
            clip = self._open.get(event_id)
            if clip is None:
                return self._recent.get(event_id)
            clip.stop_at = min(clip.stop_at, t_end + self.post_roll_s)
            if clip.last_t >= clip.stop_at:
                self._close(clip)
            return clip.path

    def tick(self, now: float | None = None) -> None:
        """Close clips whose last second passed `now` (epoch s) without a frame arriving, as when
        the camera went offline; the daemon calls it now and then (e.g. per window result)."""
        now = time.time() if now is None else now
        with self._lock:
            for clip in list(self._open.values()):
                if clip.segments is not None:
                    covered = clip.segments.covered_until()
                    if (covered is not None and covered >= clip.stop_at) or (
                        now >= clip.stop_at + _COPY_GRACE_S
                    ):
                        self._close(clip)
                elif now >= clip.stop_at + _CLOSE_GRACE_S:
                    self._close(clip)

    def close_all(self, timeout: float = 15.0) -> None:
        """Finish every open clip now (shutdown) and stop the writer thread.

        Re-encoding goes on for most of `timeout`; past that, the re-encode under way is
        stopped and the clips still queued are kept as MPEG-4, so a stop (systemd allows 20 s)
        never waits on an encoder nor leaves a clip in `.partial/` to be deleted at next start.
        """
        with self._lock:
            if self._closed:
                return
            for clip in list(self._open.values()):
                self._close(clip)
            self._closed = True
            self._put("stop", None)
        self._thread.join(timeout * 0.7)
        if self._thread.is_alive():
            if self._transcoder is not None:
                self._transcoder.stop()
            self._thread.join(timeout * 0.3)
        for segmenter in self.copy_from.values():
            segmenter.stop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued frame and close is done; False on timeout (for tests)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._idle.wait(remaining):
                    return self._pending == 0
        return True

    @property
    def recording(self) -> list[str]:
        """Event ids of the clips still recording."""
        with self._lock:
            return list(self._open)

    def _close(self, clip: _Clip) -> None:
        # Caller holds self._lock.
        if self._open.pop(clip.event_id, None) is None:
            return
        self._recent[clip.event_id] = clip.path
        while len(self._recent) > _RECENT_PATHS:
            self._recent.popitem(last=False)
        self._put("close", clip)

    # -- writer thread ----------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            kind, clip, frame, t = self._queue.get()
            try:
                if kind == "stop":
                    return
                assert clip is not None
                if kind == "frame":
                    assert frame is not None
                    self._write(clip, frame, t)
                elif kind == "close":
                    self._finish(clip)
            except Exception:
                log.exception("clips.writer_failed", command=kind)
                if clip is not None:
                    clip.failed = True
            finally:
                with self._idle:
                    self._pending -= 1
                    if kind == "frame":
                        self._queued_frames -= 1
                    if self._pending == 0:
                        self._idle.notify_all()

    def _write(self, clip: _Clip, frame: np.ndarray, t: float) -> None:
        if clip.failed:
            return
        if clip.writer is None:
            clip.writer = ClipWriter.open(clip.partial, self.fps, frame, self.max_width)
            if clip.writer is None:
                clip.failed = True
                return
        if clip.writer.add(frame, t):
            self.stats.frames_written += 1

    def _finish(self, clip: _Clip) -> None:
        if clip.segments is not None:
            self._finish_copy(clip, clip.segments)
            return
        written = 0
        if clip.writer is not None:
            written = clip.writer.written
            clip.writer.release()
            clip.writer = None
        if clip.failed or written == 0:
            with contextlib.suppress(FileNotFoundError):
                clip.partial.unlink()
            self.stats.clips_failed += 1
            log.warning(
                "clips.not_saved",
                event_id=clip.event_id,
                reason="failed" if clip.failed else "no frames",
            )
            return
        seconds = written / self.fps
        codec, failure = (
            self._transcoder.transcode(clip.partial, seconds)
            if self._transcoder is not None
            else ("mp4v", None)
        )
        if failure is not None:
            self.stats.transcode_failed += 1
            log.warning(
                "clips.transcode_failed", event_id=clip.event_id, reason=failure, kept="mp4v"
            )
        self._saved(clip, frames=written, seconds=round(seconds, 2), codec=codec)

    def _finish_copy(self, clip: _Clip, segmenter: SegmentRecorder) -> None:
        """Join the main stream's segments covering the clip by copying their bytes (no process
        started, nothing re-encoded)."""
        listed = segmenter.between(clip.first_t, clip.stop_at)
        segments = one_run(listed) if listed else []
        try:
            failure = join_segments(segments, clip.partial)
        finally:
            segmenter.release(clip.event_id)
        if failure is not None:
            with contextlib.suppress(FileNotFoundError):
                clip.partial.unlink()
            self.stats.clips_failed += 1
            log.warning("clips.not_saved", event_id=clip.event_id, reason=failure)
            return
        # What the segments leave out of [first_t, stop_at]: a stream that started late, a
        # restart inside the clip; reported, the clip is kept.
        short_s = max(0.0, segments[0].start - clip.first_t) + max(
            0.0, clip.stop_at - segments[-1].end
        )
        seconds = round(segments[-1].end - segments[0].start, 2)
        self._saved(
            clip,
            segments=len(segments),
            dropped=len(listed) - len(segments),
            seconds=seconds,
            short_s=round(short_s, 2),
            codec="copy",
        )

    def _saved(self, clip: _Clip, **details: object) -> None:
        """Put the finished file in place, count and log it, then keep the disk budget."""
        os.replace(clip.partial, clip.path)
        self.stats.clips_saved += 1
        log.info(
            "clips.saved",
            event_id=clip.event_id,
            camera=clip.camera,
            path=str(clip.path),
            **details,
        )
        self.prune(keep=clip.path)

    # -- disk budget ------------------------------------------------------------------------

    def prune(self, now: float | None = None, keep: Path | None = None) -> list[Path]:
        """Apply the disk budget now (see `retention`); returns the deleted paths."""
        deleted = retention.prune(
            self.directory,
            max_bytes=self.max_bytes,
            max_age_s=self.max_age_s,
            now=time.time() if now is None else now,
            keep=keep,
        )
        self.stats.files_deleted += len(deleted)
        return deleted
