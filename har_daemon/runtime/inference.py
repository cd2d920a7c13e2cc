"""The inference thread: one model shared by all cameras, always on the newest windows.

Capture threads only push frames and poke this thread; it takes every camera's due window
(newest only: if it fell behind, older windows are counted as stale and dropped, never queued),
runs the windows of all ready cameras as one batch, and hands the results on. Work never piles
up, so latency stays bounded when the machine is overloaded: accuracy of timing degrades
gracefully instead of the daemon falling minutes behind.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from har_daemon.core.clock import Clock
from har_daemon.core.logs import get_logger
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.model.preprocess import to_model_input
from har_daemon.model.regions import Region, normalised
from har_daemon.runtime.crop_ring import CropRing, KeptFrames, KeptWindow
from har_daemon.runtime.events import ActivityState, ActivityTracker, Signal, Transition
from har_daemon.runtime.fight_pose import FightPoseStage
from har_daemon.runtime.people import PeopleStage, RegionTrack
from har_daemon.runtime.pretrained import PretrainedStage
from har_daemon.runtime.recognisers import ActivityResult, FallRecogniser
from har_daemon.runtime.ring import FrameRing, StrideSchedule, Window
from har_daemon.runtime.smoothing import Smoother
from har_daemon.runtime.zones import CameraZones

log = get_logger(__name__)


def motion_score(frames: np.ndarray) -> float:
    """Mean absolute change between consecutive frames, 0..1: near 0 for a static scene."""
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0))
    return float(diffs.mean()) / 255.0


def _recent() -> deque[float]:
    return deque(maxlen=512)


@dataclass
class PipelineStats:
    windows: int = 0
    stale_windows: int = 0
    motion_skipped: int = 0
    # Frame captured -> results published, per window (the event router measures it).
    latencies_ms: deque[float] = field(default_factory=_recent)
    model_ms: deque[float] = field(default_factory=_recent)  # the model call alone
    last_window_at: float | None = None  # monotonic: a window taken, scored or skipped
    debug_encodes: int = 0  # pictures the debug view drew and encoded (0 while nobody watches)


@dataclass
class CameraPipeline:
    """Everything per camera that the inference thread owns."""

    name: str
    ring: FrameRing
    schedule: StrideSchedule
    smoother: Smoother
    tracker: ActivityTracker
    enabled: bool = True
    stats: PipelineStats = field(default_factory=PipelineStats)
    # Set by the capture side when the stream drops; handled on the inference thread, which
    # owns the tracker and smoother.
    gap: threading.Event = field(default_factory=threading.Event)
    # Set by the capture side at a scene cut: the ring restarted there; like a gap, it ends the
    # open activity at the last window before it and restarts smoothing.
    cut: threading.Event = field(default_factory=threading.Event)
    last_window_end: float | None = None
    people: PeopleStage | None = None  # person-centric models: where to crop the windows
    falls: FallRecogniser | None = None  # the fall recogniser, on the same frames
    fight_pose: FightPoseStage | None = None  # pose fusion for the fight score, if on
    pretrained: PretrainedStage | None = None  # pretrained appearance fusion, if on
    classify: bool = True  # False: the camera runs other recognisers only
    zones: CameraZones | None = None  # the camera's zones and masks, if it has any
    last_result: WindowResult | None = None  # the newest scored window (the debug view's)
    _frames: np.ndarray | None = None
    _times: np.ndarray | None = None

    def alert_mask(self) -> np.ndarray:
        """Which classes raise events (all of them when none would)."""
        classes = self.tracker.classes or []
        mask = np.array([self.tracker.config.alerts(c) for c in classes], bool)
        return mask if mask.any() else np.ones(len(classes), bool)

    def take(self, kept: KeptFrames | None = None) -> Window | KeptWindow | None:
        """The due window, if any: a person-centric camera's into `kept` (the inference
        thread's one buffer, reused camera after camera)."""
        if isinstance(self.ring, CropRing):
            return self.ring.take_kept(self.schedule, kept if kept is not None else KeptFrames())
        shape = (self.ring.capacity, *self.ring.frame_shape)
        if self._frames is None or self._frames.shape != shape:
            self._frames = np.empty(shape, np.uint8)
            self._times = np.empty(self.ring.capacity, np.float64)
        return self.ring.take(self.schedule, out=self._frames, times_out=self._times)


@dataclass
class _Job:
    """One model input: a camera's window, or the crop of one region of it."""

    pipeline: CameraPipeline
    frames: np.ndarray
    t_end: float
    captured_at: float | None
    track: RegionTrack | None = None
    region: list[float] | None = None
    alone: bool = False  # the interaction gate found no two people close together in it
    zones: list[str] | None = None  # where the region's people stood (cameras with zones)
    box: Region | None = None  # the region in frame pixels
    signal: Signal | None = None  # pose fusion: which signal scored the region
    pretrained: float | None = None  # the pretrained head's fight score of the region


@dataclass(frozen=True)
class WindowResult:
    """One scored window and what the camera's tracker made of it, for the event side."""

    camera: str
    window_end: float  # frame time (the timeline) of the window's newest frame
    probs: np.ndarray
    smoothed: np.ndarray
    transitions: list[Transition]
    state: ActivityState  # the tracker's state after this window
    region: list[float] | None = None  # person-centric models: the region scored, normalised
    captured_at: float | None = None  # monotonic: when the newest frame was captured
    zones: list[str] | None = None  # cameras with zones: the zones the region's people were in
    regions: tuple[tuple[list[float], int, list[str] | None], ...] = ()
    """Every region scored this window: (normalised region, track id, zones)."""
    signal: Signal | None = None
    """Pose or pretrained fusion on: which signal scored the region that speaks for the camera."""


@dataclass(frozen=True)
class GapResult:
    """A stream gap closed the camera's activity (or a pause did): no window, only endings."""

    camera: str
    at: float
    transitions: list[Transition]
    state: ActivityState


ResultSink = Callable[[WindowResult], None]
GapSink = Callable[[GapResult], None]
ActivitySink = Callable[[ActivityResult], None]


class InferenceScheduler(threading.Thread):
    def __init__(
        self,
        backend: Backend,
        meta: ModelMeta,
        pipelines: list[CameraPipeline],
        sink: ResultSink,
        *,
        batch_max: int = 8,
        motion_gating: bool = False,
        motion_threshold: float = 0.01,
        gap_sink: GapSink | None = None,
        frame_clock: Callable[[], float] | None = None,
        activity_sink: ActivitySink | None = None,
    ) -> None:
        """`frame_clock`: the capture threads' (`CameraCapture`), for endings without a frame;
        `activity_sink`: the other recognisers' (falls') outcomes."""
        super().__init__(name="inference", daemon=True)
        self.backend = backend
        self.meta = meta
        self.pipelines = {p.name: p for p in pipelines}
        self.sink = sink
        self.batch_max = batch_max
        self.motion_gating = motion_gating
        self.motion_threshold = motion_threshold
        self.gap_sink = gap_sink
        self.activity_sink = activity_sink
        self.frame_clock = frame_clock or Clock().timeline
        self.crashed = False  # run() ended by an exception: a bug
        self._wake = threading.Condition()
        self._pending = False
        self._stopping = threading.Event()
        self.batches = 0
        self.last_inference_at: float | None = None  # monotonic
        self.last_window_at: float | None = None  # monotonic: a window taken, run or skipped
        self.errors = 0
        self._kept = KeptFrames()  # person-centric windows, cropped before the next is taken

    def notify(self, camera: str | None = None) -> None:
        """Called by capture threads after each sampled frame."""
        with self._wake:
            self._pending = True
            self._wake.notify()

    def stop(self) -> None:
        self._stopping.set()
        self.notify()

    def run(self) -> None:
        try:
            while not self._stopping.is_set():
                with self._wake:
                    if not self._pending:
                        self._wake.wait(timeout=0.5)
                    self._pending = False
                if self._stopping.is_set():
                    break
                self.run_once()
        except BaseException:
            self.crashed = True
            raise

    def run_once(self) -> int:
        """Look for people where due, take every due window and run them; returns how many
        camera windows were scored."""
        jobs: list[_Job] = []
        for p in self.pipelines.values():
            if p.gap.is_set():
                p.gap.clear()
                self._restart(p)
            if p.cut.is_set():
                p.cut.clear()
                self._restart(p)
            if (
                p.people is not None or p.falls is not None or p.fight_pose is not None
            ) and p.enabled:
                self._look(p)
            window = p.take(self._kept)
            if window is None:
                continue
            p.stats.stale_windows += window.skipped
            self.last_window_at = p.stats.last_window_at = time.monotonic()
            if not p.enabled or not p.classify:
                continue
            t_end = float(window.times[-1])
            if isinstance(window, KeptWindow):
                jobs += self._region_jobs(p, window.frames, window.captured_at)
            elif p.people is None:
                if self.motion_gating and motion_score(window.frames) < self.motion_threshold:
                    p.stats.motion_skipped += 1
                    continue
                jobs.append(_Job(p, window.frames, t_end, window.captured_at))
        scored = self._predict(jobs)
        by_camera: dict[str, list[tuple[_Job, np.ndarray]]] = {}
        for job, prob in scored:
            by_camera.setdefault(job.pipeline.name, []).append((job, prob))
        for items in by_camera.values():
            self._decide(items)
        return len(by_camera)

    def _look(self, p: CameraPipeline) -> None:
        """The person stage and the fall stage at the ring's newest frame, where due; one
        detector call serves both when both are due on it."""
        latest = p.ring.latest()
        if latest is None:
            return
        frame, t, count = latest
        boxes = None
        if p.people is not None and p.people.due(count):
            boxes = p.people.look(frame, t, count)
            if isinstance(p.ring, CropRing):
                p.ring.area = p.people.kept_area
        if p.falls is not None:
            if p.falls.due(t, boxes is not None):
                result = p.falls.look(frame, t, boxes)
                if self.activity_sink is not None:
                    self.activity_sink(result)
            p.falls.seen_count = count
        if p.fight_pose is not None and p.fight_pose.due(t):
            p.fight_pose.look(frame, t, boxes)

    def _region_jobs(
        self, p: CameraPipeline, kept: KeptFrames, captured_at: float | None
    ) -> list[_Job]:
        """One job per region of people; none (and the activity ends) when nobody is there."""
        assert p.people is not None
        frame_hw, times = kept.frame_hw, kept.times[: kept.n]
        regions = p.people.regions(float(times[0]), float(times[-1]), frame_hw)
        tracks = p.people.tracks_for(regions)
        t_end = float(times[-1])
        if not regions:
            p.people.stats.no_person_windows += 1
            p.last_window_end = t_end
            transitions = p.tracker.finish(t_end)
            if self.gap_sink is not None:  # nobody there: an ending, or a droppable refresh
                self.gap_sink(GapResult(p.name, t_end, transitions, p.tracker.state))
            return []
        size = self.meta.frame_size
        t_first = float(times[0])
        return [
            _Job(
                p,
                kept.crop(region, size, self.meta.resize_interpolation),
                t_end,
                captured_at,
                track,
                normalised(region, frame_hw),
                not p.people.interacting(t_first, t_end, region),
                p.people.zones_in(region, t_first, t_end, frame_hw),
                region,
                pretrained=None if p.pretrained is None else p.pretrained.score(kept, region),
            )
            for region, track in zip(regions, tracks, strict=True)
        ]

    def _predict(self, jobs: list[_Job]) -> list[tuple[_Job, np.ndarray]]:
        out: list[tuple[_Job, np.ndarray]] = []
        for i in range(0, len(jobs), self.batch_max):
            chunk = jobs[i : i + self.batch_max]
            batch = to_model_input(
                np.stack([job.frames for job in chunk]),
                self.meta.color_order,
                self.meta.input_scale,
                self.meta.input_transform,
            )
            started = time.monotonic()
            try:
                probs = self.backend.predict(batch)
            except Exception:
                self.errors += 1
                log.exception("inference.failed", cameras=sorted({j.pipeline.name for j in chunk}))
                continue
            self.batches += 1
            self.last_inference_at = time.monotonic()
            elapsed_ms = (self.last_inference_at - started) * 1000.0
            for job in chunk:
                job.pipeline.stats.model_ms.append(elapsed_ms)
            out += list(zip(chunk, probs, strict=True))
        return out

    def _decide(self, items: list[tuple[_Job, np.ndarray]]) -> None:
        """Smooth each region's scores on its own track; the most alarming region speaks for
        the camera (its tracker and its event's region)."""
        p = items[0][0].pipeline
        if p.people is None:
            ((job, prob),) = items
            smoothed = p.smoother.update(prob)
        else:
            alert = p.alert_mask()
            # A gated region's alerting scores are capped between the exit and the enter
            # threshold: alone, nobody starts a fight, but one under way goes on while the model
            # still sees it (fighters part, or merge into one box).
            tc = p.tracker.config
            cap = np.where(alert, (tc.exit_threshold + tc.enter_threshold) / 2, 1.0)
            ranked = []
            for job, prob in items:
                if p.pretrained is not None and job.pretrained is not None:
                    prob, job.signal = p.pretrained.signal(prob, job.pretrained)
                if p.fight_pose is not None and job.box is not None:
                    own = job.signal
                    prob, job.signal = p.fight_pose.signal(job.box, job.t_end, prob)
                    if own is not None:  # the scores as each signal gave them
                        job.signal = PretrainedStage.with_pose(job.signal, own)
                gated = self._gated(p, job, prob)
                capped = np.minimum(gated, cap) if job.alone else gated
                ranked.append((job, prob, job.track.smoother.update(capped)))
            job, prob, smoothed = max(ranked, key=lambda r: float(np.max(r[2][alert])))
        t_end = job.t_end
        p.stats.windows += 1
        p.last_window_end = t_end
        transitions = p.tracker.step(smoothed, now=t_end)
        if job.signal is not None:  # why it started or goes on
            transitions = [tr if tr.kind == "end" else replace(tr, signal=job.signal)
                           for tr in transitions]  # fmt: skip
        p.last_result = result = WindowResult(
            p.name,
            t_end,
            prob,
            smoothed,
            transitions,
            p.tracker.state,
            job.region,
            job.captured_at,
            job.zones,
            tuple((j.region, j.track.id, j.zones) for j, _ in items if j.region and j.track),
            job.signal,
        )
        self.sink(result)

    @staticmethod
    def _gated(p: CameraPipeline, job: _Job, prob: np.ndarray) -> np.ndarray:
        """A region's scores with the activities it may not raise (outside their required
        zones) at 0, before smoothing: such an activity neither starts nor goes on there."""
        if p.zones is None or job.zones is None:
            return prob
        return p.zones.gate(prob, job.zones)

    def finish(self, p: CameraPipeline) -> None:
        """End the camera's open activity at its newest frame (shutdown, end of a file).

        Call only once this thread has stopped: the tracker is this thread's to change."""
        times = p.ring.snapshot()[1]
        at = float(times[-1]) if len(times) else (p.last_window_end or self.frame_clock())
        transitions = p.tracker.finish(at)
        if self.gap_sink is not None:
            self.gap_sink(GapResult(p.name, at, transitions, p.tracker.state))
        self._end_falls(p, at)

    def _end_falls(self, p: CameraPipeline, at: float) -> None:
        if p.falls is not None:
            result = p.falls.reset(at)
            if self.activity_sink is not None:
                self.activity_sink(result)

    def _restart(self, p: CameraPipeline) -> None:
        """A stream gap or a scene cut ends what was going on: the activity was last seen
        before it (the new picture has to show it again), and smoothing must not blend scores
        from both sides."""
        p.smoother.reset()
        if p.people is not None:
            p.people.reset()
        if p.fight_pose is not None:
            p.fight_pose.reset()
        if p.pretrained is not None:
            p.pretrained.reset()
        if isinstance(p.ring, CropRing):
            p.ring.area = None
        at = p.last_window_end or self.frame_clock()
        transitions = p.tracker.finish(at)
        if self.gap_sink is not None:
            self.gap_sink(GapResult(p.name, at, transitions, p.tracker.state))
        self._end_falls(p, at)
