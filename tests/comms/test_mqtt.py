"""MqttClient against a real Mosquitto broker, with real paho subscribers (no mocks)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from har_daemon.comms.control import ControlHandler
from har_daemon.comms.delivery import Delivery
from har_daemon.comms.mqtt import MqttClient
from har_daemon.comms.topics import Topics
from tests.infra.logs import capture_logs
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until
from tests.shared_data import REPO as ROOT

STATUS = "har/test/status"


@pytest.fixture
def make_publisher() -> Iterator[Callable[..., MqttClient]]:
    """make(broker, **options) -> a started publisher with fast reconnects; stopped at teardown."""
    made: list[MqttClient] = []

    def make(broker: MosquittoBroker, *, port: int | None = None, **options: Any) -> MqttClient:
        options.setdefault("client_id", f"pub-{len(made)}")
        options.setdefault("topic_prefix", "har/test")
        options.setdefault("reconnect_min_delay", 0.1)
        options.setdefault("reconnect_max_delay", 0.5)
        publisher = MqttClient(broker.host, port or broker.port, **options)
        made.append(publisher)
        publisher.start()
        return publisher

    try:
        yield make
    finally:
        for publisher in made:
            publisher.stop(timeout=1)


def test_online_is_retained_on_connect(mosquitto: MosquittoBroker, make_publisher) -> None:
    publisher = make_publisher(mosquitto)
    assert publisher.wait_connected(5)
    assert publisher.status_topic == STATUS
    wait_until(lambda: publisher.pending_count == 0, 5, message="online not acknowledged")
    # A subscriber arriving later gets it from the broker's retained store.
    with MqttRecorder(mosquitto, STATUS) as rec:
        assert rec.wait_for(STATUS, "online", timeout=5)[2] is True


_VICTIM = """
import sys, time
from har_daemon.core.logs import configure_logging
from har_daemon.comms.mqtt import MqttClient
configure_logging("info")  # JSON on stderr
p = MqttClient("127.0.0.1", int(sys.argv[1]), client_id="victim", topic_prefix="har/test",
                  keepalive=30)
p.start()
assert p.wait_connected(10), "no connection"
print("connected", flush=True)
time.sleep(60)
"""


def test_will_says_offline_when_the_process_is_killed(
    mosquitto: MosquittoBroker, tmp_path: Path
) -> None:
    stderr = tmp_path / "victim.log"
    with MqttRecorder(mosquitto, STATUS) as rec, open(stderr, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", _VICTIM, str(mosquitto.port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()  # bounded: the victim gives up after 10 s
            assert line == "connected", stderr.read_text()
            rec.wait_for(STATUS, "online", timeout=5)
            seen = len(rec.messages)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
            # The broker notices the dead socket and publishes the Will at once.
            rec.wait_for(STATUS, "offline", timeout=5, after=seen)
        finally:
            proc.kill()
            proc.wait(5)
            proc.stdout.close()  # type: ignore[union-attr]
    assert '"mqtt.connected"' in stderr.read_text()
    with MqttRecorder(mosquitto, STATUS) as later:
        assert later.wait_for(STATUS, timeout=5)[1:3] == (b"offline", True)


def test_clean_stop_publishes_stopped_and_waits_for_its_ack(
    mosquitto: MosquittoBroker, make_publisher
) -> None:
    """A clean stop says "stopped", told apart from the Will's "offline" (a crash)."""
    publisher = make_publisher(mosquitto)
    assert publisher.wait_connected(5)
    with MqttRecorder(mosquitto, STATUS) as rec:
        rec.wait_for(STATUS, "online", timeout=5)
        assert publisher.stop(timeout=3) is True
        assert not publisher.is_connected
        rec.wait_for(STATUS, "stopped", timeout=5)
    with MqttRecorder(mosquitto, STATUS) as later:
        assert later.wait_for(STATUS, timeout=5)[1:3] == (b"stopped", True)


def test_qos1_publish_is_acknowledged_with_its_mid(
    mosquitto: MosquittoBroker, make_publisher
) -> None:
    delivered: list[Delivery] = []
    publisher = make_publisher(mosquitto, on_delivered=delivered.append)
    assert publisher.wait_connected(5)
    with MqttRecorder(mosquitto, "har/test/#") as rec:
        delivery = publisher.publish_json("cam1/events", {"type": "start", "x": 0.5}, context=42)
        assert delivery.qos == 1 and delivery.topic == "har/test/cam1/events"
        assert delivery.wait(5) and delivery.accepted
        wait_until(lambda: delivery in delivered, 2, message="on_delivered not called")
        assert delivery.context == 42 and delivery.reason_code == 0
        _, payload, retain, qos = rec.wait_for("har/test/cam1/events", timeout=5)
        assert json.loads(payload) == {"type": "start", "x": 0.5} and not retain and qos == 1

        text = publisher.publish_text("cam1/activity", "fight", retain=True, qos=0)
        assert text.wait(5) and text.qos == 0
        rec.wait_for("har/test/cam1/activity", "fight", timeout=5)


def test_many_publishes_each_acknowledged_exactly_once(
    mosquitto: MosquittoBroker, make_publisher
) -> None:
    # PUBACKs race publish() returning; every mid must still map to its own Delivery, once.
    # The hook shares a lock with the publishing thread, as a spool would, without deadlock.
    delivered: list[Any] = []
    threads: set[str] = set()
    lock = threading.Lock()

    def on_delivered(d: Delivery) -> None:
        with lock:
            delivered.append(d.context)
            threads.add(threading.current_thread().name)

    publisher = make_publisher(mosquitto, on_delivered=on_delivered)
    assert publisher.wait_connected(5)
    deliveries = []
    for i in range(300):
        with lock:
            deliveries.append(publisher.publish_json("load", {"i": i}, context=i))
    assert all(d.wait(5) for d in deliveries)
    wait_until(lambda: len(delivered) >= 300, 5, message=f"only {len(delivered)} delivered")
    assert sorted(delivered) == list(range(300))
    assert len({d.mid for d in deliveries}) == 300
    assert publisher.pending_count == 0
    assert threads == {"mqtt-delivered"}


def test_reconnects_after_a_broker_outage(mosquitto: MosquittoBroker, make_publisher) -> None:
    connected = threading.Semaphore(0)
    publisher = make_publisher(mosquitto, on_connected=connected.release)
    assert connected.acquire(timeout=5)

    with capture_logs() as logs:
        mosquitto.stop()
        wait_until(lambda: not publisher.is_connected, 5, message="outage not noticed")
        queued = publisher.publish_json("cam1/state", {"n": 1}, retain=True)  # QoS 1
        lost = publisher.publish_json("cam1/scores", {"n": 2}, qos=0)
        assert queued.rc == 4 and not queued.done  # MQTT_ERR_NO_CONN, held by paho
        assert lost.dropped and not lost.acknowledged

        mosquitto.start()
        assert connected.acquire(timeout=10), "on_connected not fired again"
        assert publisher.is_connected and publisher.connect_count == 2
        assert queued.wait(5) and queued.accepted  # sent after reconnecting
    events = [e["event"] for e in logs]
    assert "mqtt.disconnected" in events and "mqtt.connected" in events

    # The restarted broker (no persistence) learnt "online" and the state again.
    with MqttRecorder(mosquitto, "har/test/#") as rec:
        rec.wait_for(STATUS, "online", timeout=5)
        assert json.loads(rec.wait_for("har/test/cam1/state", timeout=5)[1]) == {"n": 1}


def test_starts_while_the_broker_is_down(tmp_path, make_publisher) -> None:
    broker = MosquittoBroker(tmp_path / "late")
    try:
        with capture_logs() as logs:
            publisher = make_publisher(broker)  # nothing listens yet
            wait_until(
                lambda: any(e["event"] == "mqtt.connect_failed" for e in logs), 5,
                message="failed attempt not logged",
            )  # fmt: skip
            assert not publisher.is_connected
            broker.start()
            assert publisher.wait_connected(5)
        failed = next(e for e in logs if e["event"] == "mqtt.connect_failed")
        assert "Connection refused" in failed["error"]
    finally:
        broker.stop()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_credentials_checked_and_password_never_logged(
    mosquitto_factory, make_publisher, protocol: str
) -> None:
    good, bad = "correct-horse-77", "wrong-battery-99"
    broker = mosquitto_factory(users={"alice": good})
    with capture_logs() as logs:
        ok = make_publisher(broker, username="alice", password=good, protocol=protocol)
        refused = make_publisher(broker, username="alice", password=bad, protocol=protocol)
        assert ok.wait_connected(5)
        wait_until(
            lambda: sum(e["event"] == "mqtt.connect_refused" for e in logs) >= 2, 5,
            message="refusals not logged",
        )  # fmt: skip
        assert not refused.is_connected
        ok.stop()
        refused.stop()
    refusals = [e for e in logs if e["event"] == "mqtt.connect_refused"]
    # Mosquitto 2.0 answers a wrong password with "Not authorized" (3.1.1: code 5, mapped).
    assert {e["reason_code"] for e in refusals} <= {134, 135}
    assert all(e["reason"] and e["username"] == "alice" for e in refusals)
    assert all(e.get("client_id") == refused.client_id for e in refusals)
    text = repr(logs)
    assert good not in text and bad not in text


def test_publish_refused_by_acl_is_reported(mosquitto_factory, make_publisher) -> None:
    broker = mosquitto_factory(
        users={"alice": "pw"}, acl="user alice\ntopic readwrite har/test/#\n"
    )
    publisher = make_publisher(broker, username="alice", password="pw")
    assert publisher.wait_connected(5)
    allowed = publisher.publish_text("x", "1")
    denied = publisher.publish("elsewhere/x", "1")
    assert allowed.wait(5) and allowed.accepted
    assert denied.wait(5) and not denied.accepted
    assert denied.reason == "Not authorized" and denied.reason_code == 135


def test_tls_with_the_generated_ca(mosquitto_factory, make_publisher) -> None:
    broker = mosquitto_factory(tls=True)
    with capture_logs() as logs:
        trusted = make_publisher(broker, port=broker.tls_port, tls_ca_file=str(broker.ca_cert))
        untrusted = make_publisher(broker, port=broker.tls_port, tls=True)  # system CAs only
        assert trusted.wait_connected(5)
        assert trusted.publish_text("tls", "hello").wait(5)
        wait_until(
            lambda: any(e["event"] == "mqtt.connect_failed" for e in logs), 5,
            message="TLS failure not logged",
        )  # fmt: skip
        assert not untrusted.is_connected
    failure = next(e for e in logs if e["event"] == "mqtt.connect_failed")
    assert "CERTIFICATE_VERIFY_FAILED" in failure["error"]


def test_mutual_tls_with_a_client_certificate(mosquitto_factory, make_publisher) -> None:
    broker = mosquitto_factory(tls_require_client_cert=True)
    publisher = make_publisher(
        broker,
        port=broker.tls_port,
        tls_ca_file=str(broker.ca_cert),
        tls_cert_file=str(broker.client_cert),
        tls_key_file=str(broker.client_key),
    )
    assert publisher.wait_connected(5)
    assert publisher.publish_text("mtls", "hello").wait(5)
    no_cert = make_publisher(broker, port=broker.tls_port, tls_ca_file=str(broker.ca_cert))
    assert not no_cert.wait_connected(1)


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="protocol"):
        MqttClient("h", client_id="c", protocol="4")
    with pytest.raises(ValueError, match="password needs a username"):
        MqttClient("h", client_id="c", password="p")
    with pytest.raises(ValueError, match="wildcard"):
        MqttClient("h", client_id="c", status_topic="har/+/status")
    publisher = MqttClient("h", client_id="c", topic_prefix="site/har/")
    assert publisher.topic("/cam/events") == "site/har/cam/events"
    assert publisher.status_topic == "site/har/status"
    own = MqttClient("h", client_id="c", status_topic="har/instances/a/status")
    assert own.status_topic == "har/instances/a/status"
    with pytest.raises(ValueError, match="NaN|JSON"):
        publisher.publish_json("x", {"v": float("nan")})


# -- subscriptions ------------------------------------------------------------------------------


class Inbox:
    """A subscribe callback recording (topic, payload, retained), with waiting."""

    def __init__(self, fail_on: bytes | None = None) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self.threads: set[str] = set()
        self.fail_on = fail_on
        self._cond = threading.Condition()

    def __call__(self, topic: str, payload: bytes, retained: bool) -> None:
        with self._cond:
            self.messages.append((topic, payload, retained))
            self.threads.add(threading.current_thread().name)
            self._cond.notify_all()
        if payload == self.fail_on:
            raise RuntimeError("callback bug")

    def wait_for(self, payload: bytes, timeout: float = 5) -> tuple[str, bytes, bool]:
        with self._cond:
            found = self._cond.wait_for(
                lambda: next((m for m in self.messages if m[1] == payload), None), timeout
            )
        assert found, f"{payload!r} not received; got {self.messages}"
        return found


def _send(broker: MosquittoBroker, topic: str, payload: bytes | str, retain: bool = False) -> None:
    """Publish from a separate, short-lived paho client (QoS 1, acknowledged before returning)."""
    import paho.mqtt.publish

    paho.mqtt.publish.single(
        topic, payload, qos=1, retain=retain, hostname=broker.host, port=broker.port,
        protocol=paho.mqtt.client.MQTTv5,
    )  # fmt: skip


def test_subscribe_delivers_messages_to_the_callback(
    mosquitto: MosquittoBroker, make_publisher
) -> None:
    _send(mosquitto, "har/test/in/old", "kept", retain=True)
    early, late = Inbox(), Inbox()
    publisher = MqttClient(
        mosquitto.host, mosquitto.port, client_id="sub-early", topic_prefix="har/test"
    )
    publisher.subscribe("har/test/in/#", early)  # before start: sent on connect
    publisher.start()
    try:
        assert publisher.wait_subscribed(timeout=5)
        # From the broker's retained store: retained=True.
        assert early.wait_for(b"kept") == ("har/test/in/old", b"kept", True)
        other = make_publisher(mosquitto)
        assert other.wait_connected(5)
        other.subscribe("har/test/in/+/x", late, qos=0)  # while connected: sent at once
        assert other.wait_subscribed("har/test/in/+/x", timeout=5)
        assert other.subscriptions == {"har/test/in/+/x": 0}

        _send(mosquitto, "har/test/in/a/x", b"\x00\xffbinary", retain=True)
        _send(mosquitto, "har/test/in/b/y", "not for late")
        # Live messages say retained=False even when published with retain.
        assert early.wait_for(b"\x00\xffbinary") == ("har/test/in/a/x", b"\x00\xffbinary", False)
        assert late.wait_for(b"\x00\xffbinary")[2] is False
        early.wait_for(b"not for late")
        assert [m[1] for m in late.messages] == [b"\x00\xffbinary"]
        assert early.threads == {"paho-mqtt-client-sub-early"}

        other.unsubscribe("har/test/in/+/x")
        assert other.subscriptions == {}
        _send(mosquitto, "har/test/in/c/x", "after unsubscribe")
        early.wait_for(b"after unsubscribe")
        assert len(late.messages) == 1
    finally:
        publisher.stop(timeout=1)


def test_subscribe_rejects_bad_filters() -> None:
    publisher = MqttClient("h", client_id="c")
    for bad in ("", "a/#/b", "a/b#", "a/+b/c", "a\0b"):
        with pytest.raises(ValueError):
            publisher.subscribe(bad, Inbox())
    with pytest.raises(ValueError, match="qos"):
        publisher.subscribe("a/b", Inbox(), qos=3)
    assert publisher.subscriptions == {}


def test_a_failing_callback_does_not_stop_delivery(
    mosquitto: MosquittoBroker, make_publisher
) -> None:
    inbox, bystander = Inbox(fail_on=b"boom"), Inbox()
    publisher = make_publisher(mosquitto)
    publisher.subscribe("har/test/cmd", inbox)
    publisher.subscribe("har/test/+", bystander)  # overlapping: both see each message
    assert publisher.wait_subscribed(timeout=5)
    with capture_logs() as logs:
        for _ in range(10):
            _send(mosquitto, "har/test/cmd", "boom")
        _send(mosquitto, "har/test/cmd", "after")
        inbox.wait_for(b"after")
        bystander.wait_for(b"after")
    assert inbox.messages.count(("har/test/cmd", b"boom", False)) >= 10  # overlaps: twice
    failed = [e for e in logs if e["event"] == "mqtt.callback_failed"]
    assert len(failed) == 3, "whoever publishes there must not flood the log"
    assert failed[0]["topic"] == "har/test/cmd"
    assert failed[0]["topic_filter"] == "har/test/cmd"
    # Same connection all along: the exception did not kill paho's thread or the socket.
    assert publisher.is_connected and publisher.connect_count == 1
    assert not any(e["event"] == "mqtt.disconnected" for e in logs)
    assert publisher.publish_text("still", "ok").wait(5)


def test_subscriptions_come_back_after_a_broker_restart_without_persistence(
    mosquitto: MosquittoBroker, make_publisher
) -> None:
    assert not mosquitto.persistence
    inbox = Inbox()
    publisher = make_publisher(mosquitto)
    publisher.subscribe("har/test/cmd/#", inbox)
    assert publisher.wait_subscribed(timeout=5)
    _send(mosquitto, "har/test/cmd/a", "before")
    inbox.wait_for(b"before")

    mosquitto.stop()  # forgets every session and subscription
    wait_until(lambda: not publisher.is_connected, 5, message="outage not noticed")
    assert not publisher.wait_subscribed(timeout=0.1)
    mosquitto.start()  # same port
    wait_until(lambda: publisher.connect_count == 2, 10, message="no reconnect")
    assert publisher.wait_subscribed(timeout=5)
    _send(mosquitto, "har/test/cmd/b", "after")
    assert inbox.wait_for(b"after") == ("har/test/cmd/b", b"after", False)
    # The broker saw a second SUBSCRIBE from this client, after its restart.
    assert mosquitto.log_text().count(f"Received SUBSCRIBE from {publisher.client_id}") >= 2


def test_control_handler_through_the_publisher(mosquitto: MosquittoBroker, make_publisher) -> None:
    applied: list[tuple[str, bool]] = []
    handler = ControlHandler(
        Topics("har/test"), ["lobby", "yard"], lambda cam, on: applied.append((cam, on))
    )
    publisher = make_publisher(mosquitto)
    for topic_filter in handler.subscriptions():
        publisher.subscribe(topic_filter, handler)
    assert publisher.wait_subscribed(timeout=5)

    with capture_logs() as logs:
        _send(mosquitto, "har/test/lobby/set", '{"enabled": false}')
        wait_until(lambda: applied == [("lobby", False)], 5, message=f"got {applied}")
        _send(mosquitto, "har/test/yard/set", "yes")
        _send(mosquitto, "har/test/garage/set", '{"enabled": false}')
        # A retained all-cameras command applies once, live...
        _send(mosquitto, "har/test/set", '{"enabled": true}', retain=True)
        wait_until(lambda: len(applied) == 3, 5, message=f"got {applied}")
        # ...but not again when the broker replays it on (re)subscription.
        publisher.unsubscribe("har/test/set")
        publisher.subscribe("har/test/set", handler)
        wait_until(
            lambda: any(e["event"] == "control.retained_ignored" for e in logs), 5,
            message="retained command not seen",
        )  # fmt: skip
    assert applied == [("lobby", False), ("lobby", True), ("yard", True)]
    rejected = [(e["topic"], e["reason"]) for e in logs if e["event"] == "control.rejected"]
    assert rejected == [
        ("har/test/yard/set", "not JSON (Expecting value at char 0)"),
        ("har/test/garage/set", "unknown camera"),
    ]
    assert publisher.is_connected and publisher.connect_count == 1


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_oversize_messages_never_reach_a_callback(
    mosquitto: MosquittoBroker, make_publisher, protocol: str
) -> None:
    """Issue 21 item 4: MQTT 5 tells the broker our Maximum Packet Size (it drops the message,
    retained or live, before sending it: nothing to log); 3.1.1 cannot, so the client drops it
    unread with a throttled `mqtt.oversize` line (3 a minute at most)."""
    import paho.mqtt.client as mqtt
    import paho.mqtt.publish as publish

    got: list[tuple[str, int]] = []
    with capture_logs() as logs:
        publisher = make_publisher(mosquitto, protocol=protocol, max_packet_size=4096)
        publisher.subscribe("in/#", lambda t, p, _r: got.append((t, len(p))))
        assert publisher.wait_subscribed(timeout=5)
        big = [{"topic": "in/big", "payload": b"x" * 100_000, "qos": 1}] * 6
        publish.multiple(
            [*big, {"topic": "in/small", "payload": b"ok", "qos": 1}],
            hostname=mosquitto.host, port=mosquitto.port, protocol=mqtt.MQTTv5,
        )  # fmt: skip
        wait_until(lambda: got, 5, message="the small message never came")
    assert got == [("in/small", 2)]
    oversize = [e for e in logs if e["event"] == "mqtt.oversize"]
    assert len(oversize) == (0 if protocol == "5" else 3), oversize
    assert all(e["bytes"] == 100_000 for e in oversize)
