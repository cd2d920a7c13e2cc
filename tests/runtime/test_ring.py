"""FrameRing: order, wrap-around, snapshots into caller arrays, stride scheduling, threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from har_daemon.runtime.ring import FrameRing, StrideSchedule

SHAPE = (4, 4, 3)


def frame(i: int) -> np.ndarray:
    return np.full(SHAPE, i % 256, dtype=np.uint8)


def push_range(ring: FrameRing, start: int, stop: int) -> None:
    for i in range(start, stop):
        ring.push(frame(i), float(i))


def test_fills_in_order_before_wrapping() -> None:
    ring = FrameRing(5, SHAPE)
    assert not ring.full and ring.count == 0 and len(ring) == 0
    push_range(ring, 0, 3)
    frames, times = ring.snapshot()
    assert frames.shape == (3, *SHAPE) and not ring.full
    assert times.tolist() == [0.0, 1.0, 2.0]
    assert [int(f[0, 0, 0]) for f in frames] == [0, 1, 2]


def test_wraps_oldest_first() -> None:
    ring = FrameRing(5, SHAPE)
    push_range(ring, 0, 13)
    assert ring.full and ring.count == 13 and len(ring) == 5
    frames, times = ring.snapshot()
    assert times.tolist() == [8.0, 9.0, 10.0, 11.0, 12.0]
    assert [int(f[0, 0, 0]) for f in frames] == [8, 9, 10, 11, 12]
    # exactly at a wrap boundary too
    push_range(ring, 13, 15)
    assert ring.snapshot()[1].tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]


def test_push_copies_the_frame() -> None:
    ring = FrameRing(2, SHAPE)
    f = frame(7)
    ring.push(f, 0.0)
    f[...] = 99
    assert int(ring.snapshot()[0][0, 0, 0, 0]) == 7


def test_snapshot_writes_into_out_without_allocating() -> None:
    ring = FrameRing(4, SHAPE)
    push_range(ring, 0, 6)
    out = np.empty((4, *SHAPE), np.uint8)
    times_out = np.empty(4, np.float64)
    frames, times = ring.snapshot(out=out, times_out=times_out)
    assert np.shares_memory(frames, out) and np.shares_memory(times, times_out)
    assert times_out.tolist() == [2.0, 3.0, 4.0, 5.0]
    assert [int(f[0, 0, 0]) for f in out] == [2, 3, 4, 5]


def test_rejects_wrong_shapes() -> None:
    ring = FrameRing(3, SHAPE)
    with pytest.raises(ValueError, match="frame shape"):
        ring.push(np.zeros((4, 4), np.uint8), 0.0)
    push_range(ring, 0, 3)
    with pytest.raises(ValueError, match="out has shape"):
        ring.snapshot(out=np.empty((3, 2, 2, 3), np.uint8))
    with pytest.raises(ValueError):
        FrameRing(0, SHAPE)


def test_clear_empties_but_count_keeps_going() -> None:
    ring = FrameRing(3, SHAPE)
    push_range(ring, 0, 4)
    ring.clear()
    assert not ring.full and len(ring) == 0 and ring.count == 4
    push_range(ring, 4, 6)
    assert ring.snapshot()[1].tolist() == [4.0, 5.0]
    push_range(ring, 6, 7)
    assert ring.full and ring.full_since == 7
    assert ring.frames_since(4) == 3


def test_stride_schedule_is_pure_bookkeeping() -> None:
    s = StrideSchedule(3)
    assert not s.ready(10, full=False)
    assert s.ready(5, full=True)  # first window as soon as the ring is full
    assert s.mark_taken(5, full_since=5) == 0
    assert not s.ready(7, full=True, full_since=5)
    assert s.ready(8, full=True, full_since=5)
    assert s.mark_taken(8, full_since=5) == 0
    # fell behind: 8 -> 17 spans three strides; only the newest is taken, two are stale
    assert s.mark_taken(17, full_since=5) == 2
    assert (s.windows_taken, s.windows_skipped, s.last_taken) == (3, 2, 17)
    with pytest.raises(ValueError):
        StrideSchedule(0)


def test_take_every_stride_frames_once_full() -> None:
    ring = FrameRing(4, SHAPE)
    sched = StrideSchedule(2)
    taken = []
    for i in range(12):
        ring.push(frame(i), float(i))
        w = ring.take(sched)
        if w is not None:
            assert w.skipped == 0
            assert w.times.tolist() == [float(t) for t in range(i - 3, i + 1)]
            taken.append(w.count)
    assert taken == [4, 6, 8, 10, 12]
    assert ring.take(sched) is None  # nothing new


def test_take_counts_stale_windows_and_returns_newest() -> None:
    ring = FrameRing(4, SHAPE)
    sched = StrideSchedule(2)
    push_range(ring, 0, 4)
    assert ring.take(sched).count == 4
    push_range(ring, 4, 11)  # 7 new frames: windows due at 6, 8, 10
    w = ring.take(sched)
    assert w is not None
    assert w.count == 11 and w.skipped == 2
    assert w.times.tolist() == [7.0, 8.0, 9.0, 10.0]
    assert sched.windows_skipped == 2


def test_late_first_take_counts_windows_since_full() -> None:
    ring = FrameRing(4, SHAPE)
    sched = StrideSchedule(5)
    push_range(ring, 0, 15)  # full at 4; due at 4, 9, 14: took only the newest
    w = ring.take(sched)
    assert w.count == 15 and w.skipped == 2


def test_after_clear_the_refill_is_not_stale_and_is_due_when_full() -> None:
    ring = FrameRing(4, SHAPE)
    sched = StrideSchedule(10)
    push_range(ring, 0, 4)
    assert ring.take(sched).count == 4
    ring.clear()  # stream gap
    push_range(ring, 4, 7)
    assert ring.take(sched) is None  # not full yet
    push_range(ring, 7, 8)  # full again at count 8 (< last + stride): due anyway
    w = ring.take(sched)
    assert w is not None and w.count == 8 and w.skipped == 0
    assert w.times.tolist() == [4.0, 5.0, 6.0, 7.0]


def test_threaded_pusher_and_snapshotter_see_consistent_windows() -> None:
    capacity = 20
    ring = FrameRing(capacity, (64, 64, 3))
    sched = StrideSchedule(3)
    n_frames = 20_000
    stop = threading.Event()
    problems: list[str] = []
    windows = 0

    def pusher() -> None:
        f = np.empty((64, 64, 3), np.uint8)
        for i in range(n_frames):
            f[...] = i % 256
            ring.push(f, float(i))
        stop.set()

    def snapshotter() -> None:
        nonlocal windows
        out = np.empty((capacity, 64, 64, 3), np.uint8)
        times_out = np.empty(capacity, np.float64)
        while not stop.is_set() or ring.frames_since(sched.last_taken or 0) >= sched.stride:
            frames, times = ring.snapshot(out=out, times_out=times_out)
            if len(times) > 1 and not np.all(np.diff(times) > 0):
                problems.append(f"snapshot times not increasing: {times}")
            if not np.array_equal(frames[:, 0, 0, 0], (times % 256).astype(np.uint8)):
                problems.append("snapshot frames do not match their times")
            w = ring.take(sched, out=out, times_out=times_out)
            if w is None:
                continue
            windows += 1
            if not (np.all(np.diff(w.times) == 1.0) and w.times[-1] == w.count - 1):
                problems.append(f"window {w.count} times {w.times}")
            # every frame's pixels match its time: no torn copies
            expected = (w.times.astype(np.int64) % 256).astype(np.uint8)
            if not np.array_equal(w.frames[:, 0, 0, 0], expected) or not np.array_equal(
                w.frames[:, -1, -1, -1], expected
            ):
                problems.append(f"torn window at {w.count}")

    threads = [threading.Thread(target=pusher), threading.Thread(target=snapshotter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert problems == []
    assert windows > 0
    # it kept up to the end, and never counted more windows than could have been due
    assert sched.last_taken is not None and sched.last_taken > n_frames - sched.stride
    due = (n_frames - capacity) // sched.stride + 1
    assert sched.windows_taken + sched.windows_skipped <= due


def test_the_smallest_ring_and_stride_and_exact_refusals() -> None:
    ring, sched = FrameRing(1, SHAPE), StrideSchedule(1)
    taken = []
    for i in range(3):
        ring.push(frame(i), float(i))
        w = ring.take(sched)
        taken.append(None if w is None else w.times.tolist())
    assert taken == [[0.0], [1.0], [2.0]]
    with pytest.raises(ValueError, match="^capacity must be >= 1, got 0$"):
        FrameRing(0, SHAPE)
    with pytest.raises(ValueError, match="^stride must be >= 1, got 0$"):
        StrideSchedule(0)


def test_without_full_since_due_windows_count_from_zero() -> None:
    """A scheduler told nothing about the ring counts due windows at 0, stride, 2 stride..."""
    assert StrideSchedule(2).mark_taken(6) == 3


def test_stale_windows_add_up_and_reset_makes_the_next_window_due() -> None:
    s = StrideSchedule(2)
    s.mark_taken(4, full_since=4)
    assert s.mark_taken(10, full_since=4) == 2  # 6, 8 stale
    assert s.mark_taken(15, full_since=4) == 1  # 12 stale (14 was due, 15 taken)
    assert (s.windows_taken, s.windows_skipped) == (3, 3)
    assert not s.ready(16, full=True, full_since=4)
    s.reset()
    assert s.ready(16, full=True, full_since=4)  # due at once, one frame after the last take
    assert (s.windows_taken, s.windows_skipped, s.last_taken) == (3, 3, None)  # counters kept


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_frames_keep_the_rings_dtype(dtype: type) -> None:
    ring = FrameRing(2, SHAPE, dtype)
    assert ring.full_since == 0  # never full yet
    ring.push(np.full(SHAPE, 3, dtype), 0.0)
    ring.push(np.full(SHAPE, 5, dtype), 1.0)
    frames, times = ring.snapshot()
    assert frames.dtype == dtype and times.dtype == np.float64
    [newest, t, count] = ring.latest()  # type: ignore[misc]
    assert newest.dtype == dtype and int(newest[0, 0, 0]) == 5 and (t, count) == (1.0, 2)


def test_latest_is_the_newest_frame_also_after_wrapping() -> None:
    ring = FrameRing(3, SHAPE)
    assert ring.latest() is None
    for stop in (1, 3, 5):
        push_range(ring, ring.count, stop)
        newest, t, count = ring.latest()  # type: ignore[misc]
        assert (int(newest[0, 0, 0]), t, count) == (stop - 1, float(stop - 1), stop)
    ring.clear()
    assert ring.latest() is None


def test_take_writes_into_the_callers_arrays_and_says_when_the_frame_was_captured() -> None:
    ring, sched = FrameRing(3, SHAPE), StrideSchedule(1)
    out, times_out = np.empty((3, *SHAPE), np.uint8), np.empty(3, np.float64)
    for i in range(3):
        ring.push(frame(i), float(i), captured_at=100.0 + i)
    w = ring.take(sched, out=out, times_out=times_out)
    assert w is not None and w.captured_at == 102.0
    assert np.shares_memory(w.frames, out) and np.shares_memory(w.times, times_out)
    ring.push(frame(3), 3.0)  # the pusher did not say
    w = ring.take(sched)
    assert w is not None and w.captured_at is None


def test_arrays_too_small_for_the_window_are_refused() -> None:
    ring = FrameRing(4, SHAPE)
    push_range(ring, 0, 3)
    with pytest.raises(
        ValueError, match=r"^out has shape \(2, 4, 4, 3\); need \(4, \*\(4, 4, 3\)\)$"
    ):
        ring.snapshot(out=np.empty((2, *SHAPE), np.uint8))
    with pytest.raises(ValueError, match="^times_out has 2 slots; need 4$"):
        ring.snapshot(times_out=np.empty(2, np.float64))
    frames, _ = ring.snapshot(out=np.empty((3, *SHAPE), np.uint8))  # room for what is there
    assert len(frames) == 3
