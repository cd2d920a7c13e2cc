"""No event lost: the whole daemon against a real broker that goes away.

A subscriber with a persistent session (clean_start false, QoS 1) is on the broker before the
daemon starts; the broker keeps sessions across its own restarts (persistence on). Whatever the
daemon printed as an event must reach that subscriber, first arrivals in order per camera.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from har_daemon.training.synth import write_activity_video
from tests.daemon_helpers import DaemonPool, DaemonProcess, daemon_config
from tests.infra.mosquitto import MosquittoBroker
from tests.infra.session_subscriber import SessionSubscriber

pytestmark = pytest.mark.slow

CAMERA = "lobby"
# Frequent events: any top class starts at once, and an update every half second.
CHATTY = {
    "enter_threshold": 0.3,
    "exit_threshold": 0.05,
    "min_windows": 1,
    "update_interval_s": 0.5,
}


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_activity_video(
        tmp_path_factory.mktemp("v") / "changes.mp4",
        [("Biking", 4.0), ("Swing", 4.0), ("HorseRace", 4.0)],
        seed=3,
    )


def _start(
    tmp_path: Path,
    daemons: DaemonPool,
    broker: MosquittoBroker,
    video: Path,
    camera: dict[str, Any] | None = None,
) -> DaemonProcess:
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        [camera or {"name": CAMERA, "source": str(video), "loop": True, "realtime": True}],
        inference=CHATTY,
        mqtt={"keepalive": 5},
    )
    # One state directory for every daemon of the test: a restarted daemon finds the spool.
    with cfg.open("a") as f:
        f.write(f'\n[spool]\npath = "{tmp_path / "state"}"\n')
    return daemons.start(cfg)


def _wait_events(d: DaemonProcess, n: int, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = d.stdout_events()
        if len(events) >= n:
            return events
        assert d.alive(), d.describe()
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} events in {timeout} s\n{d.describe()}")


def _keys(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(e["id"], e["type"], e["seq"]) for e in events]


def _wait_delivered(
    sub: SessionSubscriber, produced: list[dict[str, Any]], timeout: float
) -> list[tuple[str, str, int]]:
    """Wait until every produced message (id, type, seq) arrived; return those that did not."""
    deadline = time.monotonic() + timeout
    while True:
        received = set(_keys(list(sub.received)))
        missing = [k for k in _keys(produced) if k not in received]
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.1)


def _assert_first_arrivals_in_order(received: list[dict[str, Any]]) -> None:
    first: list[int] = []
    for e in received:
        if e["seq"] not in first:
            first.append(e["seq"])
    assert first == sorted(first), first


def test_broker_outage_of_ten_seconds_loses_nothing(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, video: Path
) -> None:
    sub = SessionSubscriber(broker, f"har/{CAMERA}/events", "fault-subscriber").start()
    try:
        d = _start(tmp_path, daemons, broker, video)
        before = len(_wait_events(d, 3, 40))
        broker.stop()
        time.sleep(10.5)
        during = len(d.stdout_events()) - before
        broker.start()
        time.sleep(3)
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=20) == 0, d.describe()
        produced = d.stdout_events()
        missing = _wait_delivered(sub, produced, timeout=20)
        assert not missing, f"lost {len(missing)} of {len(produced)}: {missing[:10]}"
        _assert_first_arrivals_in_order(sub.received)
    finally:
        sub.stop()
    assert during >= 5, f"only {during} events were produced while the broker was down"


def test_events_spooled_by_a_killed_daemon_arrive_after_restart(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, video: Path
) -> None:
    sub = SessionSubscriber(broker, f"har/{CAMERA}/events", "fault-subscriber-2").start()
    try:
        first = _start(tmp_path, daemons, broker, video)
        before = len(_wait_events(first, 2, 40))
        broker.stop()
        _wait_events(first, before + 4, 30)  # produced, spooled, not deliverable
        first.kill()
        first.wait(timeout=10)
        spooled = first.stdout_events()[before:]
        broker.start()
        second = _start(tmp_path, daemons, broker, video)  # same state directory, same spool
        missing = _wait_delivered(sub, spooled, timeout=30)
        assert not missing, f"lost {len(missing)} spooled events: {missing}"
        # The restarted daemon numbers on from where the killed one stopped.
        later = _wait_events(second, 1, 30)
        assert later[0]["seq"] > max(e["seq"] for e in first.stdout_events())
        second.signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0
    finally:
        sub.stop()


def test_retained_state_comes_back_after_a_broker_restart_without_persistence(
    tmp_path: Path, mosquitto_factory: Any, daemons: DaemonPool, video: Path
) -> None:
    from tests.infra.mosquitto import MqttRecorder

    broker = mosquitto_factory(persistence=False)
    d = _start(tmp_path, daemons, broker, video)
    with MqttRecorder(broker, "har/#") as rec:
        rec.wait_for("har/status", b"online", timeout=30)
        rec.wait_for(f"har/{CAMERA}/status", b"online", timeout=30)
    broker.stop()
    broker.start()  # an empty broker: it remembers nothing
    deadline = time.monotonic() + 30
    retained: dict[str, bytes] = {}
    while time.monotonic() < deadline and len(retained) < 3:
        with MqttRecorder(broker, "har/#") as fresh:
            time.sleep(1.0)
            retained = {t: p for t, p, r, _ in fresh.messages if r}
    assert d.alive(), d.describe()
    assert retained.get("har/status") == b"online", retained
    assert retained.get(f"har/{CAMERA}/status") == b"online", retained
    assert set(json.loads(retained[f"har/{CAMERA}/activity"])) == {
        "activity", "confidence", "since", "updated_at",
    }  # fmt: skip


def test_rtsp_camera_and_broker_down_together(
    tmp_path: Path,
    broker: MosquittoBroker,
    daemons: DaemonPool,
    video: Path,
    rtsp_server_factory: Any,
) -> None:
    server = rtsp_server_factory(video)
    camera = {
        "name": CAMERA,
        "source": server.url,
        "stall_timeout_s": 2,
        "reconnect_initial_s": 0.5,
        "reconnect_max_s": 2,
    }
    sub = SessionSubscriber(broker, f"har/{CAMERA}/events", "fault-subscriber-3").start()
    try:
        d = _start(tmp_path, daemons, broker, video, camera)
        before = len(_wait_events(d, 3, 40))
        broker.stop()
        server.stop()
        time.sleep(5)
        down = d.stdout_events()[before:]
        server.start()
        broker.start()
        _wait_events(d, before + len(down) + 3, 40)  # events flow again once both are back
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=20) == 0, d.describe()
        produced = d.stdout_events()
        missing = _wait_delivered(sub, produced, timeout=30)
        assert not missing, f"lost {len(missing)} of {len(produced)}: {missing[:10]}"
        _assert_first_arrivals_in_order(sub.received)
    finally:
        sub.stop()
    # The stream gap ended what was going on, while the broker was away (so it was spooled).
    assert any(e["type"] == "end" and e["reason"] == "finish" for e in down), down
    stopped = [x for x in d.logs() if x.get("event") == "daemon.stopped"]
    assert stopped and stopped[0]["cameras"][CAMERA]["reconnects"] >= 1, d.describe()
