"""Stats payload rates and the health rules, on hand-made counter snapshots."""

from __future__ import annotations

import copy
import json
import mmap
import threading
from typing import Any

import pytest

from har_daemon.runtime.stats import StatsTracker, camera_health, health, process_rss_mb


def camera(**over: Any) -> dict[str, Any]:
    cam: dict[str, Any] = {
        "online": True,
        "enabled": True,
        "finished": False,
        "frames_read": 0,
        "frames_sampled": 0,
        "windows": 0,
        "stale_windows": 0,
        "motion_skipped": 0,
        "reconnects": 0,
        "events": 0,
        "latency_ms_p50": 12.5,
        "latency_ms_p95": 20.0,
        "last_frame_age_s": 0.04,
        "stall_timeout_s": 10.0,
    }
    cam.update(over)
    return cam


def raw(cameras: dict[str, dict[str, Any]] | None = None, **over: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uptime_s": 100.0,
        "rss_mb": 250.0,
        "inference": {"alive": True, "batches": 10, "errors": 0, "last_inference_age_s": 0.5},
        "spool": {"depth": 3, "bytes": 900},
        "cameras": cameras if cameras is not None else {"door": camera()},
    }
    out.update(over)
    return out


# -- rates -------------------------------------------------------------------------------------


def test_first_update_rates_are_since_start() -> None:
    tracker = StatsTracker()
    snap = raw({"door": camera(frames_read=2500, frames_sampled=1000, windows=200)}, uptime_s=100.0)
    payload = tracker.update(snap, now_monotonic=5000.0)
    door = payload["cameras"]["door"]
    assert (door["capture_fps"], door["sampled_fps"], door["inference_fps"]) == (25.0, 10.0, 2.0)


def test_later_updates_use_deltas_since_previous() -> None:
    tracker = StatsTracker()
    tracker.update(raw({"door": camera(frames_read=2500, windows=200)}), 1000.0)
    payload = tracker.update(
        raw({"door": camera(frames_read=2500 + 150, windows=200 + 20)}, uptime_s=110.0), 1010.0
    )
    door = payload["cameras"]["door"]
    assert door["capture_fps"] == 15.0
    assert door["inference_fps"] == 2.0
    assert door["sampled_fps"] == 0.0


def test_payload_keeps_everything_raw_and_does_not_alias_it() -> None:
    tracker = StatsTracker()
    snap = raw()
    before = copy.deepcopy(snap)
    payload = tracker.update(snap, 1.0)
    assert snap == before  # input untouched
    for key in ("uptime_s", "rss_mb", "inference", "spool"):
        assert payload[key] == snap[key]
    door = dict(payload["cameras"]["door"])
    for rate in ("capture_fps", "sampled_fps", "inference_fps"):
        door.pop(rate)
    assert door == snap["cameras"]["door"]
    payload["cameras"]["door"]["frames_read"] = -1
    assert tracker.latest is not None
    assert tracker.latest["cameras"]["door"]["frames_read"] == 0
    json.dumps(payload)  # publishable as is


def test_payload_without_spool_has_no_spool() -> None:
    snap = raw()
    del snap["spool"]
    assert "spool" not in StatsTracker().update(snap, 1.0)


def test_counters_going_backwards_never_give_negative_rates() -> None:
    tracker = StatsTracker()
    tracker.update(raw({"door": camera(frames_read=1000, frames_sampled=400, windows=80)}), 100.0)
    payload = tracker.update(
        raw({"door": camera(frames_read=50, frames_sampled=0, windows=10)}), 110.0
    )
    door = payload["cameras"]["door"]
    # Treated as a reset: what was counted since is the rate, as Prometheus does.
    assert door["capture_fps"] == 5.0
    assert door["sampled_fps"] == 0.0
    assert door["inference_fps"] == 1.0
    assert all(door[k] >= 0 for k in ("capture_fps", "sampled_fps", "inference_fps"))


def test_slow_rates_keep_significant_digits() -> None:
    tracker = StatsTracker()
    payload = tracker.update(
        raw({"door": camera(windows=1, frames_read=1000)}, uptime_s=300.0), 1.0
    )
    assert payload["cameras"]["door"]["inference_fps"] == 0.00333
    assert payload["cameras"]["door"]["capture_fps"] == 3.33


def test_updates_closer_than_min_interval_reuse_rates_and_keep_baseline() -> None:
    tracker = StatsTracker(min_interval_s=1.0)
    tracker.update(raw({"door": camera(frames_read=0)}, uptime_s=0.0), 100.0)
    first = tracker.update(raw({"door": camera(frames_read=100)}), 110.0)
    assert first["cameras"]["door"]["capture_fps"] == 10.0
    # A scrape 0.1 s later: no rate over a tiny interval, counters still current.
    soon = tracker.update(raw({"door": camera(frames_read=103)}), 110.1)
    assert soon["cameras"]["door"]["capture_fps"] == 10.0
    assert soon["cameras"]["door"]["frames_read"] == 103
    # The baseline stayed at 110.0: 10 s later the rate covers 110.0 .. 120.0.
    later = tracker.update(raw({"door": camera(frames_read=300)}), 120.0)
    assert later["cameras"]["door"]["capture_fps"] == 20.0


def test_zero_uptime_and_same_instant_do_not_divide_by_zero() -> None:
    tracker = StatsTracker(min_interval_s=0.0)
    a = tracker.update(raw({"door": camera(frames_read=5)}, uptime_s=0.0), 50.0)
    b = tracker.update(raw({"door": camera(frames_read=9)}, uptime_s=0.0), 50.0)
    for payload in (a, b):
        assert payload["cameras"]["door"]["capture_fps"] == 0.0
    c = tracker.update(raw({"door": camera(frames_read=19)}), 52.0)
    assert c["cameras"]["door"]["capture_fps"] == 5.0


def test_cameras_have_their_own_baselines_and_new_ones_start_from_uptime() -> None:
    tracker = StatsTracker()
    tracker.update(raw({"a": camera(frames_read=100)}, uptime_s=10.0), 10.0)
    payload = tracker.update(
        raw({"a": camera(frames_read=200), "b": camera(frames_read=400)}, uptime_s=20.0), 20.0
    )
    assert payload["cameras"]["a"]["capture_fps"] == 10.0
    assert payload["cameras"]["b"]["capture_fps"] == 20.0  # 400 frames over 20 s of uptime


def test_update_is_safe_from_several_threads() -> None:
    tracker = StatsTracker(min_interval_s=0.0)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        try:
            for i in range(200):
                tracker.update(raw({"door": camera(frames_read=i)}), float(offset * 1000 + i))
        except BaseException as err:  # pragma: no cover - the assertion below reports it
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert tracker.latest is not None


# -- health ------------------------------------------------------------------------------------


def test_healthy_daemon() -> None:
    assert health(raw()) == (True, [])


def test_dead_inference_thread_is_unhealthy() -> None:
    snap = raw()
    snap["inference"]["alive"] = False
    ok, reasons = health(snap)
    assert not ok
    assert reasons == ["inference thread is not running"]


def test_inference_stalled_while_windows_are_due() -> None:
    snap = raw({"door": camera(), "yard": camera()})
    snap["inference"]["last_inference_age_s"] = 45.0
    ok, reasons = health(snap, inference_stall_s=30.0)
    assert not ok
    assert len(reasons) == 1
    assert "inference has not run for 45.0s" in reasons[0]
    assert "door, yard are online" in reasons[0]
    assert health(snap, inference_stall_s=60.0) == (True, [])


def test_inference_never_run_counts_the_uptime() -> None:
    snap = raw(uptime_s=5.0)
    snap["inference"]["last_inference_age_s"] = None
    assert health(snap) == (True, [])  # still filling the first window
    snap["uptime_s"] = 40.0
    ok, reasons = health(snap)
    assert not ok and "inference has not run for 40.0s" in reasons[0]


def test_no_inference_needed_when_no_camera_is_due() -> None:
    # Disabled (paused), finished (file ended) cameras need no inference.
    snap = raw({"paused": camera(enabled=False), "file": camera(finished=True, online=False)})
    snap["inference"]["last_inference_age_s"] = 600.0
    assert health(snap) == (True, [])


def test_motion_gated_windows_count_as_inference_activity() -> None:
    snap = raw()
    snap["inference"]["last_inference_age_s"] = 600.0  # a still scene: every window skipped
    snap["inference"]["last_window_age_s"] = 0.8
    assert health(snap) == (True, [])
    snap["inference"]["last_window_age_s"] = 90.0
    assert not health(snap)[0]


def test_offline_enabled_camera_is_unhealthy_and_named() -> None:
    snap = raw({"door": camera(), "yard": camera(online=False, last_frame_age_s=None)})
    ok, reasons = health(snap)
    assert not ok
    assert reasons == ["camera 'yard' is offline"]


def test_camera_stalled_beyond_its_timeout_is_unhealthy() -> None:
    snap = raw({"door": camera(last_frame_age_s=12.0, stall_timeout_s=10.0)})
    ok, reasons = health(snap)
    assert not ok
    assert reasons == ["camera 'door' has read no frame for 12.0s (stall timeout 10s)"]
    snap["cameras"]["door"]["last_frame_age_s"] = 9.0
    assert health(snap) == (True, [])


def test_online_camera_without_any_frame_yet_is_healthy() -> None:
    assert health(raw({"door": camera(last_frame_age_s=None)})) == (True, [])


def test_disabled_and_finished_cameras_are_healthy_even_offline_or_stale() -> None:
    snap = raw(
        {
            "door": camera(),
            "paused": camera(enabled=False, online=False, last_frame_age_s=500.0),
            "paused_online": camera(enabled=False, last_frame_age_s=500.0),
            "clip": camera(finished=True, online=False, last_frame_age_s=500.0),
        }
    )
    assert health(snap) == (True, [])


def test_every_reason_is_reported_together() -> None:
    snap = raw({"a": camera(online=False), "b": camera(last_frame_age_s=30.0)})
    snap["inference"]["alive"] = False
    ok, reasons = health(snap)
    assert not ok
    assert reasons == [
        "inference thread is not running",
        "camera 'a' is offline",
        "camera 'b' has read no frame for 30.0s (stall timeout 10s)",
    ]


def test_health_accepts_a_stats_payload_too() -> None:
    payload = StatsTracker().update(raw({"door": camera(online=False)}), 1.0)
    assert health(payload) == (False, ["camera 'door' is offline"])


def test_a_camera_reading_frames_without_windows_is_unhealthy_by_itself() -> None:
    # A camera whose frames are never sampled (a wall clock stepped back, say) still reads.
    snap = raw(
        {
            "door": camera(last_window_age_s=0.4, window_due_s=2.5),
            "yard": camera(last_window_age_s=40.0, window_due_s=2.5),
        }
    )
    ok, reasons = health(snap)  # inference as a whole runs: door keeps it busy
    assert not ok
    assert reasons == ["camera 'yard' has had no window for 40.0s while online (limit 32.5s)"]
    assert camera_health(snap) == {"door": [], "yard": reasons}
    snap["cameras"]["yard"]["window_due_s"] = 20.0  # a slow schedule waits longer
    assert health(snap) == (True, [])


# -- memory ------------------------------------------------------------------------------------


def test_process_rss_mb_is_this_process() -> None:
    rss = process_rss_mb()
    assert 5.0 < rss < 64 * 1024
    # A fresh anonymous mapping, not a bytearray: malloc may hand back heap pages that are
    # already resident after a long suite (CI saw RSS unchanged at 1551.8 MB that way).
    blob = mmap.mmap(-1, 64 * 1024**2)
    try:
        for i in range(0, len(blob), mmap.PAGESIZE):
            blob[i] = 1  # touch every page so it is resident
        assert process_rss_mb() >= rss + 32
    finally:
        blob.close()


@pytest.mark.parametrize("stall", [0.0, 1e-3])
def test_tiny_stall_limit_with_fresh_inference(stall: float) -> None:
    snap = raw()
    snap["inference"]["last_inference_age_s"] = 0.0
    assert health(snap, inference_stall_s=stall) == (True, [])
