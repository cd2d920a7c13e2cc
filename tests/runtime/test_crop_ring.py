"""runtime.crop_ring: a person-centric camera keeps only what its regions can need, in order."""

from __future__ import annotations

import numpy as np
import pytest

from har_daemon.model.preprocess import resize_frame
from har_daemon.model.regions import crop_window
from har_daemon.runtime import crop_ring
from har_daemon.runtime.crop_ring import CropRing, KeptFrames
from har_daemon.runtime.ring import StrideSchedule

HW = (360, 480)


def frames(n: int, seed: int = 0, hw: tuple[int, int] = HW) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    small = [rng.integers(0, 256, (hw[0] // 8, hw[1] // 8, 3), dtype=np.uint8) for _ in range(n)]
    return [resize_frame(s, hw, "linear") for s in small]


def test_a_window_is_oldest_first_after_the_ring_wraps_and_crops_as_the_whole_frames() -> None:
    ring, sched, out = CropRing(4), StrideSchedule(1), KeptFrames()
    ring.area = (60, 40, 260, 240)  # where the people are: fits a quarter of the frame
    pushed = frames(6)
    for i, f in enumerate(pushed[:5]):
        ring.push(f, float(i))
    assert ring.take_kept(sched, out) is not None
    ring.push(pushed[5], 5.0)
    w = ring.take_kept(sched, out)
    assert w is not None and w.count == 6 and w.frames is out and out.n == 4
    assert w.times.tolist() == [2.0, 3.0, 4.0, 5.0]  # wrapped twice over, oldest first
    region = (100, 80, 220, 200)
    want = crop_window(np.stack(pushed[2:]), region, (64, 64))
    got = out.crop(region, (64, 64))
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, want)
    linear = crop_window(np.stack(pushed[2:]), region, (64, 64), "linear")
    assert not np.array_equal(linear, want)  # so the next line tells the two apart
    np.testing.assert_array_equal(out.crop(region, (64, 64), "linear"), linear)


@pytest.mark.parametrize("pushes", [5, 7])
def test_a_window_is_oldest_first_whichever_slot_holds_the_oldest(pushes: int) -> None:
    ring, out = CropRing(4), KeptFrames()
    for i in range(pushes):
        ring.push(np.full((*HW, 3), i, np.uint8), float(i), captured_at=100.0 + i)
    w = ring.take_kept(StrideSchedule(1), out)
    assert w is not None and w.times.tolist() == [float(i) for i in range(pushes - 4, pushes)]
    assert [int(out.frame(k)[0, 0, 0]) for k in range(4)] == list(range(pushes - 4, pushes))
    # due at 4, 5, ... pushes: all but the newest were never taken
    assert w.skipped == pushes - 4 and w.captured_at == 100.0 + pushes - 1


def test_after_a_new_size_a_window_is_due_once_the_ring_is_full_again() -> None:
    ring, sched, out = CropRing(2), StrideSchedule(3), KeptFrames()
    for i, f in enumerate(frames(2)):
        ring.push(f, float(i))
    w = ring.take_kept(sched, out)
    assert w is not None and w.skipped == 0
    c, d = frames(2, seed=5, hw=(240, 320))
    ring.push(c, 2.0)
    assert ring.take_kept(sched, out) is None  # one frame of the new size is no window
    ring.push(d, 3.0)
    w = ring.take_kept(sched, out)  # full again: due, though under 3 frames since the last
    assert w is not None and w.times.tolist() == [2.0, 3.0] and out.frame_hw == (240, 320)
    assert w.skipped == 0  # the windows it could not have while refilling are not stale


def test_one_kept_frames_serves_every_camera_and_allocates_only_to_grow() -> None:
    region, size = (40, 40, 200, 200), (32, 32)
    out, sched = KeptFrames(), StrideSchedule(1)  # each camera has its schedule: this is small's
    small, big, longer = CropRing(4), CropRing(4), CropRing(6)
    small_frames, big_frames = frames(5, hw=(240, 320)), frames(4, seed=1)
    for i, f in enumerate(small_frames[:4]):
        small.push(f, float(i))
    assert small.take_kept(sched, out) is not None
    assert out.pixels.nbytes == 4 * small.frame_shape[0]  # four frames of its budget, no more
    pixels, times = out.pixels, out.times
    small.push(small_frames[4], 4.0)
    assert small.take_kept(sched, out) is not None
    assert out.pixels is pixels and out.times is times  # the same size: nothing allocated
    for i, f in enumerate(big_frames):
        big.push(f, float(i))
    assert big.take_kept(StrideSchedule(1), out) is not None  # bigger frames: wider rows
    want = crop_window(np.stack(big_frames), region, size)
    np.testing.assert_array_equal(out.crop(region, size), want)
    for i, f in enumerate(small_frames[:4] + small_frames[:2]):
        longer.push(f, float(i))
    assert longer.take_kept(StrideSchedule(1), out) is not None  # more frames: more rows
    assert out.n == 6 and out.times[:6].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    want = crop_window(np.stack(small_frames[:4] + small_frames[:2]), region, size)
    np.testing.assert_array_equal(out.crop(region, size), want)


def test_without_people_the_whole_frame_is_kept_halved() -> None:
    ring, out = CropRing(2), KeptFrames()
    for i, f in enumerate(frames(2)):
        ring.push(f, float(i))
    w = ring.take_kept(StrideSchedule(1), out)
    assert w is not None
    assert out.boxes[:2].tolist() == [[0, 0, 480, 360]] * 2 and out.shrinks[:2].tolist() == [2, 2]
    assert out.frame(0).shape == (180, 240, 3)
    # a quarter of what two whole working frames took
    assert ring._frames.nbytes == 2 * 360 * 480 * 3 // 4


def test_a_region_the_kept_box_missed_repeats_the_nearest_frame_that_has_it() -> None:
    ring, out = CropRing(4), KeptFrames()
    pushed = frames(4, seed=3)
    ring.area = (0, 0, 100, 100)  # stale: the person has walked to the right
    ring.push(pushed[0], 0.0)
    ring.push(pushed[1], 1.0)
    ring.area = (300, 200, 420, 320)  # the next look found them
    ring.push(pushed[2], 2.0)
    ring.push(pushed[3], 3.0)
    assert ring.take_kept(StrideSchedule(1), out) is not None
    region = (320, 220, 400, 300)
    crops = out.crop(region, (64, 64))
    want = crop_window(np.stack(pushed[2:]), region, (64, 64))
    np.testing.assert_array_equal(crops[2:], want)
    np.testing.assert_array_equal(crops[0], want[0])  # frames 0 and 1 repeat frame 2
    np.testing.assert_array_equal(crops[1], want[0])


def _calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Which frames `KeptFrames.crop` cut (by the kept pixels' first byte: frame k is k grey)."""
    seen: list[int] = []
    real = crop_ring.crop_kept

    def counting(kept: np.ndarray, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(int(kept[0, 0, 0]))
        return real(kept, *args, **kwargs)

    monkeypatch.setattr(crop_ring, "crop_kept", counting)
    return seen


def _greys(has_region: list[bool]) -> KeptFrames:
    """Frame k uniformly k grey, kept whole where `has_region[k]`, else only a corner box the
    region (40, 40, 80, 80) misses."""
    hw, n = (120, 160), len(has_region)
    out = KeptFrames(frame_hw=hw, n=n)
    out.fit(n, hw[0] * hw[1])
    for k, has in enumerate(has_region):
        box = (0, 0, 160, 120) if has else (120, 0, 160, 30)
        out.boxes[k], out.shapes[k], out.shrinks[k] = box, (box[3], box[2] - box[0]), 1
        out.frame(k)[...] = k
    return out


def test_a_subset_is_cut_alone_and_a_frame_missing_the_region_still_gets_its_neighbour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    region, size = (40, 40, 80, 80), (8, 8)
    kept = _greys([True] * 5 + [False] * 3 + [True] * 2)
    whole = kept.crop(region, size)
    assert [int(c[0, 0, 0]) for c in whole] == [0, 1, 2, 3, 4, 4, 4, 8, 8, 9]
    seen = _calls(monkeypatch)
    # Only the frames asked for are cut ...
    np.testing.assert_array_equal(kept.crop(region, size, frames=[8, 9]), whole[8:])
    assert seen == [8, 9]
    # ... and a missing one's stand-in too, though not asked for (the older on a tie: 6 is as
    # near 4 as 8 and takes 4's crop; 7 takes 8's).
    seen.clear()
    np.testing.assert_array_equal(kept.crop(region, size, frames=[5, 6, 7]), whole[5:8])
    assert sorted(set(seen)) == [4, 5, 6, 7, 8] and len(seen) == 5
    # Only the first frame has it: it stands in for all.
    assert [int(c[0, 0, 0]) for c in _greys([True, False, False]).crop(region, size)] == [0] * 3
    # Nobody has it: grey.
    assert (_greys([False] * 3).crop(region, size, frames=[1]) == 128).all()
    with pytest.raises(IndexError, match="frame 10 is not in a window of 10"):
        kept.crop(region, size, frames=[10])
    kept.n = 9  # a shorter window in arrays made for a longer one
    with pytest.raises(IndexError, match="frame 9 is not in a window of 9"):
        kept.crop(region, size, frames=[9])


def test_latest_is_the_newest_whole_working_frame_and_a_new_size_starts_afresh() -> None:
    ring = CropRing(3)
    assert ring.latest() is None
    a, b = frames(2)
    ring.area = (0, 0, 50, 50)
    ring.push(a, 0.0)
    ring.push(b, 1.0)
    newest, t, count = ring.latest()  # type: ignore[misc]
    np.testing.assert_array_equal(newest, b)
    assert newest.dtype == np.uint8 and (t, count) == (1.0, 2)
    (c,) = frames(1, seed=9, hw=(240, 320))  # the stream changed resolution
    ring.push(c, 2.0)
    assert len(ring) == 1 and ring.count == 3 and ring.frame_hw == (240, 320)
    assert ring.area is None  # the old picture's people say nothing about the new one
    newest, _, _ = ring.latest()  # type: ignore[misc]
    np.testing.assert_array_equal(newest, c)
    one = CropRing(1)  # a window of one frame
    one.push(a, 0.0)
    w = one.take_kept(StrideSchedule(1), KeptFrames())
    latest = one.latest()
    assert w is not None and w.times.tolist() == [0.0] and latest is not None
    np.testing.assert_array_equal(latest[0], a)
