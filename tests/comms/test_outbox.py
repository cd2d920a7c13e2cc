"""Spool-first event delivery against a real Mosquitto: outages, a SIGKILLed sender, order.

Subscribers here hold a persistent session (fixed client id, clean_start=False, a session expiry,
QoS 1, subscribed before any outage) on a broker with persistence, so whatever the broker accepts
reaches them even when it is accepted while they are reconnecting.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from har_daemon.comms.mqtt import MqttClient
from har_daemon.comms.outbox import Outbox
from har_daemon.comms.payloads import encode_json
from har_daemon.comms.spool import Spool
from tests.infra.logs import capture_logs
from tests.infra.mosquitto import MosquittoBroker
from tests.infra.procs import wait_until
from tests.infra.session_subscriber import SessionSubscriber, assert_in_order_per_camera
from tests.shared_data import REPO as ROOT

PREFIX = "har/test"


def events_topic(camera: str) -> str:
    return f"{PREFIX}/{camera}/events"


def camera_of(seq: int) -> str:
    return "cam-a" if seq % 2 else "cam-b"


def event(camera: str, seq: int, kind: str = "start") -> dict[str, Any]:
    return {"id": f"{camera}-{seq}", "type": kind, "camera": camera, "seq": seq}


@pytest.fixture
def broker(mosquitto_factory: Callable[..., MosquittoBroker]) -> MosquittoBroker:
    return mosquitto_factory(persistence=True)


@pytest.fixture
def subscriber_factory() -> Iterator[Callable[..., SessionSubscriber]]:
    made: list[SessionSubscriber] = []

    def make(broker: MosquittoBroker, client_id: str = "sub-persistent") -> SessionSubscriber:
        sub = SessionSubscriber(broker, f"{PREFIX}/+/events", client_id)
        made.append(sub)
        return sub.start()

    try:
        yield make
    finally:
        for sub in made:
            sub.stop()


class Sender:
    """A publisher + spool + Outbox, wired as the daemon wires them."""

    def __init__(self, broker: MosquittoBroker, spool_path: Path, client_id: str, **kw: Any):
        self.spool = Spool(spool_path)
        self.publisher = MqttClient(
            broker.host,
            broker.port,
            client_id=client_id,
            topic_prefix=PREFIX,
            reconnect_min_delay=0.1,
            reconnect_max_delay=0.5,
            **kw,
        )
        self.spooled = Outbox(self.publisher, self.spool)
        self.spooled.start()
        self.publisher.start()

    def close(self) -> None:
        self.publisher.stop(timeout=1)
        self.spooled.close()
        self.spool.close()


@pytest.fixture
def sender_factory(tmp_path: Path) -> Iterator[Callable[..., Sender]]:
    made: list[Sender] = []

    def make(broker: MosquittoBroker, spool_path: Path | None = None, **kw: Any) -> Sender:
        kw.setdefault("client_id", f"sender-{len(made)}")
        sender = Sender(broker, spool_path or tmp_path / "spool.sqlite3", **kw)
        made.append(sender)
        return sender

    try:
        yield make
    finally:
        for sender in made:
            sender.close()


def test_broker_up_every_event_acknowledged_and_spool_empty(
    broker: MosquittoBroker, subscriber_factory, sender_factory
) -> None:
    sub = subscriber_factory(broker)
    sender = sender_factory(broker)
    assert sender.publisher.wait_connected(5)
    row_ids = []
    for seq in range(1, 101):
        camera = camera_of(seq)
        kind = "update" if seq % 5 == 0 else "event"
        row_ids.append(
            sender.spooled.send(events_topic(camera), event(camera, seq), 1, False, kind, camera)
        )
    assert all(isinstance(r, int) for r in row_ids) and row_ids == sorted(row_ids)
    assert sender.spooled.flush(10)
    assert sender.spool.depth == 0 and sender.spool.bytes == 0
    assert sender.spooled.acknowledged == 100 and sender.spooled.refused == 0
    sub.wait_for_ids({event(camera_of(s), s)["id"] for s in range(1, 101)}, 10)
    seqs = sub.seqs("cam-a") + sub.seqs("cam-b")
    assert sorted(seqs) == list(range(1, 101))  # no duplicates without an outage


def test_broker_outage_every_event_arrives_in_order(
    broker: MosquittoBroker, subscriber_factory, sender_factory
) -> None:
    sub = subscriber_factory(broker)
    connects: list[bool] = []
    sender = sender_factory(broker, on_connected=lambda: connects.append(True))
    assert sender.publisher.wait_connected(5)
    per_camera = 120
    sent_while_down = [0]
    broker_up = threading.Event()
    broker_up.set()
    started = threading.Barrier(3)

    def run(camera: str) -> None:
        started.wait()
        for seq in range(1, per_camera + 1):
            kind = "update" if seq % 4 == 0 else "event"
            sender.spooled.send(events_topic(camera), event(camera, seq), 1, False, kind, camera)
            if not broker_up.is_set():
                sent_while_down[0] += 1
            time.sleep(0.02)

    threads = [threading.Thread(target=run, args=(c,)) for c in ("cam-a", "cam-b")]
    for t in threads:
        t.start()
    started.wait()
    time.sleep(0.5)
    broker_up.clear()
    broker.stop()  # SIGTERM: a restart of the broker, while both cameras keep sending
    wait_until(lambda: not sender.publisher.is_connected, 5, message="publisher never noticed")
    time.sleep(1.5)
    assert sender.spool.depth > 0  # events piled up on disk
    broker.start()
    broker_up.set()
    for t in threads:
        t.join(30)
    assert sent_while_down[0] > 20
    assert sender.spooled.flush(20), sender.spooled.stats()
    assert sender.spool.depth == 0
    assert sender.spooled.replays >= 1
    assert len(connects) >= 2  # the daemon's own on_connected hook still runs on reconnect
    sub.wait_for_ids({f"{c}-{s}" for c in ("cam-a", "cam-b") for s in range(1, per_camera + 1)}, 20)
    assert any(sub.sessions_present)  # the subscription came from the persisted session
    duplicates = assert_in_order_per_camera(sub, {"cam-a": per_camera, "cam-b": per_camera})
    # Duplicates only come from messages in flight when the broker went away: at most paho's
    # in-flight window (20) per outage; the spool never re-sends what paho still holds.
    assert duplicates <= 20


def test_rows_left_by_earlier_run_go_out_before_new_events(
    tmp_path: Path, broker: MosquittoBroker, subscriber_factory, sender_factory
) -> None:
    path = tmp_path / "spool.sqlite3"
    with Spool(path) as spool:  # an earlier run that never reached the broker
        for seq in range(1, 201):
            spool.append(events_topic("cam-a"), json.dumps(event("cam-a", seq)).encode())
    sub = subscriber_factory(broker)
    sender = sender_factory(broker, path)
    # New events right away, while the replay of the 200 old ones is under way: they queue.
    for seq in range(201, 251):
        sender.spooled.send(events_topic("cam-a"), event("cam-a", seq), camera="cam-a")
    assert sender.spooled.flush(15)
    sub.wait_for_ids({f"cam-a-{s}" for s in range(1, 251)}, 10)
    assert sub.seqs("cam-a") == list(range(1, 251))  # in order, no duplicates
    assert sender.spool.depth == 0


_KILLED_SENDER = """
import sys, time
from har_daemon.comms.outbox import Outbox
from har_daemon.comms.payloads import encode_json
from har_daemon.core.logs import configure_logging
from har_daemon.comms.mqtt import MqttClient
from har_daemon.comms.spool import Spool
configure_logging("info")  # stderr; stdout carries only the returned row ids
spool = Spool(sys.argv[1])
publisher = MqttClient("127.0.0.1", int(sys.argv[2]), client_id="victim",
                          topic_prefix="har/test", reconnect_min_delay=0.1,
                          reconnect_max_delay=0.5)
spooled = Outbox(publisher, spool)
spooled.start()
publisher.start()
for seq in range(1, int(sys.argv[3]) + 1):
    camera = "cam-a" if seq % 2 else "cam-b"
    payload = {"id": f"{camera}-{seq}", "type": "start", "camera": camera, "seq": seq}
    row_id = spooled.send(f"har/test/{camera}/events", payload, 1, False, "event", camera)
    print(row_id, flush=True)
time.sleep(120)
"""


def test_sender_sigkilled_while_broker_down_next_process_delivers(
    tmp_path: Path, broker: MosquittoBroker, subscriber_factory, sender_factory
) -> None:
    sub = subscriber_factory(broker)
    broker.stop()
    path = tmp_path / "spool.sqlite3"
    n = 60
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SENDER, str(path), str(broker.port), str(n)],
        stdout=subprocess.PIPE,
        stderr=open(tmp_path / "victim.log", "wb"),  # noqa: SIM115
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True
    ).start()
    try:
        returned = [int(lines.get(timeout=30)) for _ in range(n)]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    with Spool(path) as spool:
        assert [r.id for r in spool.pending(1000)] == returned

    sender = sender_factory(broker, path)  # the next process (here: this one) takes over
    time.sleep(0.3)  # it tries while the broker is still down
    assert not sender.publisher.is_connected
    broker.start()
    assert sender.spooled.flush(15), sender.spooled.stats()
    assert sender.spool.depth == 0
    sub.wait_for_ids({event(camera_of(s), s)["id"] for s in range(1, n + 1)}, 15)
    a = [s for s in range(1, n + 1) if s % 2]
    b = [s for s in range(1, n + 1) if not s % 2]
    assert sub.seqs("cam-a") == a and sub.seqs("cam-b") == b


def test_refused_events_stay_in_the_spool(
    tmp_path: Path, mosquitto_factory: Callable[..., MosquittoBroker], sender_factory
) -> None:
    """A broker that says "Not authorized" (MQTT 5 PUBACK 0x87) has not taken the event."""
    acl = "user pub\ntopic write har/test/status\ntopic write har/test/allowed/events\n"
    broker = mosquitto_factory(users={"pub": "pw"}, acl=acl)
    sender = sender_factory(broker, username="pub", password="pw")
    assert sender.publisher.wait_connected(5)
    allowed = sender.spooled.send(events_topic("allowed"), event("allowed", 1), camera="allowed")
    denied = sender.spooled.send(events_topic("denied"), event("denied", 1), camera="denied")
    assert sender.spooled.flush(10)
    assert (sender.spooled.acknowledged, sender.spooled.refused) == (1, 1)
    assert [r.id for r in sender.spool.pending(10)] == [denied]
    assert allowed != denied


def test_spool_failure_falls_back_to_publishing(
    broker: MosquittoBroker, subscriber_factory, sender_factory
) -> None:
    """A spool that cannot write (here: closed) must not cost the event while the broker is up."""
    sub = subscriber_factory(broker)
    sender = sender_factory(broker)
    assert sender.publisher.wait_connected(5)
    sender.spool.close()
    with capture_logs() as logs:
        assert sender.spooled.send(events_topic("cam-a"), event("cam-a", 1), camera="cam-a") is None
    sub.wait_for_ids({"cam-a-1"}, 10)
    assert sender.spooled.unspooled == 1
    assert [e["log_level"] for e in logs if e["event"] == "spool.append_failed"] == ["error"]


def test_encode_json() -> None:
    assert (
        encode_json({"id": "x", "seq": 1, "name": "é"}) == '{"id":"x","seq":1,"name":"é"}'.encode()
    )
    assert encode_json(b"raw") == b"raw" and encode_json("text") == b"text"
    with pytest.raises(ValueError):
        encode_json({"confidence": float("nan")})
