"""`har-daemon events` as a process against a real broker: a persistent session, duplicates
dropped across its own restarts, shared subscriptions, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
import pytest

from tests.daemon_helpers import daemon_env
from tests.infra.events_consumer import EventsConsumer
from tests.infra.mosquitto import MosquittoBroker
from tests.infra.procs import wait_until
from tests.shared_data import REPO


def event(camera: str, seq: int, kind: str = "start") -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": "4b0d7a0e-5d8c-4f57-9a51-0f6d2c8a9e11", "type": kind, "camera": camera,
        "activity": "fight", "confidence": 0.9312, "peak_confidence": 0.9787,
        "started_at": "2026-11-24T10:46:03.120Z", "at": "2026-11-24T10:46:14.920Z",
        "model": "fight-lrcn", "seq": seq,
    }  # fmt: skip
    if kind == "end":
        doc.update(ended_at=doc["at"], duration_s=11.8, reason="below_exit")
    return doc


def send(broker: MosquittoBroker, items: list[tuple[str, int] | tuple[str, bytes]]) -> None:
    """Publish (camera, seq) events, or (topic, raw payload), QoS 1, in order."""
    msgs = []
    for a, b in items:
        if isinstance(b, bytes):
            msgs.append({"topic": a, "payload": b, "qos": 1})
        else:
            msgs.append({"topic": f"har/{a}/events", "payload": json.dumps(event(a, b)), "qos": 1})
    publish.multiple(msgs, hostname=broker.host, port=broker.port, protocol=mqtt.MQTTv5)


def keys(consumer: EventsConsumer) -> list[tuple[str, int]]:
    return [(e["camera"], e["seq"]) for e in consumer.events()]


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return mosquitto_factory(persistence=True)


def test_restart_keeps_the_session_and_drops_what_was_printed(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    c = EventsConsumer(broker, tmp_path, "reader").start()
    try:
        send(broker, [("lobby", 1), ("lobby", 2), ("lobby", 2), ("yard", 1), ("lobby", 3)])
        send(broker, [("har/lobby/events", b"not json"), ("har/yard/events", b'{"seq": "x"}')])
        wait_until(lambda: len(c.lines()) >= 4, 10, message=c.describe)
        assert c.stop() == 0, c.describe()
        assert keys(c) == [("lobby", 1), ("lobby", 2), ("yard", 1), ("lobby", 3)]
        assert c.events()[0] == event("lobby", 1)  # --json: the payload as published

        # While it is away the broker queues for its session: re-sends and new events.
        send(broker, [("lobby", 2), ("lobby", 3), ("lobby", 4), ("yard", 1), ("yard", 2)])
        c.start()
        wait_until(lambda: len(c.lines()) >= 6, 10, message=c.describe)
        assert c.stop() == 0, c.describe()
    finally:
        c.kill()
    assert keys(c)[4:] == [("lobby", 4), ("yard", 2)]
    stopped = [e for e in c.logs() if e["event"] == "events.stopped"]
    assert [(e["printed"], e["duplicates"]) for e in stopped] == [(4, 1), (2, 3)], c.describe()
    assert [e["session_present"] for e in c.logs() if e["event"] == "events.connected"] == [
        False,
        True,
    ]
    state = json.loads(c.state.read_text())
    assert {cam: [seq for seq, _ in seen] for cam, seen in state["cameras"].items()} == {
        "har/lobby": [1, 2, 3, 4],
        "har/yard": [1, 2],
    }


@pytest.mark.parametrize(
    ("hold", "printed"),
    [
        ("1", [("lobby", 1), ("yard", 1), ("lobby", 2), ("lobby", 3), ("lobby", 4), ("lobby", 6)]),
        ("0", [("lobby", 1), ("lobby", 3), ("yard", 1), ("lobby", 4), ("lobby", 2), ("lobby", 6)]),
    ],
)
def test_a_cameras_events_are_printed_in_seq_order_whatever_order_they_came_in(
    tmp_path: Path, broker: MosquittoBroker, hold: str, printed: list[tuple[str, int]]
) -> None:
    """As a broker hands them back after a reconnect (tests/app/test_multi_host.py saw seq 31
    before 8-30 through a bridge); a gap that never fills (5) is waited for `--reorder-s`."""
    c = EventsConsumer(broker, tmp_path, "reader", ["--json", "--reorder-s", hold]).start()
    try:
        send(broker, [("lobby", 1), ("lobby", 3), ("yard", 1), ("lobby", 4), ("lobby", 2)])
        send(broker, [("lobby", 6)])
        wait_until(lambda: len(c.lines()) >= len(printed), 10, message=c.describe)
        assert c.stop() == 0, c.describe()
        assert keys(c) == printed
        # Every held event was acknowledged once printed: the next session gets nothing again.
        c.start()
        send(broker, [("yard", 2)])
        wait_until(lambda: len(c.lines()) > len(printed), 10, message=c.describe)
        assert c.stop() == 0, c.describe()
    finally:
        c.kill()
    stopped = [e for e in c.logs() if e["event"] == "events.stopped"]
    held = 3 if hold == "1" else 0  # lobby 3, 4 and 6
    assert [(e["printed"], e["duplicates"], e["reordered"]) for e in stopped] == [
        (len(printed), 0, held),
        (1, 0, 0),
    ], c.describe()


def test_shared_subscription_splits_events_between_consumers(
    tmp_path: Path, broker: MosquittoBroker
) -> None:
    group = ["--share", "alerts"]
    a = EventsConsumer(broker, tmp_path, "member-a", group).start()
    b = EventsConsumer(broker, tmp_path, "member-b", group).start()
    try:
        sent = [(cam, seq) for seq in range(1, 11) for cam in ("lobby", "yard")]
        send(broker, list(sent))
        wait_until(lambda: len(a.lines()) + len(b.lines()) >= len(sent), 10, message=a.describe)
        assert a.stop() == 0 and b.stop() == 0
    finally:
        a.kill()
        b.kill()
    lines = {"a": a.lines(), "b": b.lines()}
    assert lines["a"] and lines["b"], lines  # both got a share
    # Human-readable lines: `<at> <prefix>/<camera> <type> <activity> <conf> seq=<n> id=<8>`.
    got = []
    for line in lines["a"] + lines["b"]:
        at, camera, kind, activity, confidence, seq, short_id = line.split(" ")
        assert (at, kind, activity, confidence, short_id) == (
            "2026-11-24T10:46:14.920Z", "start", "fight", "0.93", "id=4b0d7a0e",
        )  # fmt: skip
        got.append((camera.removeprefix("har/"), int(seq.removeprefix("seq="))))
    assert sorted(got) == sorted(sent)  # every event once, in one member or the other


def _events_cmd(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", "events", *args],
        capture_output=True, text=True, timeout=60, cwd=REPO,
        env={**daemon_env(tmp_path), **(env or {})},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "no-such-host.invalid"], "cannot resolve"),
        (["--host", "127.0.0.1", "--tls-ca-file", "/nonexistent/ca.pem"], "cannot read"),
        (["--host", "127.0.0.1", "--state", "/nonexistent/dir/s.json"], "cannot write state"),
        (["--host", "127.0.0.1", "--share", "a/b"], "share group"),
        (["--host", "127.0.0.1", "--port", "0"], "port 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    state = [] if "--state" in args else ["--state", str(tmp_path / "s.json")]
    result = _events_cmd(tmp_path, *args, *state)
    assert result.returncode == 2, result
    assert result.stderr.startswith("har-daemon: error: ") and says in result.stderr, result
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_refused_credentials_are_exit_2(
    tmp_path: Path, mosquitto_factory: Callable[..., MosquittoBroker]
) -> None:
    broker = mosquitto_factory(users={"reader": "right"})
    result = _events_cmd(
        tmp_path, "--host", broker.host, "--port", str(broker.port), "--username", "reader",
        "--state", str(tmp_path / "s.json"), env={"HAR_MQTT__PASSWORD": "wrong"},
    )  # fmt: skip
    assert result.returncode == 2, result
    lines = [x for x in result.stderr.splitlines() if not x.startswith("{")]
    assert len(lines) == 1 and "refused the connection" in lines[0], result.stderr
    assert "wrong" not in result.stderr


def test_a_broker_certificate_that_does_not_verify_is_exit_2(
    tmp_path: Path, mosquitto_factory: Callable[..., MosquittoBroker]
) -> None:
    broker = mosquitto_factory(tls=True)
    common = ["--host", broker.host, "--port", str(broker.tls_port)]
    common += ["--state", str(tmp_path / "s.json")]
    result = _events_cmd(tmp_path, *common, "--tls")  # the system CAs: not the test CA
    lines = [x for x in result.stderr.splitlines() if not x.startswith("{")]
    assert result.returncode == 2 and len(lines) == 1, result
    assert "certificate verify failed" in lines[0], lines
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate")
    result = _events_cmd(tmp_path, *common, "--tls-ca-file", str(garbage))
    assert result.returncode == 2 and result.stderr.startswith("har-daemon: error: TLS: "), result
