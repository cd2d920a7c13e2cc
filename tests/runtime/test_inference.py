"""The inference thread's scheduling, on the real LiteRT backend of the bundled model."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from har_daemon.model.meta import read_meta
from har_daemon.model.preprocess import resize_frame, to_model_input
from har_daemon.model.regions import crop_window
from har_daemon.model.registry import create_backend
from har_daemon.runtime.crop_ring import CropRing
from har_daemon.runtime.events import ActivityTracker, TrackerConfig
from har_daemon.runtime.inference import (
    CameraPipeline,
    GapResult,
    InferenceScheduler,
    WindowResult,
    motion_score,
)
from har_daemon.runtime.people import PeopleStage
from har_daemon.runtime.ring import FrameRing, StrideSchedule
from har_daemon.runtime.smoothing import Smoother
from tests.shared_data import REPO

DEMO = REPO / "models" / "demo"


class RecordingBackend:
    """The real backend, with a note of every batch size it was given."""

    def __init__(self) -> None:
        self.inner = create_backend("litert", DEMO)
        self.meta = self.inner.meta
        self.batches: list[int] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(len(batch))
        return self.inner.predict(batch)


@pytest.fixture(scope="module")
def backend() -> RecordingBackend:
    return RecordingBackend()


def _pipeline(name: str, meta, stride: int = 5) -> CameraPipeline:  # type: ignore[no-untyped-def]
    return CameraPipeline(
        name=name,
        ring=FrameRing(meta.sequence_length, (meta.frame_height, meta.frame_width, 3)),
        schedule=StrideSchedule(stride),
        smoother=Smoother("mean", 3),
        tracker=ActivityTracker(TrackerConfig(), meta.classes, camera=name),
    )


def _push(p: CameraPipeline, n: int, rng: np.random.Generator, t0: float = 0.0) -> None:
    shape = p.ring.frame_shape
    for i in range(n):
        p.ring.push(rng.integers(0, 256, shape, dtype=np.uint8), t0 + i * 0.1)


def test_due_windows_of_several_cameras_go_in_one_batch(backend: RecordingBackend) -> None:
    meta = backend.meta
    cams = [_pipeline(n, meta) for n in ("a", "b", "c")]
    results: list[WindowResult] = []
    sched = InferenceScheduler(backend, meta, cams, results.append, batch_max=8)
    rng = np.random.default_rng(0)
    _push(cams[0], 20, rng)
    _push(cams[1], 20, rng)
    _push(cams[2], 19, rng)  # not full yet
    backend.batches.clear()
    assert sched.run_once() == 2
    assert backend.batches == [2]
    assert {r.camera for r in results} == {"a", "b"}
    for r in results:
        assert r.probs.shape == (len(meta.classes),)
        assert r.probs.sum() == pytest.approx(1.0, abs=1e-4)
        assert r.window_end == pytest.approx(1.9)
    # Nothing is due again until `stride` new frames arrive.
    assert sched.run_once() == 0
    _push(cams[0], 5, rng, 2.0)
    assert sched.run_once() == 1


def test_batches_are_capped(backend: RecordingBackend) -> None:
    meta = backend.meta
    cams = [_pipeline(f"c{i}", meta) for i in range(5)]
    sched = InferenceScheduler(backend, meta, cams, lambda r: None, batch_max=2)
    rng = np.random.default_rng(1)
    for p in cams:
        _push(p, 20, rng)
    backend.batches.clear()
    assert sched.run_once() == 5
    assert backend.batches == [2, 2, 1]


def test_a_slow_consumer_takes_only_the_newest_window(backend: RecordingBackend) -> None:
    meta = backend.meta
    cam = _pipeline("a", meta, stride=5)
    results: list[WindowResult] = []
    sched = InferenceScheduler(backend, meta, [cam], results.append)
    rng = np.random.default_rng(2)
    _push(cam, 20, rng)
    sched.run_once()
    _push(cam, 15, rng, 2.0)  # three windows became due meanwhile
    sched.run_once()
    assert cam.stats.windows == 2
    assert cam.stats.stale_windows == 2
    assert results[-1].window_end == pytest.approx(2.0 + 14 * 0.1)


def test_motion_gating_skips_static_scenes(backend: RecordingBackend) -> None:
    meta = backend.meta
    cam = _pipeline("a", meta)
    sched = InferenceScheduler(
        backend, meta, [cam], lambda r: None, motion_gating=True, motion_threshold=0.01
    )
    still = np.full(cam.ring.frame_shape, 90, np.uint8)
    for i in range(20):
        cam.ring.push(still, i * 0.1)
    assert sched.run_once() == 0
    assert cam.stats.motion_skipped == 1
    rng = np.random.default_rng(3)
    _push(cam, 20, rng, 3.0)
    assert sched.run_once() == 1


def test_motion_score_is_zero_for_a_still_scene_and_high_for_noise() -> None:
    still = np.zeros((20, 8, 8, 3), np.uint8)
    assert motion_score(still) == 0.0
    noise = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    assert motion_score(noise) > 0.2


def test_thread_wakes_on_notify_and_stops(backend: RecordingBackend) -> None:
    meta = backend.meta
    cam = _pipeline("a", meta)
    done = threading.Event()
    sched = InferenceScheduler(backend, meta, [cam], lambda r: done.set())
    sched.start()
    try:
        _push(cam, 20, np.random.default_rng(4))
        sched.notify("a")
        assert done.wait(5)
    finally:
        sched.stop()
        sched.join(timeout=5)
    assert not sched.is_alive()
    assert sched.last_inference_at is not None and sched.last_inference_at <= time.monotonic()


def test_a_stream_gap_ends_the_open_activity_at_the_last_window(
    backend: RecordingBackend,
) -> None:
    meta = backend.meta
    cam = _pipeline("a", meta)
    # Thresholds low enough that the first window starts an activity, whatever the scores.
    cam.tracker = ActivityTracker(
        TrackerConfig(enter_threshold=0.01, exit_threshold=0.0, min_windows=1),
        meta.classes,
        camera="a",
    )
    gaps: list[GapResult] = []
    results: list[WindowResult] = []
    sched = InferenceScheduler(backend, meta, [cam], results.append, gap_sink=gaps.append)
    _push(cam, 20, np.random.default_rng(5), t0=100.0)
    sched.run_once()
    started = [t for t in results[0].transitions if t.kind == "start"]
    assert started and cam.tracker.active is not None

    cam.gap.set()
    sched.run_once()
    assert not cam.gap.is_set()
    assert len(gaps) == 1 and gaps[0].camera == "a"
    assert gaps[0].state.activity is None
    (end,) = gaps[0].transitions
    assert end.kind == "end" and end.reason == "finish"
    assert end.occurrence_id == started[0].occurrence_id
    assert end.ended_at == pytest.approx(101.9)  # the last frame seen before the gap
    assert cam.tracker.active is None and cam.smoother.value is None


class Scripted:
    """The fight model's interface, scoring every window `fight` (a fake of our Backend)."""

    def __init__(self) -> None:
        self.meta = read_meta(REPO / "models" / "fight")
        self.fight = 0.95

    def predict(self, batch: np.ndarray) -> np.ndarray:
        i = self.meta.classes.index("fight")
        out = np.full((len(batch), len(self.meta.classes)), 1.0 - self.fight, np.float32)
        out[:, i] = self.fight
        return out


class Boxes:
    """A person detector that finds the people it is told to."""

    def __init__(self) -> None:
        self.boxes = np.zeros((0, 5), np.float32)

    def detect(self, frame: np.ndarray) -> np.ndarray:
        return self.boxes


ONE = np.array([[100, 100, 130, 200, 0.9]], np.float32)
PAIR = np.array([[100, 100, 130, 200, 0.9], [140, 100, 170, 200, 0.9]], np.float32)  # 0.1 apart


def test_the_interaction_gate_holds_a_fight_back_until_two_people_are_close() -> None:
    backend, det = Scripted(), Boxes()
    meta = backend.meta
    assert meta.person_region is not None
    tracker = ActivityTracker(
        TrackerConfig(0.5, 0.4, 1, alert_activities={"fight"}, ignore_activities={"noFight"}),
        meta.classes,
        camera="cam",
    )
    stage = PeopleStage(det, meta.person_region, Smoother, span_s=2.0, interaction_gap=0.5)
    p = CameraPipeline(
        "cam", CropRing(meta.sequence_length), StrideSchedule(5), Smoother(), tracker
    )
    p.people = stage
    kinds: list[str] = []
    sched = InferenceScheduler(
        backend,  # type: ignore[arg-type]
        meta,
        [p],
        lambda r: kinds.extend(tr.kind for tr in r.transitions),
    )
    rng = np.random.default_rng(0)
    t = 0.0

    def feed(n: int) -> None:
        nonlocal t
        for _ in range(n):
            p.ring.push(rng.integers(0, 256, (270, 480, 3), dtype=np.uint8), t)
            t += 0.1
            sched.run_once()

    det.boxes = ONE
    feed(60)  # one person scoring 0.95 for 6 s: nobody to fight with
    assert kinds == [] and stage.stats.gated_windows >= 8
    det.boxes = PAIR
    feed(10)
    assert kinds == ["start"]
    det.boxes = ONE
    feed(40)  # the two merge into one box, the model still sees a fight: it goes on
    assert "end" not in kinds
    backend.fight = 0.1
    feed(10)
    assert kinds[-1] == "end"


class Recording(Scripted):
    """`Scripted`, keeping every batch it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[np.ndarray] = []

    def predict(self, batch: np.ndarray) -> np.ndarray:
        self.batches.append(batch.copy())
        return super().predict(batch)


def test_person_windows_from_the_kept_crops_are_the_crops_of_the_whole_frames() -> None:
    """Two cameras share the inference thread's window buffer; once a look has said where the
    person is, each camera's region is cut from its own kept pixels exactly as from its frames."""
    backend, det = Recording(), Boxes()
    meta = backend.meta
    assert meta.person_region is not None
    # 40 px tall: its region and margin fit a quarter of the frame, kept at full resolution
    det.boxes = np.array([[100, 100, 120, 140, 0.9]], np.float32)
    cams = []
    for name in ("a", "b"):
        p = CameraPipeline(
            name,
            CropRing(meta.sequence_length),
            StrideSchedule(5),
            Smoother(),
            ActivityTracker(TrackerConfig(0.5, 0.4, 1), meta.classes, camera=name),
        )
        p.people = PeopleStage(det, meta.person_region, Smoother, span_s=2.0)
        cams.append(p)
    sched = InferenceScheduler(backend, meta, cams, lambda r: None)  # type: ignore[arg-type]
    rng = np.random.default_rng(4)
    pushed: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    sizes = {"a": (270, 480), "b": (360, 480)}  # different cameras, different working sizes
    for i in range(25):
        for p in cams:
            small = rng.integers(0, 256, (sizes[p.name][0] // 6, 80, 3), dtype=np.uint8)
            frame = resize_frame(small, sizes[p.name], "linear")
            pushed[p.name].append(frame)
            p.ring.push(frame, i * 0.1)
        sched.run_once()
    assert len(backend.batches) == 2  # the window at 20 frames, then the one at 25
    last = backend.batches[-1]
    assert len(last) == 2  # one region per camera, batched
    for p, got in zip(cams, last, strict=True):
        assert p.people is not None
        (region,) = p.people.regions(0.5, 2.4, sizes[p.name])
        frames = np.stack(pushed[p.name][5:25])
        want = to_model_input(
            crop_window(frames, region, meta.frame_size, meta.resize_interpolation)[None],
            meta.color_order,
            meta.input_scale,
            meta.input_transform,
        )[0]
        np.testing.assert_array_equal(got, want)
    # a stream gap: the people seen before it say nothing about where to keep pixels after it
    a, b = cams
    assert isinstance(a.ring, CropRing) and isinstance(b.ring, CropRing)
    assert a.ring.area is not None
    a.ring.clear()  # as the capture thread does at a gap
    a.gap.set()
    sched.run_once()
    assert a.ring.area is None and b.ring.area is not None
