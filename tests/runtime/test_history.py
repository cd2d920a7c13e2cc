"""FrameHistory: downscaling, age and count bounds, lookups, and concurrent use."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from har_daemon.runtime.history import FrameHistory, fit_width


def _frame(value: int, size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    width, height = size
    return np.full((height, width, 3), value, np.uint8)


def test_frames_are_downscaled_with_aspect_kept_and_narrow_ones_copied() -> None:
    history = FrameHistory(10.0, 640)
    big = _frame(100)
    stored = history.push(big, 1.0)
    assert stored.shape == (360, 640, 3) and stored.mean() == pytest.approx(100)
    small = _frame(50, (320, 240))
    kept = history.push(small, 2.0)
    assert kept.shape == (240, 320, 3)
    small[:] = 0  # the capture side reusing its buffer must not change the history
    assert history.latest() is not None and history.latest()[1].mean() == 50  # type: ignore[index]
    assert fit_width(_frame(1, (641, 480)), 640).shape == (479, 640, 3)


def test_old_frames_are_dropped_relative_to_the_newest() -> None:
    history = FrameHistory(2.0, 64)
    for i in range(50):
        history.push(_frame(i, (64, 48)), 100.0 + i * 0.1)
    times = [t for t, _ in history.since(0.0)]
    assert times[-1] == pytest.approx(104.9)
    assert times[0] >= 104.9 - 2.0 - 1e-9
    assert len(history) == 21


def test_frame_count_is_bounded_too() -> None:
    history = FrameHistory(1000.0, 64, max_frames=5)
    for i in range(20):
        history.push(_frame(i, (64, 48)), float(i))
    assert len(history) == 5
    assert [t for t, _ in history.since(0.0)] == [15.0, 16.0, 17.0, 18.0, 19.0]


def test_nearest_since_latest_and_clear() -> None:
    history = FrameHistory(100.0, 64)
    assert history.nearest(1.0) is None and history.latest() is None
    for i in range(10):
        history.push(_frame(i * 10, (64, 48)), float(i))
    t, frame = history.nearest(3.4)  # type: ignore[misc]
    assert t == 3.0 and frame.mean() == 30
    assert history.nearest(3.6)[0] == 4.0  # type: ignore[index]
    assert history.nearest(-5.0)[0] == 0.0  # type: ignore[index]
    assert history.nearest(50.0)[0] == 9.0  # type: ignore[index]
    assert [t for t, _ in history.since(6.5)] == [7.0, 8.0, 9.0]
    assert history.since(20.0) == []
    assert history.latest()[0] == 9.0  # type: ignore[index]
    history.clear()
    assert len(history) == 0 and history.since(0.0) == []


def test_a_clock_going_backwards_starts_a_new_timeline() -> None:
    history = FrameHistory(100.0, 64)
    for i in range(5):
        history.push(_frame(i, (64, 48)), 50.0 + i)
    history.push(_frame(99, (64, 48)), 10.0)
    assert [t for t, _ in history.since(0.0)] == [10.0]


def test_concurrent_writer_and_readers_see_consistent_ordered_frames() -> None:
    history = FrameHistory(1.0, 32, max_frames=50)
    stop = threading.Event()
    problems: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            items = history.since(0.0)
            times = [t for t, _ in items]
            if times != sorted(times) or len(items) > 50:
                problems.append(f"bad snapshot {times[:3]}...")
            for t, frame in items:
                if frame.mean() != round(t * 100) % 256:
                    problems.append(f"frame {t} has the wrong pixels")
                    break

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for th in threads:
        th.start()
    for i in range(2000):
        history.push(_frame(i % 256, (64, 48)), i / 100)
    stop.set()
    for th in threads:
        th.join()
    assert not problems
    assert len(history) == 50


def test_limits_and_exact_refusals() -> None:
    for kwargs, message in (
        ({"max_age_s": 0.0, "max_width": 64}, "max_age_s must be positive"),
        ({"max_age_s": 1.0, "max_width": 0}, "max_width must be at least 1"),
        ({"max_age_s": 1.0, "max_width": 64, "max_frames": 0}, "max_frames must be at least 1"),
    ):
        with pytest.raises(ValueError, match=f"^{message}$"):
            FrameHistory(**kwargs)  # type: ignore[arg-type]
    smallest = FrameHistory(1e-3, 1, max_frames=1)
    smallest.push(_frame(1, (4, 2)), 0.0)
    smallest.push(_frame(2, (4, 2)), 0.0005)
    assert len(smallest) == 1 and smallest.latest()[1].shape == (1, 1, 3)  # type: ignore[index]


def test_at_most_300_frames_by_default() -> None:
    history = FrameHistory(1000.0, 8)
    for i in range(301):
        history.push(_frame(i % 256, (8, 6)), float(i))
    assert len(history) == 300 and history.since(0.0)[0][0] == 1.0


def test_frames_with_the_same_time_are_all_kept() -> None:
    """Only a time going backwards starts a new timeline: two frames stamped alike (a coarse
    clock) are not one."""
    history = FrameHistory(10.0, 64)
    for value in (1, 2, 3):
        history.push(_frame(value, (64, 48)), 5.0)
    assert [int(f.mean()) for _, f in history.since(0.0)] == [1, 2, 3]


def test_nearest_picks_the_closer_frame_and_the_earlier_on_a_tie() -> None:
    history = FrameHistory(100.0, 64)
    for value, t in ((0, 10.0), (1, 11.0), (2, 12.0)):
        history.push(_frame(value, (64, 48)), t)

    def nearest(t: float) -> float:
        found = history.nearest(t)
        assert found is not None
        return found[0]

    assert [nearest(t) for t in (9.0, 10.4, 10.5, 10.6, 11.5, 13.0)] == [
        10.0, 10.0, 10.0, 11.0, 11.0, 12.0,
    ]  # fmt: skip
    latest = history.latest()
    assert latest is not None and latest[0] == 12.0 and int(latest[1].mean()) == 2


def test_downscaling_averages_each_block_of_pixels() -> None:
    """INTER_AREA: every pixel of the small frame is the mean of the block it stands for, so a
    snapshot of fine detail (a fence, a patterned shirt) shows no moire."""
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    small = fit_width(big, 16)
    blocks = big.reshape(12, 4, 16, 4, 3).mean(axis=(1, 3))
    assert small.shape == (12, 16, 3)
    assert np.abs(small.astype(float) - blocks).max() <= 1.0
