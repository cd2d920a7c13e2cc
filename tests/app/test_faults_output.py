"""Issue 13, items 5-8: what the daemon writes and measures when outsiders misbehave.

Passwords in query strings, media that makes FFmpeg complain, a flood of junk commands, and
the smaller items (end-to-end latency, a 1,000 fps file, the RTSP open timeout, a zero-byte file,
per-camera health), each against the real daemon and a real Mosquitto, with the same checks as
test_faults.py: every stderr line JSON, the exit status or continued service, memory, and every
printed event delivered. Each prints its probe's figure (`pytest -s`).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from har_daemon.video.frames import probe_video
from tests.app.fault_helpers import (
    CHATTY,
    SECRETS,
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
from tests.daemon_helpers import DEMO_MODEL, DaemonPool, daemon_config, daemon_env, parse_iso
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import LOOPBACK, free_port, wait_until
from tests.shared_data import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


# -- 5. secrets in query strings -----------------------------------------------------------------


def test_5_query_string_secrets_are_never_logged_shown_or_published(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    dead = free_port()
    cameras = [
        looping("cam1", videos["biking"]),
        {
            "name": "reolink",
            "source": f"rtsp://127.0.0.1:{dead}/h264Preview_01_main?user=admin&password="
            f"{SECRETS[0]}&token={SECRETS[1]}",
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 0.5,
        },
        {
            "name": "dahua",
            "source": f"rtsp://admin:{SECRETS[2]}@127.0.0.1:{dead}/cam/realmonitor?channel=1",
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 0.5,
        },
    ]
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        cameras,
        extra={
            "spool": {"path": tmp_path / "state"},
            "homeassistant": {"enabled": True},
            "stats": {"interval": 1},
        },
    )
    with MqttRecorder(broker, "#") as rec:
        d = daemons.start(cfg)
        wait_log(d, "camera.open_failed", 30)
        time.sleep(2)
        assert stop(d) == 0, d.describe()
        all_delivered(d.stdout_events(), lambda: recorded_events(rec))
        published = b"\n".join(p for _, p, _, _ in rec.messages)
    checked = check_config(cfg)
    bad = tmp_path / "bad.toml"
    short = f"rtsp://cam/s?password={SECRETS[0]}"  # short enough for the error to show it
    bad.write_text(cfg.read_text() + f'\n[capture]\nopen_timeout_s = "{short}"\n')
    refused = check_config(bad)
    shown = {
        "stderr": d.stderr_path.read_text(),
        "stdout": d.stdout_path.read_text(),
        "mqtt": published.decode(errors="replace"),
        "check-config": checked.stdout + checked.stderr,
        "config error": refused.stdout + refused.stderr,
    }
    logs = json_lines(d)
    no_exceptions(logs)
    rss_range(logs)
    failed = events_of(logs, "camera.open_failed")
    start = events_of(logs, "daemon.start")[0]
    print(
        f"\n[5] {len(failed)} open_failed lines, daemon.start, check-config and a config "
        f"error: 0 secrets in {sum(len(v) for v in shown.values())} characters; shown as "
        f"{[c['source'] for c in start['cameras'][1:]]}"
    )
    for where, text in shown.items():
        for secret in SECRETS:
            assert secret not in text, (where, secret)
    assert checked.returncode == 0 and refused.returncode == 2, refused.stderr
    assert "password=***" in refused.stderr and "capture.open_timeout_s" in refused.stderr
    assert {e["source"] for e in failed} == {c["source"] for c in start["cameras"][1:]}
    assert "password=***&token=***" in start["cameras"][1]["source"]


# -- 6. native diagnostics -------------------------------------------------------------------------


def damaged_copy(source: Path, target: Path) -> Path:
    """The clip with bytes flipped all through its video data: it opens, then decodes badly."""
    data = bytearray(source.read_bytes())
    for i in range(len(data) // 10, len(data), 997):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_6_native_diagnostics_keep_stderr_one_json_object_per_line(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool
) -> None:
    damaged = damaged_copy(DEMO_MODEL / "sample.mp4", tmp_path / "damaged.mp4")
    dead = free_port()
    cameras = [
        {"name": "damaged", "source": str(damaged), "realtime": False, "loop": True},
        {
            "name": "refused",
            "source": f"rtsp://127.0.0.1:{dead}/stream?password={SECRETS[0]}",
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 0.5,
        },
    ]
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        cameras,
        inference=CHATTY,
        extra={"spool": {"path": tmp_path / "state"}, "stats": {"interval": 1}},
    )
    with MqttRecorder(broker, "har/#") as rec:
        d = daemons.start(cfg)
        wait_log(d, "camera.open_failed", 30)
        time.sleep(4)
        assert d.alive() and stop(d) == 0, d.describe()
        all_delivered(d.stdout_events(), lambda: recorded_events(rec))
    logs = json_lines(d)  # the whole point: every line parses
    rss_range(logs)
    native = events_of(logs, "native.log")
    by_library: dict[str, int] = {}
    for e in native:
        by_library[e["library"]] = by_library.get(e["library"], 0) + 1
    held = sum(e.get("suppressed", 0) for e in [*native, *events_of(logs, "log.suppressed")])
    refused = [e for e in native if e.get("component") == "tcp"]
    print(
        f"\n[6] {len(logs)} stderr lines, all JSON; native lines by library {by_library}, "
        f"{held} repeats held back and counted; e.g. {json.dumps(refused[:1])}"
    )
    assert refused and "Connection refused" in refused[0]["message"], native[:5]
    assert by_library.get("ffmpeg", 0) > len(refused), "no decoder complaint captured"
    assert all(SECRETS[0] not in json.dumps(e) for e in logs)


# -- 7. a flood of junk commands -----------------------------------------------------------------


def test_7_twenty_thousand_junk_commands_give_a_few_counted_lines(
    tmp_path: Path, mosquitto_factory: Any, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    # The broker must not drop any of them on the way (its default queue per client is 1000).
    broker = mosquitto_factory(extra_config="max_queued_messages 0", log_types=("error",))
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        [looping("cam1", videos["change"])],
        inference=CHATTY,
        extra={"spool": {"path": tmp_path / "state"}},
    )
    junk = [
        ("har/cam1/set", b"not json"),
        ("har/cam1/set", b'{"enable": false}'),
        ("har/nobody/set", b'{"enabled": false}'),
        ("har/set", b'{"enabled": "no"}'),
    ]
    with MqttRecorder(broker, "har/#") as rec:
        d = daemons.start(cfg)
        wait_events(d, 1, 40)
        before = rss_mb(d.pid)
        sender = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="junk")
        sender.max_queued_messages_set(0)
        sender.connect(broker.host, broker.port)
        sender.loop_start()
        infos = [sender.publish(*junk[i % len(junk)], qos=1) for i in range(20_000)]
        for info in infos:
            info.wait_for_publish(30)
        # One real command after them: when its answer comes, the daemon has read them all.
        mark = len(rec.payloads("har/cam1/enabled"))
        sender.publish("har/cam1/set", b'{"enabled": true}', qos=1).wait_for_publish(10)
        sender.loop_stop()
        sender.disconnect()
        wait_until(lambda: len(rec.payloads("har/cam1/enabled")) > mark, 60, message=d.describe)
        after = rss_mb(d.pid)
        assert d.alive() and stop(d) == 0, d.describe()
        all_delivered(d.stdout_events(), lambda: recorded_events(rec))
    logs = json_lines(d)
    no_exceptions(logs)
    control = [e for e in logs if e["event"].startswith("control.")]
    held = events_of(logs, "log.suppressed")
    counted = len(control) + sum(e.get("suppressed", 0) for e in [*control, *held])
    print(
        f"\n[7] 20,000 junk commands and a real one: {len(control)} control lines + "
        f"{len(held)} log.suppressed lines, counting {counted}; RSS {before:.0f} -> {after:.0f} MB"
    )
    assert len(control) <= 25 and counted == 20_001, (len(control), counted)  # and the real one
    assert after - before < 30


# -- 8. the smaller items ----------------------------------------------------------------------


def _thousand_fps_file(path: Path, seconds: float = 3.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 1000.0, (64, 48))
    for i in range(int(seconds * 1000)):
        writer.write(np.full((48, 64, 3), i % 256, np.uint8))
    writer.release()
    return path


def test_8_latency_fps_open_timeout_empty_file_and_per_camera_health(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    # A server that accepts the connection and never answers: only the open timeout ends it.
    silent = socket.socket()
    silent.bind((LOOPBACK, 0))
    silent.listen(16)
    port = free_port()
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        [
            looping("cam1", videos["change"]),
            {
                "name": "silent",
                "source": f"rtsp://{LOOPBACK}:{silent.getsockname()[1]}/stream",
                "open_timeout_s": 2,
                "reconnect_initial_s": 0.2,
                "reconnect_max_s": 0.2,
                "reconnect_jitter": 0,
            },
        ],
        mqtt={"publish_scores": True},
        extra={
            "spool": {"path": tmp_path / "state"},
            "stats": {"interval": 1},
            "metrics": {"port": port, "host": LOOPBACK},
        },
    )
    with MqttRecorder(broker, "har/#") as rec, silent:
        d = daemons.start(cfg)
        wait_log(d, "camera.open_failed", 30)
        wait_until(lambda: len(events_of(d.logs(), "camera.open_failed")) >= 3, 20)
        time.sleep(3)
        status, body = http_json(f"http://{LOOPBACK}:{port}/healthz")
        assert stop(d) == 0, d.describe()
        all_delivered(d.stdout_events(), lambda: recorded_events(rec))
        arrived = [(at, json.loads(p)) for at, (t, p, _, _) in rec.timed() if "/scores" in t]
    logs = json_lines(d)
    no_exceptions(logs)
    rss_range(logs)
    cam = stats_lines(logs)[-1]["cameras"]["cam1"]
    seen_ms = sorted((at - parse_iso(doc["at"])) * 1000 for at, doc in arrived)
    attempts = [parse_iso(e["timestamp"]) for e in events_of(logs, "camera.open_failed")]
    open_s = np.diff(attempts) - 0.2
    # 1,000 fps: the probe and the capture agree on the file's time.
    fast = _thousand_fps_file(tmp_path / "fast.avi")
    probed = probe_video(fast)
    run = subprocess.run(
        [sys.executable, "-m", "har_daemon", "run", "--no-mqtt", "--source", str(fast)],
        capture_output=True, text=True, env=daemon_env(tmp_path), cwd=REPO, timeout=120,
        check=False,
    )  # fmt: skip
    stopped = next(json.loads(x) for x in run.stderr.splitlines() if '"daemon.stopped"' in x)
    sampled = stopped["cameras"]["demo"]["frames_sampled"]
    # A zero-byte file: one line, the path once.
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    refused = subprocess.run(
        [sys.executable, "-m", "har_daemon", "run", "--no-mqtt", "--source", str(empty)],
        capture_output=True, text=True, env=daemon_env(tmp_path), cwd=REPO, timeout=60,
        check=False,
    )  # fmt: skip
    line = one_error_line(refused.stderr, str(empty))
    print(
        f"\n[8] latency_ms p50/p95 {cam['latency_ms_p50']}/{cam['latency_ms_p95']} (end to end) "
        f"vs model_ms {cam['model_ms_p50']}/{cam['model_ms_p95']}; subscriber saw p50 "
        f"{np.median(seen_ms):.1f} ms\n[8] 1,000 fps file: probe {probed.fps:g} fps, "
        f"{stopped['cameras']['demo']['frames_read']} frames read, {sampled} sampled over "
        f"{probed.duration_s:g} s\n[8] RTSP open attempts took {np.round(open_s, 2).tolist()} s "
        f"(open_timeout_s = 2)\n[8] zero-byte file: {line!r}\n[8] /healthz {status}: "
        f"{body.get('cameras')}"
    )
    assert cam["latency_ms_p50"] > cam["model_ms_p50"] > 0
    assert cam["latency_ms_p50"] <= np.median(seen_ms) + 5  # the subscriber sees it later still
    assert probed.fps == 1000 and run.returncode == 0, run.stderr[-2000:]
    assert abs(sampled - probed.duration_s / 0.1011) <= 3, sampled
    assert len(open_s) >= 2 and all(1.5 < s < 3.5 for s in open_s), open_s
    assert refused.returncode == 2 and line.count(str(empty)) == 1, line
    assert status == 503 and body["cameras"]["cam1"] == {"healthy": True, "reasons": []}, body
    assert body["cameras"]["silent"]["reasons"] == ["camera 'silent' is offline"], body
