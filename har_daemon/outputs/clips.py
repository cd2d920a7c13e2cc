"""Event clips: a short MP4 of each event, from a pre-roll before it to a post-roll after it.

The recorder never touches a camera: the daemon feeds it the downscaled frames it already keeps
in each camera's `FrameHistory` (pre-roll at `start`, then live frames through `add_frame`).

Threading: `start`, `add_frame`, `end`, `tick` and `close_all` only update bookkeeping and
queue work, so neither a capture thread nor the inference thread waits for an encoder; one
writer thread per recorder encodes, closes, renames and prunes. Live frames queued beyond
`max_queued_frames` are dropped (the clip repeats the previous frame instead, so it keeps real
time); pre-roll frames are never dropped.

Files: a clip is written under `<directory>/.partial/` and renamed into `<directory>` when it is
complete, so a `*.mp4` in the directory is always a finished, playable clip (MP4 needs its
index written at the end). Leftover partial files from a crash are deleted at start-up. After
each clip, and at start-up, the oldest clips are deleted while the directory is over
`max_bytes` (the newest clip is always kept, so an event's announced clip exists even when one
clip exceeds the budget), and clips older than `max_age_s` are deleted.

Codec: OpenCV's bundled FFmpeg writes only MPEG-4 Part 2, which browsers and Home Assistant's
player do not play. With codec "h264" (or "auto" when the host's `ffmpeg` has libx264) the
writer thread re-encodes each finished partial file to H.264 with the index at the front
(`+faststart`, so a player starts before the download ends), on one thread so inference keeps
the cores. A failed re-encode keeps the MPEG-4 file: a clip is never lost to its codec.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from har_daemon.core.errors import HarError
from har_daemon.core.logs import get_logger
from har_daemon.runtime.history import FrameHistory

log = get_logger(__name__)

PARTIAL_DIR = ".partial"
FOURCC = "mp4v"  # MPEG-4 Part 2: what opencv-python-headless's bundled FFmpeg can encode
Codec = Literal["auto", "h264", "mp4v"]
CODECS: tuple[str, ...] = ("auto", "h264", "mp4v")
_CLOSE_GRACE_S = 1.0  # how long `tick` waits past a clip's last second for late frames
_RECENT_PATHS = 256  # ended or capped clips whose path `end` can still return


class ClipsError(HarError):
    """The clip directory cannot be used (missing permissions, not a directory...)."""


def _clean(part: str, limit: int = 64) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", part).strip("_-")[:limit]
    return cleaned or "x"


def clip_filename(camera: str, t_start: float, activity: str, event_id: str) -> str:
    """`<camera>-<UTC yyyymmddTHHMMSSZ>-<activity>-<event id prefix>.mp4`, safe on any disk."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(t_start))
    return f"{_clean(camera)}-{stamp}-{_clean(activity)}-{_clean(event_id, 8)}.mp4"


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
            timeout=15,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    return exe if re.search(r"\blibx264\b", listed) else None


@dataclass
class ClipStats:
    clips_started: int = 0
    clips_saved: int = 0
    clips_failed: int = 0
    transcode_failed: int = 0
    frames_written: int = 0
    frames_dropped: int = 0
    files_deleted: int = 0


@dataclass(eq=False)
class _Clip:
    event_id: str
    camera: str
    path: Path
    partial: Path
    first_t: float  # the clip covers [first_t, stop_at] in frame time
    stop_at: float
    # Caller side (under the recorder's lock).
    last_t: float = -math.inf
    # Writer thread only.
    writer: cv2.VideoWriter | None = None
    size: tuple[int, int] | None = None  # (width, height)
    t0: float | None = None
    written: int = 0
    last_frame: np.ndarray | None = None
    failed: bool = False


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
        codec: Codec = "auto",
    ) -> None:
        """`history`: one history for every camera, or one per camera name (the daemon's case).

        Raises `ClipsError` when `directory` cannot be created or written, or when codec "h264"
        is asked for and no ffmpeg with libx264 is on PATH.
        """
        if fps <= 0 or max_clip_s <= 0 or pre_roll_s < 0 or post_roll_s < 0:
            raise ValueError("fps and max_clip_s must be positive, the rolls not negative")
        self.directory = Path(directory).expanduser()
        self.partial_dir = self.directory / PARTIAL_DIR
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
        self._ffmpeg = self._resolve_codec(codec)
        self.codec = "h264" if self._ffmpeg else "mp4v"
        self._encoder: subprocess.Popen[str] | None = None  # the re-encode under way
        self._shutting_down = False
        self._check_directory()

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

        self._remove_partials()
        self.prune()
        self._thread = threading.Thread(target=self._run, name="clip-writer", daemon=True)
        self._thread.start()

    # -- start-up ---------------------------------------------------------------------------

    @staticmethod
    def _resolve_codec(codec: str) -> str | None:
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

    def _check_directory(self) -> None:
        try:
            self.partial_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.partial_dir, prefix="probe-"):
                pass
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ClipsError(f"clip directory {self.directory} is not writable: {reason}") from None

    def _remove_partials(self) -> None:
        """A partial clip left by a crash has no MP4 index and cannot be played: delete it."""
        for entry in self.partial_dir.iterdir():
            with contextlib.suppress(OSError):
                entry.unlink()
                log.warning("clips.partial_removed", path=str(entry))

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
        history = self._history_for(camera)
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
            )
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
            for clip in [c for c in self._open.values() if c.camera == camera]:
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
                if now >= clip.stop_at + _CLOSE_GRACE_S:
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
            with self._lock:
                self._shutting_down = True
                if self._encoder is not None:
                    with contextlib.suppress(ProcessLookupError):
                        self._encoder.terminate()
            self._thread.join(timeout * 0.3)

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

    def _open_writer(self, clip: _Clip, frame: np.ndarray) -> None:
        height, width = frame.shape[:2]
        if self.max_width is not None and width > self.max_width:
            height, width = max(1, round(height * self.max_width / width)), self.max_width
        # Even sizes: MPEG-4 encoders and most players need them.
        size = (max(2, width - width % 2), max(2, height - height % 2))
        writer = cv2.VideoWriter(str(clip.partial), cv2.VideoWriter_fourcc(*FOURCC), self.fps, size)
        if not writer.isOpened():
            writer.release()
            clip.failed = True
            log.error("clips.open_failed", path=str(clip.partial), size=list(size))
            return
        clip.writer, clip.size = writer, size

    def _write(self, clip: _Clip, frame: np.ndarray, t: float) -> None:
        if clip.failed:
            return
        if clip.writer is None:
            self._open_writer(clip, frame)
            if clip.writer is None:
                return
        assert clip.size is not None
        if clip.t0 is None:
            clip.t0 = t
        # Frames are placed by their timestamps, so the clip plays in real time whatever rate
        # they arrive at: extra frames are skipped, missing ones repeat the previous frame.
        index = round((t - clip.t0) * self.fps)
        if index < clip.written:
            return
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if (frame.shape[1], frame.shape[0]) != clip.size:
            # A camera that reconnected at another resolution: keep the clip's first size.
            frame = cv2.resize(frame, clip.size, interpolation=cv2.INTER_AREA)
        frame = np.ascontiguousarray(frame)
        while clip.written < index and clip.last_frame is not None:
            clip.writer.write(clip.last_frame)
            clip.written += 1
        clip.writer.write(frame)
        clip.written += 1
        clip.last_frame = frame
        self.stats.frames_written += 1

    def _finish(self, clip: _Clip) -> None:
        if clip.writer is not None:
            clip.writer.release()
            clip.writer = None
        clip.last_frame = None
        if clip.failed or clip.written == 0:
            with contextlib.suppress(FileNotFoundError):
                clip.partial.unlink()
            self.stats.clips_failed += 1
            log.warning(
                "clips.not_saved",
                event_id=clip.event_id,
                reason="failed" if clip.failed else "no frames",
            )
            return
        codec = self._transcode(clip) if self._ffmpeg else "mp4v"
        os.replace(clip.partial, clip.path)
        self.stats.clips_saved += 1
        log.info(
            "clips.saved",
            event_id=clip.event_id,
            camera=clip.camera,
            path=str(clip.path),
            frames=clip.written,
            seconds=round(clip.written / self.fps, 2),
            codec=codec,
        )
        self.prune(keep=clip.path)

    def _transcode(self, clip: _Clip) -> str:
        """Re-encode the finished partial file to H.264 in place; its codec after that."""
        assert self._ffmpeg is not None
        out = clip.partial.with_name(clip.partial.stem + ".h264.mp4")
        seconds = clip.written / self.fps
        cmd = [
            self._ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-i", str(clip.partial), "-an",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            "-threads", "1", "-movflags", "+faststart", str(out),
        ]  # fmt: skip
        reason = ""
        try:
            with self._lock:
                if self._shutting_down:
                    return "mp4v"
                proc = self._encoder = subprocess.Popen(
                    cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
                )
            try:
                _, stderr = proc.communicate(timeout=60 + 4 * seconds)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                stderr = "ffmpeg timed out"
            finally:
                with self._lock:
                    self._encoder = None
            if proc.returncode == 0 and out.is_file() and out.stat().st_size > 0:
                os.replace(out, clip.partial)
                return "h264"
            lines = (stderr or "").strip().splitlines()
            reason = lines[-1][:300] if lines else f"ffmpeg exited {proc.returncode}"
            if self._shutting_down:
                reason = "stopped for shutdown"
        except OSError as exc:
            reason = str(exc)
        with contextlib.suppress(OSError):
            out.unlink()
        self.stats.transcode_failed += 1
        log.warning("clips.transcode_failed", event_id=clip.event_id, reason=reason, kept="mp4v")
        return "mp4v"

    # -- disk budget ------------------------------------------------------------------------

    def prune(self, now: float | None = None, keep: Path | None = None) -> list[Path]:
        """Delete clips older than `max_age_s`, then the oldest while over `max_bytes`; the
        newest clip (and `keep`) is never deleted for size. Returns the deleted paths."""
        now = time.time() if now is None else now
        clips: list[tuple[float, int, Path]] = []
        try:
            with os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.endswith(".mp4") and entry.is_file(follow_symlinks=False):
                        with contextlib.suppress(OSError):
                            st = entry.stat(follow_symlinks=False)
                            clips.append((st.st_mtime, st.st_size, Path(entry.path)))
        except OSError as exc:
            log.warning("clips.prune_failed", directory=str(self.directory), error=str(exc))
            return []
        clips.sort()
        deleted: list[Path] = []
        kept: list[tuple[float, int, Path]] = []
        for mtime, size, path in clips:
            too_old = now - mtime > self.max_age_s and path != keep
            if too_old and self._delete(path, size, "age"):
                deleted.append(path)
                continue
            kept.append((mtime, size, path))
        total = sum(size for _, size, _ in kept)
        for mtime, size, path in kept[:-1]:
            if total <= self.max_bytes:
                break
            if path == keep:
                continue
            if self._delete(path, size, "budget", age_s=round(now - mtime)):
                deleted.append(path)
                total -= size
        return deleted

    def _delete(self, path: Path, size: int, reason: str, **extra: object) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.warning("clips.delete_failed", path=str(path), error=str(exc))
            return False
        self.stats.files_deleted += 1
        log.info("clips.deleted", path=str(path), reason=reason, bytes=size, **extra)
        return True
