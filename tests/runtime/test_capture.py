"""Capture: backoff, start-up checks, and a real file read into a ring by a real thread."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import pytest

from har_daemon.config import CameraConfig
from har_daemon.core.errors import ConfigError
from har_daemon.model.preprocess import resize_frame
from har_daemon.runtime.capture import (
    CameraCapture,
    backoff_delay,
    check_file_source,
)
from har_daemon.runtime.ring import FrameRing
from tests.infra.media import make_test_video
from tests.infra.rtsp_server import RtspServer


def test_backoff_grows_exponentially_to_the_cap_with_bounded_jitter() -> None:
    rng = random.Random(1)
    plain = [backoff_delay(a, 1.0, 30.0, 0.0, rng) for a in range(8)]
    assert plain == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    jittered = [backoff_delay(3, 1.0, 30.0, 0.25, rng) for _ in range(500)]
    assert min(jittered) >= 6.0 and max(jittered) <= 10.0
    assert np.std(jittered) > 0.5  # really spread out, so cameras do not retry in lockstep


def _write_counter_video(path: Path, frames: int, fps: float = 25.0) -> None:
    """Each frame's brightness encodes its index, so sampled frames can be identified."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (96, 72))
    for i in range(frames):
        writer.write(np.full((72, 96, 3), (i * 4) % 256, np.uint8))
    writer.release()


def test_check_file_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file does not exist"):
        check_file_source(str(tmp_path / "missing.mp4"))
    bad = tmp_path / "notes.mp4"
    bad.write_text("not a video")
    with pytest.raises(ConfigError, match="notes.mp4"):
        check_file_source(str(bad))
    good = tmp_path / "ok.avi"
    _write_counter_video(good, 10)
    check_file_source(str(good))


def _capture(path: Path, ring: FrameRing, **kw: object) -> tuple[CameraCapture, list, list]:
    statuses: list[tuple[bool, str]] = []
    frames: list[str] = []
    options = CameraConfig(name="cam", source=str(path), **kw)  # type: ignore[arg-type]
    cap = CameraCapture(
        options,
        ring,
        frame_spacing_s=0.1,
        prepare=partial(resize_frame, size_hw=(16, 16)),
        on_frame=frames.append,
        on_status=lambda _n, online, why: statuses.append((online, why)),
    )
    return cap, frames, statuses


def test_file_is_sampled_at_the_model_spacing_and_ends(tmp_path: Path) -> None:
    video = tmp_path / "counter.avi"
    _write_counter_video(video, 50)  # 2 s at 25 fps
    ring = FrameRing(20, (16, 16, 3))
    cap, frames, statuses = _capture(video, ring, realtime=False)
    cap.start()
    cap.join(timeout=10)
    assert not cap.is_alive() and cap.finished
    assert cap.stats.frames_read == 50
    # 0.1 s spacing over 2 s of 25 fps video: every 2.5th frame, 20 frames.
    assert cap.stats.frames_sampled == 20 == len(frames)
    assert statuses == [(True, "connected"), (False, "ended")]
    window, times = ring.snapshot()
    assert len(window) == 20
    gaps = np.diff(times)
    assert np.allclose(gaps.mean(), 0.1, atol=0.01) and (gaps > 0).all()
    brightness = window.reshape(20, -1).mean(axis=1) / 4
    assert brightness[0] == pytest.approx(0, abs=1.5)
    assert brightness[-1] == pytest.approx(48, abs=1.5)


@pytest.mark.parametrize("threads", [1, 3])
def test_a_file_opens_with_the_configured_decoder_threads(tmp_path: Path, threads: int) -> None:
    video = make_test_video(tmp_path / "clip.mp4", seconds=1.0)  # H.264, as cameras send
    cap, _, _ = _capture(video, FrameRing(20, (16, 16, 3)), decoder_threads=threads)
    opened = cap._open()
    assert opened is not None
    try:
        assert opened.get(cv2.CAP_PROP_N_THREADS) == threads
        assert opened.read()[0]
    finally:
        opened.release()


def test_an_rtsp_stream_opens_with_the_configured_decoder_threads(
    rtsp_server_factory: Callable[..., RtspServer], sample_video: Path
) -> None:
    server = rtsp_server_factory(sample_video)
    options = CameraConfig(name="cam", source=server.url, decoder_threads=1)
    cap = CameraCapture(options, FrameRing(20, (16, 16, 3)), 0.1, np.asarray, print, print)
    opened = cap._open()
    assert opened is not None
    try:
        assert opened.get(cv2.CAP_PROP_N_THREADS) == 1
        assert opened.read()[0]
    finally:
        opened.release()


def test_decoder_threads_0_leaves_opencv_its_default(tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "clip.mp4", seconds=1.0)
    cap, _, _ = _capture(video, FrameRing(20, (16, 16, 3)), decoder_threads=0)
    opened, plain = cap._open(), cv2.VideoCapture(str(video), cv2.CAP_FFMPEG)
    assert opened is not None
    try:
        assert opened.get(cv2.CAP_PROP_N_THREADS) == plain.get(cv2.CAP_PROP_N_THREADS) >= 1
    finally:
        opened.release()
        plain.release()


def test_realtime_playback_takes_the_files_duration(tmp_path: Path) -> None:
    video = tmp_path / "counter.avi"
    _write_counter_video(video, 25)  # 1 s
    cap, _, _ = _capture(video, FrameRing(20, (16, 16, 3)), realtime=True)
    import time

    t0 = time.monotonic()
    cap.start()
    cap.join(timeout=10)
    assert 0.85 <= time.monotonic() - t0 <= 3.0


def test_looping_file_keeps_going_until_stopped(tmp_path: Path) -> None:
    video = tmp_path / "counter.avi"
    _write_counter_video(video, 10)
    ring = FrameRing(20, (16, 16, 3))
    cap, frames, _ = _capture(video, ring, realtime=False, loop=True)
    seen = threading.Event()

    def on_frame(name: str) -> None:
        frames.append(name)
        if len(frames) >= 30:
            seen.set()

    cap.on_frame = on_frame
    cap.start()
    assert seen.wait(10), "a looping file should yield frames past its end"
    cap.stop()
    cap.join(timeout=5)
    assert not cap.is_alive()
    assert cap.stats.frames_read > 10


def test_unreachable_stream_backs_off_and_stops_promptly() -> None:
    ring = FrameRing(20, (16, 16, 3))
    statuses: list[tuple[bool, str]] = []
    cap = CameraCapture(
        CameraConfig(
            name="gone",
            source="rtsp://127.0.0.1:9/nothing",
            reconnect_initial_s=0.1,
            reconnect_max_s=0.2,
            open_timeout_s=1.0,
        ),
        ring,
        0.1,
        partial(resize_frame, size_hw=(16, 16)),
        on_frame=lambda _n: None,
        on_status=lambda _n, online, why: statuses.append((online, why)),
    )
    cap.start()
    deadline = time.monotonic() + 10
    while cap.stats.open_failures < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    cap.stop()
    cap.join(timeout=5)
    assert cap.stats.open_failures >= 3
    assert not cap.is_alive()
    # Reported offline once, not once per attempt.
    assert statuses.count((False, "open failed")) == 1


def test_full_frame_hook_gets_full_frames_at_the_history_spacing(tmp_path: Path) -> None:

    video = make_test_video(tmp_path / "pattern.mp4", 2.0, fps=25, size=(320, 240))
    ring = FrameRing(20, (16, 16, 3))
    frames: list[str] = []
    full: list[tuple[str, tuple[int, ...], float]] = []
    hooked = CameraCapture(
        CameraConfig(name="cam", source=str(video), realtime=False),
        ring,
        frame_spacing_s=0.1,
        prepare=partial(resize_frame, size_hw=(16, 16)),
        on_frame=frames.append,
        on_status=lambda *_: None,
        on_full_frame=lambda cam, frame, t: full.append((cam, frame.shape, t)),
        history_spacing_s=0.2,
    )
    hooked.start()
    hooked.join(timeout=20)
    assert not hooked.is_alive() and hooked.finished
    assert hooked.stats.frames_read == 50
    # The ring is still filled at the model's 0.1 s spacing...
    assert hooked.stats.frames_sampled == 20 == len(frames)
    window, ring_times = ring.snapshot()
    assert window.shape == (20, 16, 16, 3)
    # ...and the hook sees full-resolution BGR frames every 0.2 s, stamped like the ring.
    assert len(full) == 10 == hooked.stats.frames_history
    assert all(cam == "cam" and shape == (240, 320, 3) for cam, shape, _ in full)
    times = np.array([t for *_, t in full])
    assert np.allclose(np.diff(times), 0.2, atol=0.021)
    assert set(np.round(times, 6)) <= set(np.round(ring_times, 6))


def test_history_spacing_finer_than_the_model_retrieves_extra_frames(tmp_path: Path) -> None:
    video = tmp_path / "counter.avi"
    _write_counter_video(video, 50)
    ring = FrameRing(20, (16, 16, 3))
    full: list[tuple[np.ndarray, float]] = []
    cap = CameraCapture(
        CameraConfig(name="cam", source=str(video), realtime=False),
        ring,
        frame_spacing_s=0.4,
        prepare=partial(resize_frame, size_hw=(16, 16)),
        on_frame=lambda _n: None,
        on_status=lambda *_: None,
        on_full_frame=lambda _c, frame, t: full.append((frame.copy(), t)),
        history_spacing_s=0.1,
    )
    cap.start()
    cap.join(timeout=10)
    assert cap.stats.frames_sampled == 5  # 2 s at 0.4 s
    assert len(full) == 20  # 2 s at 0.1 s, frames the model never sees included
    brightness = [f.mean() / 4 for f, _ in full]
    # Every 2.5th frame of the counter video: indices 0, 2/3, 5, 7/8, 10, ...
    assert brightness[0] == pytest.approx(0, abs=1.5)
    assert brightness[2] == pytest.approx(5, abs=1.5)
    assert brightness[-1] == pytest.approx(47.5, abs=1.5)
    assert all(f.shape == (72, 96, 3) for f, _ in full)


def test_failing_full_frame_hook_does_not_stop_the_camera(tmp_path: Path) -> None:
    video = tmp_path / "counter.avi"
    _write_counter_video(video, 25)
    ring = FrameRing(20, (16, 16, 3))

    def broken(_c: str, _f: np.ndarray, _t: float) -> None:
        raise RuntimeError("disk on fire")

    cap = CameraCapture(
        CameraConfig(name="cam", source=str(video), realtime=False),
        ring,
        0.1,
        partial(resize_frame, size_hw=(16, 16)),
        on_frame=lambda _n: None,
        on_status=lambda *_: None,
        on_full_frame=broken,
        history_spacing_s=0.1,
    )
    cap.start()
    cap.join(timeout=10)
    assert cap.finished and cap.stats.frames_read == 25
    assert cap.stats.frames_sampled == 10 == cap.stats.hook_errors


def test_an_exception_in_capture_marks_the_camera_failed_and_it_recovers(tmp_path: Path) -> None:
    """Issue 21: a fault in one capture thread is that camera's: offline with the reason,
    retried with backoff, and frames flow again once the fault is gone; the thread lives on."""
    video = tmp_path / "counter.avi"
    _write_counter_video(video, 50)
    ring = FrameRing(20, (16, 16, 3))
    calls = {"n": 0}

    def flaky(frame: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise RuntimeError(f"injected fault {calls['n']}")
        return resize_frame(frame, (16, 16))

    statuses: list[tuple[bool, str]] = []
    cap = CameraCapture(
        CameraConfig(
            name="cam", source=str(video), loop=True, reconnect_initial_s=0.1, reconnect_max_s=0.2
        ),
        ring,
        0.1,
        flaky,
        on_frame=lambda _n: None,
        on_status=lambda _n, online, why: statuses.append((online, why)),
    )
    cap.start()
    deadline = time.monotonic() + 20
    while cap.stats.frames_sampled < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = cap.is_alive()
    cap.stop()
    cap.join(timeout=5)
    assert alive and cap.stats.frames_sampled >= 5
    assert cap.stats.failures == 2 and cap.stats.error is None  # cleared once frames flowed
    assert (False, "failed: RuntimeError: injected fault 1") in statuses


def test_frames_too_small_for_the_model_are_refused(tmp_path: Path) -> None:
    """A 1-pixel side: check-config's probe refuses the file; at open the camera fails alone
    and a file is given up (it will not get better), never an exception out of the thread."""
    tiny = make_test_video(tmp_path / "tiny.mkv", 2, 10, (1, 2), "ffv1", "testsrc")
    check_file_source(str(tiny))  # `run`: the camera fails on its own
    with pytest.raises(ConfigError, match=r"frames of 1x2 px are too small"):
        check_file_source(str(tiny), frame_size=True)
    ring = FrameRing(20, (16, 16, 3))
    cap, frames, statuses = _capture(tiny, ring, realtime=False)
    cap.start()
    cap.join(timeout=10)
    assert not cap.is_alive() and cap.finished
    assert cap.stats.failures == 1 and "too small" in (cap.stats.error or "")
    assert frames == [] and statuses[-1][0] is False
