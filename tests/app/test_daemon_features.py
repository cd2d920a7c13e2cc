"""What dashboards and operators get beyond events, end to end on a real broker: snapshots, event
clips, retained statistics, pause/resume control, Home Assistant discovery, Prometheus metrics
and the health endpoint. The daemon runs as a real process on the bundled demo model."""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.daemon_helpers import (
    EAGER,
    DaemonPool,
    check_event_schema,
    count,
    daemon_config,
    json_messages,
    wait_for_json,
)
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CAMERA = "yard"


def _http(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_snapshots_clips_and_stats_from_a_whole_file(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    clips_dir = tmp_path / "clips"
    cfg = daemon_config(
        tmp_path / "har.toml",
        mosquitto,
        [{"name": CAMERA, "source": videos["change"], "realtime": False}],
        extra={
            "snapshots": {"enabled": True, "max_width": 100, "quality": 80},
            "clips": {
                "enabled": True,
                "path": clips_dir,
                "pre_roll_s": 1,
                "post_roll_s": 0.5,
                "fps": 5,
                "codec": "h264",
            },
            "stats": {"interval": 0.5},
        },
    )
    with MqttRecorder(mosquitto, "har/#") as rec:
        d = daemons.start(cfg)
        assert d.wait(timeout=90) == 0, d.describe()
        rec.wait_for("har/status", b"stopped", timeout=5)
        events = json_messages(rec, f"har/{CAMERA}/events")
        snapshots = rec.payloads(f"har/{CAMERA}/snapshot")
        stats = json_messages(rec, "har/stats")
    check_event_schema(events, CAMERA, ["Biking", "HorseRace"], "demo-synth-convlstm")
    starts = [e for e in events if e["type"] == "start"]
    ends = [e for e in events if e["type"] == "end"]
    assert [e["activity"] for e in starts] == ["Biking", "HorseRace"], events
    assert all(e["has_snapshot"] is True for e in starts), starts

    # One retained JPEG per start, scaled to max_width (the video is 160x120).
    assert len(snapshots) == len(starts)
    for jpeg in snapshots:
        assert jpeg[:3] == b"\xff\xd8\xff"
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.shape == (75, 100, 3), getattr(img, "shape", None)
    with MqttRecorder(mosquitto, f"har/{CAMERA}/snapshot") as fresh:
        _, payload, retain, _ = fresh.wait_for(f"har/{CAMERA}/snapshot", timeout=5)
        assert retain and payload == snapshots[-1]

    # Each end names its clip; every clip is a complete, readable H.264 MP4 of about its length.
    assert len(ends) == 2 and all(e["clip"] for e in ends), ends
    for end in ends:
        path = Path(end["clip"])
        assert path.parent == clips_dir and path.suffix == ".mp4", end
        assert path.is_file(), sorted(clips_dir.iterdir())
        cap = cv2.VideoCapture(str(path))
        fourcc = int(cap.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
        assert fourcc in ("avc1", "h264"), fourcc  # re-encoded: browsers and HA play it
        frames = 0
        while cap.read()[0]:
            frames += 1
        cap.release()
        expected = (end["duration_s"] + 1.0 + 0.5) * 5
        assert 0.5 * expected <= frames <= 1.5 * expected + 5, (frames, expected, end)
    assert not list((clips_dir / ".partial").glob("*.mp4"))

    # Statistics: published retained (at least the final ones at exit), with rates.
    assert stats, "no har/stats message"
    cam = stats[-1]["cameras"][CAMERA]
    assert {"capture_fps", "sampled_fps", "inference_fps", "stale_windows", "reconnects"} <= set(
        cam
    )
    assert cam["frames_read"] > 0 and stats[-1]["rss_mb"] > 0 and stats[-1]["uptime_s"] > 0
    assert "spool" in stats[-1] and stats[-1]["inference"]["batches"] > 0


def test_control_topics_pause_and_resume_detection(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    import paho.mqtt.publish as publish

    def send(topic: str, payload: str, retain: bool = False) -> None:
        publish.single(
            topic, payload, qos=1, retain=retain, hostname=mosquitto.host, port=mosquitto.port
        )

    cfg = daemon_config(
        tmp_path / "har.toml",
        mosquitto,
        [{"name": CAMERA, "source": videos["biking"], "loop": True, "realtime": True}],
        mqtt={"publish_scores": True},
        inference=EAGER,
    )
    scores, enabled, events = (
        f"har/{CAMERA}/scores",
        f"har/{CAMERA}/enabled",
        f"har/{CAMERA}/events",
    )
    # A retained command left on the broker is stale by the time a daemon (re)starts: ignored.
    send(f"har/{CAMERA}/set", '{"enabled": false}', retain=True)
    with MqttRecorder(mosquitto, "har/#") as rec:
        d = daemons.start(cfg)
        rec.wait_for(enabled, b'{"enabled":true}', timeout=20)
        wait_for_json(rec, events, lambda e: e["type"] == "start", timeout=30, daemon=d)
        send(f"har/{CAMERA}/set", "", retain=True)  # clear it

        before = count(rec)
        send(f"har/{CAMERA}/set", '{"enabled": false}')
        rec.wait_for(enabled, b'{"enabled":false}', timeout=5, after=before)
        # Pausing ends what was going on, then nothing is scored.
        wait_for_json(rec, events, lambda e: e["type"] == "end", timeout=5, after=before)
        time.sleep(1.0)
        quiet = count(rec)
        time.sleep(2.0)
        assert not [m for m in rec.messages[quiet:] if m[0] == scores], "scored while paused"

        # Garbage is ignored with a log line.
        send(f"har/{CAMERA}/set", "yes please")
        send("har/nosuchcamera/set", '{"enabled": true}')
        time.sleep(1.0)
        assert not [m for m in rec.messages[quiet:] if m[0] == scores]

        resumed = count(rec)
        send("har/set", '{"enabled": true}')  # every camera
        rec.wait_for(enabled, b'{"enabled":true}', timeout=5, after=resumed)
        wait_for_json(rec, scores, timeout=10, after=resumed, daemon=d)
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=15) == 0, d.describe()
    logs = d.logs()
    rejected = [e for e in logs if e.get("event") == "control.rejected"]
    assert len(rejected) == 2, rejected
    assert any(e.get("event") == "control.retained_ignored" for e in logs), d.describe()
    applied = [e for e in logs if e.get("event") == "control.applied"]
    assert [e["enabled"] for e in applied] == [False, True], applied


def test_home_assistant_discovery_announces_reannounces_and_cleans_up(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    import paho.mqtt.publish as publish

    stale = "homeassistant/sensor/har/gone_activity/config"
    publish.single(
        stale, '{"unique_id":"x","state_topic":"har/gone/activity"}', qos=1, retain=True,
        hostname=mosquitto.host, port=mosquitto.port,
    )  # fmt: skip
    cfg = daemon_config(
        tmp_path / "har.toml",
        mosquitto,
        [{"name": CAMERA, "source": videos["biking"], "loop": True, "realtime": True}],
        extra={"homeassistant": {"enabled": True}, "snapshots": {"enabled": True}},
    )
    with MqttRecorder(mosquitto, "homeassistant/#") as rec:
        d = daemons.start(cfg)
        sensor = f"homeassistant/sensor/har/{CAMERA}_activity/config"
        rec.wait_for(sensor, timeout=20)
        # The stale entity of a camera that is gone is deleted (empty retained payload).
        rec.wait_for(stale, b"", timeout=10)
        configs = {t: json.loads(p) for t, p, _, _ in rec.messages if t.endswith("/config") and p}
        ours = {t: c for t, c in configs.items() if t != stale}
        components = sorted(t.split("/")[1] for t in ours)
        # The demo model's four classes all alert (no alert_activities configured).
        assert components == ["binary_sensor"] * 4 + ["image", "sensor", "switch"], ours
        for c in ours.values():
            topics = [a["topic"] for a in c["availability"]]
            assert "har/status" in topics, c
        assert ours[sensor]["state_topic"] == f"har/{CAMERA}/activity"

        # Home Assistant restarting (its birth message) makes the daemon announce again.
        before = count(rec)
        publish.single("homeassistant/status", "online", hostname=mosquitto.host,
                       port=mosquitto.port)  # fmt: skip
        rec.wait_for(sensor, timeout=10, after=before)
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=15) == 0, d.describe()
    with MqttRecorder(mosquitto, "homeassistant/#") as fresh:
        fresh.wait_for(sensor, timeout=5)
        time.sleep(0.3)
        assert stale not in {t for t, p, _, _ in fresh.messages if p}


def test_metrics_and_healthz_follow_a_camera_that_goes_away(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    daemons: DaemonPool,
    rtsp_server_factory: Any,
    videos: dict[str, Path],
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    server = rtsp_server_factory(videos["biking"])
    port = free_port()
    cfg = daemon_config(
        tmp_path / "har.toml",
        mosquitto,
        [
            {
                "name": CAMERA,
                "source": server.url,
                "stall_timeout_s": 2,
                "reconnect_initial_s": 0.5,
                "reconnect_max_s": 1,
            }
        ],
        extra={"metrics": {"port": port, "host": "127.0.0.1"}},
    )
    d = daemons.start(cfg)
    base = f"http://127.0.0.1:{port}"

    def windows() -> float:
        status, body = _http(f"{base}/metrics")
        assert status == 200
        for fam in text_string_to_metric_families(body.decode()):
            for s in fam.samples:
                if s.name == "har_camera_windows_total" and s.labels.get("camera") == CAMERA:
                    return s.value
        return 0.0

    wait_until(lambda: d.alive() and _try(lambda: windows() > 0), timeout=30,
               message=d.describe)  # fmt: skip
    status, body = _http(f"{base}/healthz")
    healthy = {"healthy": True, "cameras": {CAMERA: {"healthy": True, "reasons": []}}}
    assert (status, json.loads(body)) == (200, healthy)

    server.stop()
    wait_until(lambda: _http(f"{base}/healthz")[0] == 503, timeout=15, message=d.describe)
    status, body = _http(f"{base}/healthz")
    assert any(CAMERA in r for r in json.loads(body)["reasons"]), body
    assert not json.loads(body)["cameras"][CAMERA]["healthy"], body
    server.start()
    wait_until(lambda: _http(f"{base}/healthz")[0] == 200, timeout=20, message=d.describe)
    assert _http(f"{base}/nothing")[0] == 404
    d.signal(signal.SIGTERM)
    assert d.wait(timeout=15) == 0, d.describe()


def _try(fn: Any) -> bool:
    try:
        return bool(fn())
    except OSError:
        return False
