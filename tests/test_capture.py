"""Capture: backoff, start-up checks, and a real file read into a ring by a real thread."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from har_daemon.capture import CameraCapture, CaptureOptions, backoff_delay, check_file_source
from har_daemon.errors import ConfigError
from har_daemon.ring_buffer import FrameRing


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
    options = CaptureOptions(name="cam", source=str(path), kind="file", **kw)  # type: ignore[arg-type]
    cap = CameraCapture(
        options,
        ring,
        frame_spacing_s=0.1,
        frame_size_hw=(16, 16),
        interpolation="area",
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
        CaptureOptions(
            name="gone",
            source="rtsp://127.0.0.1:9/nothing",
            kind="stream",
            reconnect_initial_s=0.05,
            reconnect_max_s=0.2,
            open_timeout_s=1.0,
        ),
        ring,
        0.1,
        (16, 16),
        "area",
        on_frame=lambda _n: None,
        on_status=lambda _n, online, why: statuses.append((online, why)),
    )
    cap.start()
    import time

    deadline = time.monotonic() + 10
    while cap.stats.open_failures < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    cap.stop()
    cap.join(timeout=5)
    assert cap.stats.open_failures >= 3
    assert not cap.is_alive()
    # Reported offline once, not once per attempt.
    assert statuses.count((False, "open failed")) == 1
