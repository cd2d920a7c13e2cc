"""Camera capture: one thread per camera, feeding that camera's ring buffer.

Cameras fail in the field all the time (power cuts, Wi-Fi, NVR reboots), so a capture thread
never gives up on a live source: it releases, backs off and reconnects forever, and reports
online/offline transitions. Only the frames the model will see are converted and resized;
the rest are grabbed (decoded) and dropped, which is most of the CPU saved at 25-30 fps.

Snapshots and clips need full-resolution frames, which the model's 64x64 ring does not keep: an
optional `on_full_frame` hook gets every frame that a second sampler picks at `history_spacing_s`
(typically the clip frame rate). Only frames one of the two samplers picks are retrieved.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from har_daemon.config import CameraConfig
from har_daemon.core.clock import Clock
from har_daemon.core.errors import ConfigError, VideoError
from har_daemon.core.logs import LogThrottle, get_logger
from har_daemon.core.redact import redact_url
from har_daemon.model.regions import frame_size_problem
from har_daemon.runtime.cuts import CutDetector
from har_daemon.runtime.ring import FrameRing
from har_daemon.video.frames import probe_video, usable_fps
from har_daemon.video.sampling import FrameSampler

log = get_logger(__name__)

# OpenCV reads FFmpeg options from a process-wide variable at open time.
_FFMPEG_ENV_LOCK = threading.Lock()
FILE_FAULTS_MAX = 3
"""Consecutive failed opens, or faults, after which a file source is given up (finished, still
failed): a file does not get better, while a live source is retried for ever."""
LOG_EVERY_S = 60.0
LOG_BURST = 20
"""Connection lines of one camera per `LOG_EVERY_S`: a flapping stream must not flood the log."""


def backoff_delay(
    attempt: int, initial_s: float, max_s: float, jitter: float, rng: random.Random
) -> float:
    """Exponential backoff with proportional jitter, so many cameras do not retry in lockstep."""
    base = min(max_s, initial_s * (2.0 ** max(0, attempt)))
    return max(0.0, base * (1.0 + jitter * rng.uniform(-1.0, 1.0)))


class CameraFault(VideoError):
    """A source the camera cannot use as it is (its frames are too small, say): no traceback."""


def check_file_source(source: str, frame_size: bool = False) -> None:
    """Start-up check for file sources: fatal problems are reported before anything runs.

    `frame_size`: also refuse frames too small for the model (check-config; at `run` such a
    camera fails alone, as a live source would)."""
    path = Path(source).expanduser()
    if not path.exists():
        raise ConfigError(f"camera source {source}: file does not exist")
    try:
        info = probe_video(path)
    except VideoError as exc:  # its message starts with the path
        raise ConfigError(f"camera source {exc}") from None
    problem = frame_size_problem((info.height, info.width)) if frame_size else None
    if problem is not None:
        raise ConfigError(f"camera source {source}: {problem}")


@dataclass
class CaptureStats:
    frames_read: int = 0
    frames_sampled: int = 0
    frames_history: int = 0  # frames handed to `on_full_frame`
    hook_errors: int = 0
    reconnects: int = 0
    cuts: int = 0  # abrupt picture changes that restarted the ring
    open_failures: int = 0
    failures: int = 0  # faults: exceptions in capture, unusable frames
    error: str | None = None  # the last fault, until frames flow again
    online: bool = False
    finished: bool = False
    last_frame_at: float | None = None  # monotonic
    online_since: float | None = None  # monotonic: when it last came online
    started_at: float = field(default_factory=time.monotonic)


class CameraCapture(threading.Thread):
    """Reads one source into `ring` at the model's frame spacing until `stop()`."""

    def __init__(
        self,
        options: CameraConfig,
        ring: FrameRing,
        frame_spacing_s: float,
        prepare: Callable[[np.ndarray], np.ndarray],
        on_frame: Callable[[str], None],
        on_status: Callable[[str, bool, str], None],
        on_cut: Callable[[str], None] | None = None,
        seed: int | None = None,
        backpressure: Callable[[], None] | None = None,
        on_full_frame: Callable[[str, np.ndarray, float], None] | None = None,
        history_spacing_s: float | None = None,
        frame_clock: Callable[[], float] | None = None,
    ) -> None:
        """`frame_clock` stamps frames: epoch-like seconds that never step (default: a
        `Clock`'s timeline), since sampling and event timing run on them; a file's frames are
        stamped from its start plus their own timestamps. A replay passes a clock at 0 so a
        file's frames carry their position in it."""
        super().__init__(name=f"capture-{options.name}", daemon=True)
        self.options = options
        self.kind = options.source_kind
        self.ring = ring
        self.sampler = FrameSampler(frame_spacing_s)
        # What the ring keeps of a sampled frame (`model.regions.ring_frame`).
        self.prepare = prepare
        self.cuts = CutDetector()
        self.on_frame = on_frame
        self.on_status = on_status
        self.on_cut = on_cut or (lambda _camera: None)
        # Called after each sampled frame of a file played as fast as possible: blocks until
        # inference caught up, so a one-shot run scores every window instead of dropping them.
        self.backpressure = backpressure
        # Full-resolution BGR frames for snapshots and clips, `(camera, frame, t)` with the same
        # `t` as the ring. The frame is shared: the hook must copy before keeping or changing it.
        # Without `history_spacing_s` the hook sees the model's frames only.
        self.on_full_frame = on_full_frame
        self.history_sampler = (
            FrameSampler(history_spacing_s)
            if on_full_frame is not None and history_spacing_s is not None
            else None
        )
        self.stats = CaptureStats()
        self.frame_clock = frame_clock or Clock().timeline
        self._throttle = LogThrottle(LOG_EVERY_S, burst=LOG_BURST)
        self.fps = 0.0  # the source's frame rate, once opened
        self._stopping = threading.Event()
        self._rng = random.Random(seed)
        self._online: bool | None = None  # unknown until the first open attempt
        src = options.source
        self._source_for_logs = redact_url(src) if isinstance(src, str) else str(src)

    # -- control --------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    @property
    def finished(self) -> bool:
        return self.stats.finished

    # -- status ---------------------------------------------------------------------------

    def _set_online(self, online: bool, reason: str) -> None:
        self.stats.online = online
        if online and not self._online:
            self.stats.online_since = time.monotonic()
        if online != self._online:
            self._online = online
            self.on_status(self.options.name, online, reason)

    # -- opening --------------------------------------------------------------------------

    def _open(self) -> cv2.VideoCapture | None:
        src = self.options.source
        # OpenCV gives each FFmpeg decoder a thread per core unless told, and every thread
        # holds frames of its own (docs/performance.md). Only the open parameter counts:
        # OpenCV overrides a "threads" capture option.
        threads = self.options.decoder_threads
        decoder = [cv2.CAP_PROP_N_THREADS, threads] if threads else []
        if self.kind == "webcam":
            cap = cv2.VideoCapture(int(src), cv2.CAP_ANY)
        elif self.kind == "device":
            cap = cv2.VideoCapture(str(src), cv2.CAP_V4L2)
        elif self.kind == "stream":
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                int(self.options.open_timeout_s * 1000),
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                int(self.options.stall_timeout_s * 1000),
                *decoder,
            ]
            with _FFMPEG_ENV_LOCK:
                os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = (
                    f"rtsp_transport;{self.options.rtsp_transport}"
                )
                cap = cv2.VideoCapture(str(src), cv2.CAP_FFMPEG, params)
        else:
            path = str(Path(str(src)).expanduser())
            cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, decoder)
        if not cap.isOpened():
            cap.release()
            return None
        return cap

    # -- main loop ------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, read, reconnect until stopped. Any exception is this camera's fault: it
        goes offline with the reason, retries with backoff, and the daemon goes on."""
        self._loop(contain_faults=True)

    def run_inline(self) -> None:
        """`run` in the caller's thread with exceptions left to the caller: an offline replay
        reports a fault as its own error instead of re-reading the file."""
        self._loop(contain_faults=False)

    def _loop(self, contain_faults: bool) -> None:
        attempt = faults = 0
        while not self._stopping.is_set():
            try:
                outcome, attempt = self._connect_and_read(attempt)
            except Exception as exc:
                if not contain_faults:
                    raise
                # Consecutive faults: the count starts again once frames flowed in between.
                faults = 1 if self.stats.error is None else faults + 1
                if self._fault(exc, faults):
                    break
            else:
                if outcome == "ended":
                    break
        self.stats.finished = True
        try:
            self._set_online(False, "stopped" if self._stopping.is_set() else "ended")
        except Exception:
            log.exception("camera.status_failed", camera=self.options.name)

    def _connect_and_read(self, attempt: int) -> tuple[str, int]:
        """One open and read of the source: ("ended", _) when it is over for good, else
        ("retry", the next open attempt) after waiting out its backoff."""
        cap = self._open()
        if cap is None:
            self.stats.open_failures += 1
            self._set_online(False, "open failed")
            delay = self._backoff(attempt)
            self._log(
                "warning",
                "camera.open_failed",
                camera=self.options.name,
                source=self._source_for_logs,
                retry_in_s=round(delay, 2),
                attempt=attempt + 1,
            )
            attempt += 1
            if self.kind == "file" and attempt >= FILE_FAULTS_MAX:
                log.error("camera.file_unreadable", camera=self.options.name)
                return "ended", attempt
            self._stopping.wait(delay)
            return "retry", attempt
        if attempt or self.stats.frames_read:
            self.stats.reconnects += 1
        self._set_online(True, "connected")
        self._log(
            "info",
            "camera.online",
            camera=self.options.name,
            source=self._source_for_logs,
            kind=self.kind,
        )
        try:
            reason = self._read(cap)
        finally:
            cap.release()
        if reason == "stopped":
            return "ended", 0
        if reason == "eof" and not self.options.loop:
            # The ring keeps the file's last frames so its final window is still inferred.
            log.info("camera.file_ended", camera=self.options.name)
            return "ended", 0
        self._restart_windows()
        if reason == "eof":
            return "retry", 0
        self._set_online(False, reason)
        delay = self._backoff(0)
        self._log(
            "warning",
            "camera.offline",
            camera=self.options.name,
            reason=reason,
            retry_in_s=round(delay, 2),
        )
        self._stopping.wait(delay)
        return "retry", 1

    def _restart_windows(self) -> None:
        """A window must never mix frames from before and after a gap (or a loop's seam)."""
        self.ring.clear()
        self.cuts.reset()
        self.sampler.reset()
        if self.history_sampler is not None:
            self.history_sampler.reset()

    def _fault(self, exc: Exception, faults: int) -> bool:
        """Mark the camera failed (one line), wait its backoff; True: give the source up."""
        error = str(exc) if isinstance(exc, CameraFault) else f"{type(exc).__name__}: {exc}"
        self.stats.failures += 1
        self.stats.error = error[:300]
        give_up = self.kind == "file" and (
            isinstance(exc, CameraFault) or faults >= FILE_FAULTS_MAX
        )
        delay = 0.0 if give_up else self._backoff(faults - 1)
        self._log(
            "error",
            "camera.failed",
            camera=self.options.name,
            source=self._source_for_logs,
            error=self.stats.error,
            failures=self.stats.failures,
            **({"action": "gave up"} if give_up else {"retry_in_s": round(delay, 2)}),
            **({} if isinstance(exc, CameraFault) else {"exc_info": exc}),
        )
        try:
            self._restart_windows()
            self._set_online(False, f"failed: {self.stats.error}")
        except Exception:
            log.exception("camera.status_failed", camera=self.options.name)
        if not give_up:
            self._stopping.wait(delay)
        return give_up

    def _log(self, level: str, event: str, **fields: object) -> None:
        held = self._throttle.allow(f"{event}:{self.options.name}")
        if held is not None:
            getattr(log, level)(event, **fields, **({"suppressed": held} if held else {}))

    def _backoff(self, attempt: int) -> float:
        o = self.options
        return backoff_delay(
            attempt, o.reconnect_initial_s, o.reconnect_max_s, o.reconnect_jitter, self._rng
        )

    def _read(self, cap: cv2.VideoCapture) -> str:
        """Read until the source ends, stalls or is lost; return why it stopped."""
        is_file = self.kind == "file"
        # The rule `probe_video` applies: a file's clock is the rate it says it was made at.
        fps = self.fps = usable_fps(cap.get(cv2.CAP_PROP_FPS))
        clock_start = self.frame_clock()
        mono_start = time.monotonic()
        index = 0
        last_frame = time.monotonic()
        buffer: np.ndarray | None = None  # hooks copy what they keep (`on_full_frame`)
        while not self._stopping.is_set():
            if is_file and self.options.realtime:
                due = mono_start + index / fps
                delay = due - time.monotonic()
                if delay > 0 and self._stopping.wait(delay):
                    return "stopped"
            ok = cap.grab()
            now_mono = time.monotonic()
            if not ok:
                if is_file:
                    return "eof"
                if now_mono - last_frame >= self.options.stall_timeout_s:
                    return "stalled"
                return "lost"
            last_frame = now_mono
            self.stats.frames_read += 1
            self.stats.last_frame_at = now_mono
            # Files carry their own clock: a file played fast still yields video-time stamps.
            t = clock_start + index / fps if is_file else self.frame_clock()
            index += 1
            for_model = self.sampler.offer(t)
            if self.history_sampler is not None:
                for_history = self.history_sampler.offer(t)
            else:
                for_history = for_model and self.on_full_frame is not None
            if not (for_model or for_history):
                continue
            # Into the last frame's array (a new one only when the size changes): a fresh frame
            # each time left each capture thread's heap holding megabytes it had freed.
            ok, frame = cap.retrieve(buffer)
            if not ok or frame is None:
                continue
            buffer = frame
            if frame.ndim == 2:
                frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
            problem = frame_size_problem(frame.shape[:2])
            if problem is not None:
                raise CameraFault(problem)
            if for_model:
                small = np.ascontiguousarray(self.prepare(frame))
                if self.cuts.update(small):
                    # A new scene (PTZ move, switched feed, splice): no window spans the cut.
                    self.ring.clear()
                    self.stats.cuts += 1
                    self.on_cut(self.options.name)
                self.ring.push(small, t, captured_at=now_mono)
                self.stats.frames_sampled += 1
                self.stats.error = None  # frames flow again
                self.on_frame(self.options.name)
            if for_history:
                self._full_frame(frame, t)
            fast_file = is_file and not self.options.realtime
            if for_model and fast_file and self.backpressure is not None:
                self.backpressure()
        return "stopped"

    def _full_frame(self, frame: np.ndarray, t: float) -> None:
        """Hand a full frame to the hook; a failing snapshot/clip side never stops the camera."""
        assert self.on_full_frame is not None
        try:
            self.on_full_frame(self.options.name, frame, t)
            self.stats.frames_history += 1
        except Exception:
            self.stats.hook_errors += 1
            # First failure and then every 100th: a persistent fault must not flood the log.
            if self.stats.hook_errors % 100 == 1:
                log.exception(
                    "camera.full_frame_hook_failed",
                    camera=self.options.name,
                    errors=self.stats.hook_errors,
                )
