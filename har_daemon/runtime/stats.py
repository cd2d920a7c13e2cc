"""Daemon statistics: rates from counter snapshots, and the health verdict (pure, no I/O).

The daemon hands over a *raw snapshot* of its counters (`RawStats`, described below) whenever it
publishes statistics or is scraped. `StatsTracker.update` turns it into the `<prefix>/stats`
payload by adding per-camera rates computed from counter deltas; `health` decides whether the
daemon is doing its job, for `/healthz` and the `har_healthy` metric.

Raw snapshot (`RawStats`)::

    {
      "uptime_s": float,            # seconds since the daemon started
      "rss_mb": float,              # resident memory, MiB (see `process_rss_mb`)
      "inference": {
        "alive": bool,              # the inference thread is running
        "batches": int,             # model calls that succeeded
        "errors": int,              # model calls that raised
        "last_inference_age_s": float | None,  # since the last successful batch; None: never
        # optional: since the inference thread last took a window, inferred *or* skipped by
        # motion gating. With motion gating on, a still scene runs no batch at all; give this
        # so a quiet camera is not mistaken for a stalled inference thread.
        "last_window_age_s": float | None,
      },
      "spool": {"depth": int, ...},  # Outbox.stats(); absent without a spool
      "cameras": {
        "<name>": {
          "online": bool, "enabled": bool, "finished": bool,
          "frames_read": int, "frames_sampled": int, "windows": int, "stale_windows": int,
          "motion_skipped": int, "reconnects": int, "events": int,
          "cuts": int,                  # abrupt picture changes that restarted the ring
          "failures": int,              # capture faults (exceptions, unusable frames)
          "error": str | None,          # the last fault while it lasts: the camera failed
          "detections": int,            # person-centric models: frames the detector saw
          "no_person_windows": int,     # ... and windows skipped because nobody was there
          "latency_ms_p50": float, "latency_ms_p95": float,  # frame captured -> published
          "model_ms_p50": float, "model_ms_p95": float,      # the model call alone
          "last_frame_age_s": float | None,   # since the last frame read; None: none yet
          "stall_timeout_s": float,           # the camera's own stall timeout
          # optional: since the camera's last window (taken, scored or skipped), or since it
          # came online when none since; and how long a window may take to come due
          "last_window_age_s": float | None, "window_due_s": float,
          # optional, cameras with masks: the share of the analysed frame they cover, person
          # boxes dropped for standing in one, looks skipped as the masks cover everything
          "masked_fraction": float, "masked_boxes": int, "detections_masked": int,
          "debug_encodes": int,  # pictures the debug view drew and encoded (0: nobody watched)
          # optional, cameras with a fall recogniser: its looks, and those that took the person
          # stage's boxes of the same frame (no detector call of their own), those that followed
          # people from their last keypoints (`looks = "tracked"`, or "adaptive" while its watch
          # is open); turned second looks at people lost or poorly seen right after going down,
          # and their model calls;
          # falls that did not start because the person lay outside the `required_zones`
          "fall_looks": int, "fall_looks_shared": int, "fall_looks_tracked": int,
          "fall_turned_looks": int, "fall_turned_calls": int, "fall_outside_zones": int,
          # optional, cameras with pose fusion (`[inference] pose_fusion`): the fight pose
          # stage's own looks, and the region windows its pose model scored
          "pose_looks": int, "pose_windows": int,
          # optional, cameras with pretrained fusion (`[inference] pretrained_fusion`): the
          # region windows the pretrained head scored, and the context crops it embedded
          "pretrained_windows": int, "pretrained_embedded": int,
        },
      },
    }

The published payload (`StatsPayload`) is the same with three rates added to each camera:
``capture_fps`` (frames read), ``sampled_fps`` (frames kept for the model) and ``inference_fps``
(windows scored), all per second over the interval since the previous update.
"""

from __future__ import annotations

import copy
import os
import resource
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from har_daemon.runtime.camera import Camera
from har_daemon.runtime.inference import InferenceScheduler

__all__ = [
    "CameraRaw",
    "CameraStats",
    "InferenceRaw",
    "RawStats",
    "StatsPayload",
    "StatsTracker",
    "camera_health",
    "collect_raw",
    "health",
    "process_rss_mb",
]


class InferenceRaw(TypedDict):
    alive: bool
    batches: int
    errors: int
    last_inference_age_s: float | None
    last_window_age_s: NotRequired[float | None]


class CameraRaw(TypedDict):
    online: bool
    enabled: bool
    finished: bool
    frames_read: int
    frames_sampled: int
    windows: int
    stale_windows: int
    motion_skipped: int
    reconnects: int
    cuts: int
    failures: int
    error: str | None
    detections: int
    no_person_windows: int
    gated_windows: int
    enter_threshold: float
    events: int
    latency_ms_p50: float
    latency_ms_p95: float
    model_ms_p50: float
    model_ms_p95: float
    last_frame_age_s: float | None
    stall_timeout_s: float
    last_window_age_s: NotRequired[float | None]
    window_due_s: NotRequired[float]
    debug_encodes: NotRequired[int]
    masked_fraction: NotRequired[float]
    masked_boxes: NotRequired[int]
    detections_masked: NotRequired[int]
    fall_looks: NotRequired[int]
    fall_looks_shared: NotRequired[int]
    fall_looks_tracked: NotRequired[int]
    fall_turned_looks: NotRequired[int]
    fall_turned_calls: NotRequired[int]
    fall_outside_zones: NotRequired[int]
    pose_looks: NotRequired[int]
    pose_windows: NotRequired[int]
    pretrained_windows: NotRequired[int]
    pretrained_embedded: NotRequired[int]


class CameraStats(CameraRaw):
    capture_fps: float
    sampled_fps: float
    inference_fps: float


class RawStats(TypedDict):
    uptime_s: float
    rss_mb: float
    inference: InferenceRaw
    spool: NotRequired[dict[str, Any]]
    cameras: dict[str, CameraRaw]


class StatsPayload(TypedDict):
    uptime_s: float
    rss_mb: float
    inference: InferenceRaw
    spool: NotRequired[dict[str, Any]]
    cameras: dict[str, CameraStats]


# counter name in the raw snapshot -> rate name in the payload
_RATES = {"frames_read": "capture_fps", "frames_sampled": "sampled_fps", "windows": "inference_fps"}


@dataclass
class _Baseline:
    at: float  # monotonic
    counters: dict[str, int]
    rates: dict[str, float]


class StatsTracker:
    """Adds per-camera rates to raw snapshots; thread-safe.

    Rates are taken over at least `min_interval_s`: an update sooner than that after the last
    baseline (a Prometheus scrape right after a published stats message, say) reports the
    previous rates and leaves the baseline alone, so several callers can share one tracker
    without producing noisy rates over tiny intervals.
    """

    def __init__(self, *, min_interval_s: float = 1.0) -> None:
        self.min_interval_s = min_interval_s
        self._lock = threading.Lock()
        self._baselines: dict[str, _Baseline] = {}
        self._latest: StatsPayload | None = None

    @property
    def latest(self) -> StatsPayload | None:
        """The payload the last `update` returned (None before the first)."""
        with self._lock:
            return copy.deepcopy(self._latest)

    def update(self, raw: RawStats, now_monotonic: float) -> StatsPayload:
        """Return the stats payload for `raw`, taken at `now_monotonic` (time.monotonic())."""
        payload: Any = copy.deepcopy(raw)
        with self._lock:
            seen = set()
            for name, cam in payload.get("cameras", {}).items():
                seen.add(name)
                cam.update(self._rates(name, cam, now_monotonic, float(raw.get("uptime_s", 0))))
            for gone in set(self._baselines) - seen:
                del self._baselines[gone]
            self._latest = payload
            return copy.deepcopy(payload)

    def _rates(self, name: str, cam: dict[str, Any], now: float, uptime: float) -> dict[str, float]:
        counters = {key: int(cam.get(key, 0)) for key in _RATES}
        base = self._baselines.get(name)
        if base is None:
            # First sight of this camera: its counters ran since the daemon started.
            base = _Baseline(now - max(0.0, uptime), dict.fromkeys(_RATES, 0), {})
        elif now - base.at < self.min_interval_s:
            return {_RATES[k]: base.rates.get(k, 0.0) for k in _RATES}
        elapsed = now - base.at
        if elapsed <= 0:  # nothing to measure over yet (uptime 0, or a clock that stood still)
            self._baselines[name] = _Baseline(now, counters, base.rates)
            return {_RATES[k]: base.rates.get(k, 0.0) for k in _RATES}
        rates = {}
        for key, value in counters.items():
            delta = value - base.counters[key]
            # A counter that went backwards was reset (a recreated component): what it counts
            # now is what happened since, as Prometheus treats counter resets. Never negative.
            if delta < 0:
                delta = value
            rates[key] = _round_rate(max(0, delta) / elapsed)
        self._baselines[name] = _Baseline(now, counters, rates)
        return {_RATES[k]: rates[k] for k in _RATES}


def _age(now: float, t: float | None) -> float | None:
    return round(max(0.0, now - t), 3) if t is not None else None


def _quantile(values: Sequence[float], q: float) -> float:
    return round(float(np.percentile(np.asarray(values) if values else np.zeros(1), q)), 2)


def _camera_raw(camera: Camera, events: int, now: float) -> CameraRaw:
    cs, ps = camera.capture.stats, camera.pipeline.stats
    people = camera.pipeline.people.stats if camera.pipeline.people is not None else None
    ring, stride = camera.pipeline.ring, camera.pipeline.schedule.stride
    window_from = [t for t in (ps.last_window_at, cs.online_since) if t is not None]
    raw: CameraRaw = {
        "online": cs.online,
        "enabled": camera.pipeline.enabled,
        "finished": cs.finished,
        "frames_read": cs.frames_read,
        "frames_sampled": cs.frames_sampled,
        "windows": ps.windows,
        "stale_windows": ps.stale_windows,
        "motion_skipped": ps.motion_skipped,
        "reconnects": cs.reconnects,
        "cuts": cs.cuts,
        "failures": cs.failures,
        "error": cs.error,
        "detections": people.detections if people else 0,
        "no_person_windows": people.no_person_windows if people else 0,
        "gated_windows": people.gated_windows if people else 0,
        "enter_threshold": camera.pipeline.tracker.config.enter_threshold,
        "events": events,
        "latency_ms_p50": _quantile(ps.latencies_ms, 50),
        "latency_ms_p95": _quantile(ps.latencies_ms, 95),
        "model_ms_p50": _quantile(ps.model_ms, 50),
        "model_ms_p95": _quantile(ps.model_ms, 95),
        "last_frame_age_s": _age(now, cs.last_frame_at),
        "stall_timeout_s": camera.config.stall_timeout_s,
        "last_window_age_s": _age(now, max(window_from)) if window_from else None,
        "window_due_s": round((ring.capacity + stride) * camera.capture.sampler.spacing_s, 3),
    }
    raw["debug_encodes"] = ps.debug_encodes
    zones = camera.pipeline.zones
    if zones is not None and zones.masks:
        raw["masked_fraction"] = round(zones.stats.masked_fraction, 4)
        raw["masked_boxes"] = zones.stats.masked_boxes
        raw["detections_masked"] = people.detections_masked if people else 0
    falls = camera.pipeline.falls
    if falls is not None:
        raw["fall_looks"] = falls.stats.looks
        raw["fall_looks_shared"] = falls.stats.shared_looks
        raw["fall_looks_tracked"] = falls.stats.tracked_looks
        raw["fall_turned_looks"] = falls.stage.look_stats.looks
        raw["fall_turned_calls"] = falls.stage.look_stats.calls
        raw["fall_outside_zones"] = falls.stats.outside_zones
    fight_pose = camera.pipeline.fight_pose
    if fight_pose is not None:
        raw["pose_looks"] = fight_pose.looks
        raw["pose_windows"] = fight_pose.pose_windows
    pretrained = camera.pipeline.pretrained
    if pretrained is not None:
        raw["pretrained_windows"] = pretrained.windows
        raw["pretrained_embedded"] = pretrained.embedded
    return raw


def collect_raw(
    cameras: Mapping[str, Camera],
    scheduler: InferenceScheduler | None,
    *,
    events: Callable[[str], int],
    uptime_s: float,
    now: float,
    spool: dict[str, Any] | None = None,
) -> RawStats:
    """The raw snapshot of the daemon's counters; `now` and `uptime_s` are monotonic."""
    raw: RawStats = {
        "uptime_s": round(uptime_s, 3),
        "rss_mb": process_rss_mb(),
        "inference": {
            "alive": bool(scheduler is not None and scheduler.is_alive()),
            "batches": scheduler.batches if scheduler is not None else 0,
            "errors": scheduler.errors if scheduler is not None else 0,
            "last_inference_age_s": _age(now, scheduler.last_inference_at) if scheduler else None,
            "last_window_age_s": _age(now, scheduler.last_window_at) if scheduler else None,
        },
        "cameras": {name: _camera_raw(cam, events(name), now) for name, cam in cameras.items()},
    }
    if spool is not None:
        raw["spool"] = spool
    return raw


def _round_rate(rate: float) -> float:
    """Two decimals; three significant digits below 1/s so slow rates don't read as zero."""
    if rate == 0 or rate >= 1:
        return round(rate, 2)
    return float(f"{rate:.3g}")


def camera_health(
    raw: RawStats | StatsPayload, *, inference_stall_s: float = 30.0
) -> dict[str, list[str]]:
    """Why each camera is not being watched (an empty list: it is).

    A camera whose capture failed (an exception, unusable frames) is unhealthy until frames
    flow again, a file given up included. An enabled, unfinished camera is unhealthy when it
    is offline, has read no frame for longer than its stall timeout, or reads frames but has
    had no window for `inference_stall_s` past the time a window takes to come due (its frames
    are not sampled, say). Cameras paused by control (disabled) and files that ended are healthy.
    """
    out: dict[str, list[str]] = {}
    for name, cam in raw.get("cameras", {}).items():
        reasons = out[name] = []
        if cam.get("error"):
            reasons.append(f"camera {name!r} failed: {cam['error']}")
            continue
        if not cam.get("enabled", True) or cam.get("finished", False):
            continue
        if not cam.get("online", False):
            reasons.append(f"camera {name!r} is offline")
            continue
        age = cam.get("last_frame_age_s")
        stall = float(cam.get("stall_timeout_s", 10.0))
        if age is not None and age > stall:
            reasons.append(
                f"camera {name!r} has read no frame for {age:.1f}s (stall timeout {stall:g}s)"
            )
        window_age = cam.get("last_window_age_s")
        limit = inference_stall_s + float(cam.get("window_due_s", 0.0))
        if window_age is not None and window_age > limit:
            reasons.append(
                f"camera {name!r} has had no window for {window_age:.1f}s while online "
                f"(limit {limit:g}s)"
            )
    return out


def health(
    raw: RawStats | StatsPayload, *, inference_stall_s: float = 30.0
) -> tuple[bool, list[str]]:
    """Return (healthy, reasons): why the daemon is not doing its job, empty when it is.

    Unhealthy when the inference thread is dead; when windows are due (an enabled, unfinished
    camera is online) but inference has not run for `inference_stall_s`; or when a camera is
    unhealthy (`camera_health`).
    """
    reasons: list[str] = []
    inf = raw.get("inference")
    if inf is None or not inf.get("alive", False):
        reasons.append("inference thread is not running")
    cameras = raw.get("cameras", {})
    for camera_reasons in camera_health(raw, inference_stall_s=inference_stall_s).values():
        reasons += camera_reasons
    due = [
        name
        for name, cam in cameras.items()
        if cam.get("enabled", True) and not cam.get("finished", False) and cam.get("online")
    ]
    if inf is not None and inf.get("alive", False) and due:
        ages = [inf.get("last_inference_age_s"), inf.get("last_window_age_s")]
        known = [a for a in ages if a is not None]
        # Never run since start: the whole uptime counts.
        idle = min(known) if known else float(raw.get("uptime_s", 0.0))
        if idle > inference_stall_s:
            reasons.append(
                f"inference has not run for {idle:.1f}s while {', '.join(sorted(due))} "
                f"{'is' if len(due) == 1 else 'are'} online (limit {inference_stall_s:g}s)"
            )
    return not reasons, reasons


def process_rss_mb() -> float:
    """This process's resident memory in MiB: current from /proc, else the peak (non-Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; bytes on macOS
        return round(peak / (1024**2 if sys.platform == "darwin" else 1024), 1)
