"""Issue 13, items 1-4: faults that must not take the daemon down or stall it.

Each fault is injected into the real daemon (`python -m har_daemon run`, LiteRT, the bundled
demo model) against a real Mosquitto: a full disk under the spool (a 192 KiB tmpfs), a component
that dies, start-up failures (a bound port, read-only directories), a flood of Home Assistant
births, and a wall-clock step (injected into the daemon's process; the system clock is
untouched). Every test parses the daemon's whole stderr as JSON lines (no traceback, no raw
native line) and checks the exit status or that the daemon kept serving, its memory, and that
every event it printed reached a subscriber. Each prints its probe's figure (`pytest -s`).
Items 5-8 are in test_faults_output.py.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.app.fault_helpers import (
    CHATTY,
    LAUNCH,
    all_delivered,
    check_config,
    events_of,
    http_json,
    json_lines,
    looping,
    no_exceptions,
    one_error_line,
    recorded_events,
    rss_mb,
    rss_range,
    stats_lines,
    stop,
    wait_events,
    wait_log,
)
from tests.daemon_helpers import DaemonPool, daemon_config, parse_iso
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.mounts import tmpfs
from tests.infra.procs import LOOPBACK, free_port, wait_until
from tests.infra.session_subscriber import SessionSubscriber

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


# -- 1. a full disk under the spool; a component that dies ------------------------------------


def test_1_full_spool_disk_neither_stops_inference_nor_loses_an_event(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    spool = tmp_path / "spool"
    with tmpfs(spool, "192k"):
        cfg = daemon_config(
            tmp_path / "har.toml",
            broker,
            [looping("cam1", videos["change"]), looping("cam2", videos["biking"])],
            inference={**CHATTY, "update_interval_s": 0.3},
            mqtt={"keepalive": 5},
            extra={"spool": {"path": spool}, "stats": {"interval": 1}},
        )
        sub = SessionSubscriber(broker, "har/+/events", "faults-1").start()
        try:
            d = daemons.start(cfg)
            wait_events(d, 2, 40)
            broker.stop()
            free = os.statvfs(spool).f_bavail * os.statvfs(spool).f_frsize
            filler = spool / "filler"
            filler.write_bytes(b"\0" * max(0, free - 16 * 1024))
            failed = wait_log(d, "spool.append_failed", 30)
            at_failure = len(d.stdout_events())
            wait_events(d, at_failure + 6, 20)  # still inferring, printing, publishing
            during = [s for s in stats_lines(d.logs()) if s["spool"]["unspooled"]]
            assert during and during[-1]["inference"]["alive"], d.describe()
            filler.unlink()  # space again: the spool takes events again
            appended = during[-1]["spool"]["appended"]
            wait_until(
                lambda: stats_lines(d.logs())[-1]["spool"]["appended"] > appended,
                15,
                message=d.describe,
            )
            broker.start()
            time.sleep(2)
            assert stop(d) == 0, d.describe()
            produced = d.stdout_events()
            all_delivered(produced, lambda: list(sub.received))
        finally:
            sub.stop()
    logs = json_lines(d)
    no_exceptions(logs)
    append_lines = events_of(logs, "spool.append_failed")
    unspooled = stats_lines(logs)[-1]["spool"]["unspooled"]
    low, high = rss_range(logs)
    print(
        f"\n[1] full disk: {failed['error']}; {len(produced)} events printed and delivered, "
        f"{unspooled} published unspooled, {len(append_lines)} append_failed line(s); "
        f"RSS {low}-{high} MB"
    )
    assert "full" in failed["error"], failed
    assert unspooled > 0 and len(append_lines) <= 3
    assert events_of(logs, "mqtt.stopped")[0]["stopped_acknowledged"]  # a clean stop


def test_1_a_component_that_dies_exits_1_with_one_clear_line(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        [looping("cam1", videos["change"])],
        inference=CHATTY,
        extra={"spool": {"path": tmp_path / "state"}, "stats": {"interval": 1}},
    )
    sub = SessionSubscriber(broker, "har/+/events", "faults-1b").start()
    try:
        with MqttRecorder(broker, "har/status") as status:
            d = daemons.start(cfg, wrapper=[*LAUNCH, "--crash-inference-after", "60", "--"])
            rc = d.wait(timeout=60)
            all_delivered(d.stdout_events(), lambda: list(sub.received))
            wait_until(lambda: status.payloads("har/status")[-1:] == [b"stopped"], 10)
    finally:
        sub.stop()
    logs = json_lines(d)
    died = events_of(logs, "daemon.component_died")
    crashed = events_of(logs, "thread.crashed")
    stopped = events_of(logs, "mqtt.stopped")
    rss_range(logs)
    print(f"\n[1] component died: exit {rc}, {died}")
    assert rc == 1, d.describe()
    assert len(died) == 1 and died[0]["components"] == ["inference"], died
    assert len(crashed) == 1 and "injected fault" in crashed[0]["exception"], crashed
    assert stopped and stopped[0]["stopped_acknowledged"], "stopped was not published"


# -- 2. start-up failures ------------------------------------------------------------------------


def test_2_startup_failures_are_one_line_exit_2_and_release_what_started(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    port = free_port()
    base: dict[str, Any] = {
        "metrics": {"port": port, "host": LOOPBACK},
        "clips": {"enabled": True, "path": tmp_path / "clips", "codec": "mp4v"},
        "spool": {"path": tmp_path / "spool"},
    }
    cameras = [looping("cam1", videos["biking"])]
    figures = []

    def refused(name: str, extra: dict[str, Any], *fragments: str) -> list[str]:
        cfg = daemon_config(tmp_path / f"{name}.toml", broker, cameras, extra=extra)
        d = daemons.start(cfg)
        assert d.wait(timeout=60) == 2, d.describe()
        line = one_error_line(d.stderr_path.read_text(), *fragments)
        checked = check_config(cfg)
        assert checked.returncode == 2, checked.stderr
        assert one_error_line(checked.stderr, *fragments), checked.stderr
        figures.append(f"{name}: {line}")
        logs = [json.loads(x) for x in d.stderr_path.read_text().splitlines()[:-1]]
        stopped = events_of(logs, "daemon.stopped")
        return stopped[0]["released"] if stopped else []  # what had started, stopped in order

    with socket.socket() as taken:
        taken.bind((LOOPBACK, port))
        taken.listen()
        assert refused("port", base, f"metrics port {port} is already in use") == []
    with tmpfs(tmp_path / "spool", "64k", read_only=True):
        released = refused("spool", base, "spool", "not writable", "Read-only file system")
        assert released == ["clips", "http"]  # started http, then clips: stopped in reverse
    with tmpfs(tmp_path / "clips", "64k", read_only=True):
        released = refused("clips", base, "clip", "not writable", "Read-only file system")
        assert released == ["http"]
    print("\n[2] " + "\n[2] ".join(figures))


# -- 3. a flood of Home Assistant births -----------------------------------------------------------


def test_3_a_flood_of_home_assistant_births_is_debounced(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        [looping("cam1", videos["change"])],
        inference=CHATTY,
        extra={
            "spool": {"path": tmp_path / "state"},
            "homeassistant": {"enabled": True, "reannounce_interval_s": 3.0},
        },
    )
    with MqttRecorder(broker, "#") as rec:
        d = daemons.start(cfg)
        wait_events(d, 1, 40)
        configs = len([m for m in rec.messages if m[0].endswith("/config")])
        before = rss_mb(d.pid)
        flood = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="ha-flood")
        flood.connect(broker.host, broker.port)
        flood.loop_start()
        started = time.monotonic()
        for _ in range(15_000):
            flood.publish("homeassistant/status", "online", qos=0)
        flood.loop_stop()
        flood.disconnect()
        flood_s = time.monotonic() - started
        time.sleep(5)  # the last announcement of the flood
        after = rss_mb(d.pid)
        announced = len([m for m in rec.messages if m[0].endswith("/config")]) - configs
        assert d.alive() and stop(d) == 0, d.describe()
        all_delivered(d.stdout_events(), lambda: recorded_events(rec))
    logs = json_lines(d)
    no_exceptions(logs)
    reannounced = events_of(logs, "homeassistant.reannounced")
    answered = sum(e["requests"] for e in reannounced)
    print(
        f"\n[3] 15,000 'online' in {flood_s:.1f}s: {len(reannounced)} announcement(s) "
        f"({announced} config messages, {configs} per announcement) answering {answered} "
        f"requests; RSS {before:.0f} -> {after:.0f} MB"
    )
    assert 1 <= len(reannounced) <= (flood_s + 5) / 3.0 + 2
    assert announced == len(reannounced) * configs
    assert after - before < 30


# -- 4. a wall-clock step --------------------------------------------------------------------------


def test_4_a_wall_clock_step_changes_only_payload_times(
    tmp_path: Path,
    broker: MosquittoBroker,
    daemons: DaemonPool,
    videos: dict[str, Path],
    rtsp_server_factory: Any,
) -> None:
    server = rtsp_server_factory(videos["change"])
    port = free_port()
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        [{"name": "cam1", "source": server.url, "stall_timeout_s": 3}],
        inference={**CHATTY, "update_interval_s": 1.0},
        extra={
            "spool": {"path": tmp_path / "state"},
            "stats": {"interval": 1},
            "metrics": {"port": port, "host": LOOPBACK},
        },
    )
    step_at, step_by = 9.0, -3600.0
    health: list[tuple[int, dict[str, Any]]] = []
    with MqttRecorder(broker, "har/#") as rec:
        launched = time.time()
        d = daemons.start(cfg, wrapper=[*LAUNCH, f"--wall-step-at={step_at}",
                                        f"--wall-step-by={step_by}", "--"])  # fmt: skip
        wait_events(d, 1, 40)
        while time.time() < launched + step_at + 8:
            health.append(http_json(f"http://{LOOPBACK}:{port}/healthz"))
            time.sleep(0.5)
        assert stop(d) == 0, d.describe()
        produced = d.stdout_events()
        all_delivered(produced, lambda: recorded_events(rec))
        arrivals = [(at, json.loads(p)) for at, (t, p, _, _) in rec.timed() if "/events" in t]
    logs = json_lines(d)
    no_exceptions(logs)
    rss_range(logs)
    # The daemon's uptime starts after the launcher's clock patch: past step_at, it stepped.
    after = [s for s in stats_lines(logs) if s["uptime_s"] > step_at + 1]
    sampled = [s["cameras"]["cam1"]["sampled_fps"] for s in after]
    stepped = launched + step_at + 1  # test-side wall time by which the daemon had stepped
    late = [(at, ev) for at, ev in arrivals if at > stepped]
    updates = np.diff([at for at, ev in late if ev["type"] == "update"])
    skew = [parse_iso(ev["at"]) - at for at, ev in late]
    print(
        f"\n[4] wall clock {step_by:+.0f} s at {step_at} s: sampled_fps after the step "
        f"{sampled}; {len(late)} events after it (update gaps {np.round(updates, 2).tolist()} "
        f"s), their 'at' off by {np.median(skew):.0f} s; /healthz {sorted({h for h, _ in health})}"
    )
    assert len(sampled) >= 5 and min(sampled) > 8.0, sampled  # 1 / 0.1011 s = 9.9 per second
    ages = [s["cameras"]["cam1"]["last_frame_age_s"] for s in stats_lines(logs)]
    assert all(age >= 0 for age in ages if age is not None), ages
    assert len(late) >= 4 and updates.size >= 1, late
    assert updates.min() > 0.7, updates  # update_interval_s = 1: no burst, no stall
    assert all(abs(x - step_by) < 15 for x in skew), skew
    assert {h for h, _ in health} == {200}, health[-3:]
    assert all(b["cameras"]["cam1"]["healthy"] for _, b in health)
