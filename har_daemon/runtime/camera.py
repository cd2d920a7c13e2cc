"""One camera's runtime parts, built together: capture thread -> ring -> inference pipeline.

The capture thread fills the ring with the model's frames (and, when snapshots or clips are on,
a short history of full-resolution ones); the inference thread reads the ring through the
pipeline, which owns the camera's smoother and tracker. A stream gap or a pause marks the
pipeline so the inference thread, the tracker's owner, ends the open activity itself.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial

import numpy as np

from har_daemon.config import CameraConfig
from har_daemon.core.logs import LogThrottle, get_logger
from har_daemon.model.meta import ModelMeta
from har_daemon.model.regions import ring_frame
from har_daemon.runtime.capture import CameraCapture
from har_daemon.runtime.crop_ring import CropRing
from har_daemon.runtime.history import FrameHistory
from har_daemon.runtime.inference import CameraPipeline
from har_daemon.runtime.people import PeopleStage
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.runtime.ring import FrameRing, StrideSchedule
from har_daemon.runtime.zones import CameraZones

log = get_logger(__name__)

LOG_EVERY_S = 60.0
LOG_BURST = 20
"""Status and detection lines per camera per `LOG_EVERY_S`: a flapping stream or a flood of
commands must not flood the log (the rest are counted)."""

StatusListener = Callable[[str, bool], None]
"""`listener(camera, online)` after the camera went online or offline (capture thread)."""
FrameListener = Callable[[str, np.ndarray, float], None]
"""`listener(camera, stored_frame, t)` for each full-resolution frame kept in the history."""


class Camera:
    def __init__(
        self,
        config: CameraConfig,
        meta: ModelMeta,
        policy: DecisionPolicy,
        *,
        spacing_s: float,
        stride: int,
        on_sampled: Callable[[str], None],
        on_status: StatusListener,
        history: FrameHistory | None = None,
        history_spacing_s: float | None = None,
        on_history_frame: FrameListener | None = None,
        people: PeopleStage | None = None,
        frame_clock: Callable[[], float] | None = None,
        zones: CameraZones | None = None,
    ) -> None:
        self.config = config
        self.name = config.name
        self.history = history
        self.online: bool | None = None  # unknown until the first open attempt
        self._on_status = on_status
        self._on_sampled = on_sampled
        self._on_history_frame = on_history_frame
        self._stopping = threading.Event()
        self._throttle = LogThrottle(LOG_EVERY_S, burst=LOG_BURST)
        # Person-centric models keep the parts of working frames their regions can need.
        ring = (
            CropRing(meta.sequence_length)
            if meta.person_region
            else FrameRing(meta.sequence_length, (meta.frame_height, meta.frame_width, 3))
        )
        self.pipeline = CameraPipeline(
            name=self.name,
            ring=ring,
            schedule=StrideSchedule(stride),
            smoother=policy.smoother(),
            tracker=policy.tracker(meta.classes, camera=self.name),
            people=people,
            zones=zones,
        )
        prepare = partial(ring_frame, meta=meta)
        if zones is not None and zones.masks:
            prepare = partial(_masked, prepare, zones)
        self.capture = CameraCapture(
            config,
            ring,
            spacing_s,
            prepare,
            on_frame=on_sampled,
            on_status=self._status,
            on_cut=self._cut,
            backpressure=self._wait_for_inference,
            on_full_frame=self._full_frame if history is not None else None,
            history_spacing_s=history_spacing_s,
            frame_clock=frame_clock,
        )

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.capture.start()

    def stop(self) -> None:
        """Ask the capture thread to end (join it with `join`)."""
        self._stopping.set()
        self.capture.stop()

    def join(self, timeout: float) -> None:
        if self.capture.is_alive():
            self.capture.join(timeout)

    @property
    def finished(self) -> bool:
        """The source ended for good (a file without loop, or a stop)."""
        return self.capture.finished

    @property
    def failed(self) -> bool:
        """The capture thread died without finishing: a bug, not a camera fault."""
        return self.capture.ident is not None and not self.capture.is_alive() and not self.finished

    # -- control -------------------------------------------------------------------------------

    def set_enabled(self, enabled: bool) -> bool:
        """Pause or resume detection (capture goes on so resuming is instant); True if changed.

        A pause ends the open activity, through the inference thread that owns the tracker.
        """
        changed = self.pipeline.enabled != enabled
        self.pipeline.enabled = enabled
        if changed and not enabled:
            self.pipeline.gap.set()
        if changed:
            self._log("camera.detection", enabled=enabled)
        return changed

    # -- capture-thread hooks --------------------------------------------------------------------

    def _status(self, camera: str, online: bool, reason: str) -> None:
        self.online = online
        if not online:
            if self.history is not None:
                self.history.clear()
            self.pipeline.gap.set()
        self._log("camera.status", online=online, reason=reason)
        self._on_status(camera, online)

    def _log(self, event: str, **fields: object) -> None:
        held = self._throttle.allow(f"{event}:{self.name}")
        if held is not None:
            log.info(event, camera=self.name, **fields, **({"suppressed": held} if held else {}))

    def _cut(self, camera: str) -> None:
        """The picture changed abruptly: smoothing and people tracks start afresh."""
        self.pipeline.cut.set()
        self._on_sampled(camera)

    def _full_frame(self, camera: str, frame: np.ndarray, t: float) -> None:
        assert self.history is not None
        stored = self.history.push(frame, t)
        if self._on_history_frame is not None:
            self._on_history_frame(camera, stored, t)

    def _wait_for_inference(self) -> None:
        """A file played as fast as possible waits for each due window to be taken, so a
        one-shot run scores every window instead of dropping them as stale."""
        p = self.pipeline
        ring, schedule = p.ring, p.schedule
        while not self._stopping.is_set() and (
            schedule.ready(ring.count, ring.full, ring.full_since)
            # the fall stage looks at the newest frame only: let it see every one
            or (p.falls is not None and p.enabled and p.falls.seen_count < ring.count)
        ):
            time.sleep(0.002)


def _masked(
    prepare: Callable[[np.ndarray], np.ndarray], zones: CameraZones, frame: np.ndarray
) -> np.ndarray:
    """The ring's frame with the masks blanked: nothing after this sees the masked areas."""
    return zones.blank(prepare(frame), source=frame)
