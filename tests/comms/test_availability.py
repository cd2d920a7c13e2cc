"""Instances of one prefix: availability topics, their retained info, the duplicate check, and
what Home Assistant is told; against a real Mosquitto broker (no daemon processes here)."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Callable, Iterator

import jinja2
import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode

from har_daemon.comms.availability import (
    Claim,
    InstanceBoard,
    InstanceIdentity,
    InstancePresence,
    check_unique,
    read_board,
)
from har_daemon.comms.connection import BrokerSettings
from har_daemon.comms.homeassistant import discovery_messages, node_filter
from har_daemon.comms.messenger import Messenger
from har_daemon.comms.mqtt import MqttClient
from har_daemon.core.errors import ConfigError
from tests.comms.availability_helpers import T, me
from tests.infra.logs import capture_logs
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import free_port, wait_until


def _retain(broker: MosquittoBroker, messages: list[tuple[str, str]]) -> None:
    publish.multiple(
        [{"topic": t, "payload": p, "qos": 1, "retain": True} for t, p in messages],
        hostname=broker.host, port=broker.port, protocol=mqtt.MQTTv5,
    )  # fmt: skip


def _claim(other: InstanceIdentity, status: str) -> list[tuple[str, str]]:
    return [(other.info_topic, json.dumps(other.info())), (other.status_topic, status)]


@contextlib.contextmanager
def running(broker: MosquittoBroker, ident: InstanceIdentity) -> Iterator[MqttClient]:
    """A live instance as the daemon wires it: presence announced, pings answered."""
    presence = InstancePresence(ident)
    client = MqttClient(
        broker.host, broker.port, client_id=ident.client_id, topic_prefix="site",
        status_topic=ident.status_topic,
        on_connected=lambda: presence.announce(Messenger(client).publish),
    )  # fmt: skip
    for topic_filter, callback in presence.subscriptions(lambda t, p: client.publish(t, p, 0)):
        client.subscribe(topic_filter, callback)
    client.start()
    try:
        assert client.wait_subscribed(timeout=5)
        with MqttRecorder(broker, ident.info_topic) as rec:
            rec.wait_for(ident.info_topic)
        yield client
    finally:
        client.stop(timeout=2)


def test_topics_and_info_of_an_instance() -> None:
    shared, alone = me(), me(shared=False)
    assert shared.status_topic == "site/instances/a/status"
    assert alone.status_topic == "site/status"  # the prefix's only instance keeps it
    assert shared.info_topic == alone.info_topic == "site/instances/a/info"
    assert shared.info() == {
        "instance": "a", "client_id": "client-a", "host": "host-a",
        "status_topic": "site/instances/a/status", "cameras": ["lobby"], "version": "0.1.0",
        "started_at": "2027-01-15T08:00:00.000Z",
    }  # fmt: skip
    with pytest.raises(ValueError, match="instance name"):
        me(instance="a/b")


def test_check_names_the_camera_of_a_live_instance_only(mosquitto: MosquittoBroker) -> None:
    settings = BrokerSettings(mosquitto.host, mosquitto.port)
    live = me("b", ("lobby", "yard"))
    gone = me("c", ("garage",))
    _retain(mosquitto, _claim(gone, "stopped"))
    with running(mosquitto, live):
        t0 = time.monotonic()
        with pytest.raises(ConfigError) as info:
            check_unique(settings, me("a", ("lobby", "garage")))
        assert time.monotonic() - t0 < 2.0  # the marker and the pong end it: no waiting
        message = str(info.value)
        assert "\n" not in message
        assert "camera 'lobby'" in message and "instance 'b'" in message and "host-b" in message
        assert "garage" not in message  # its owner stopped cleanly

        # One line, one sentence per problem; the daemon's own check says the same.
        ours = me("a", ("yard", "lobby"))
        with pytest.raises(ConfigError) as both:
            InstancePresence(ours).check(settings)
        claim = Claim.parse(json.dumps(live.info()).encode())
        assert claim is not None and str(both.value) == "; ".join(ours.problems(claim))

        check_unique(settings, me("a", ("garage",)))  # no live owner: fine
        check_unique(settings, me("b", ("lobby",)))  # an earlier run of itself (same client id)
    # Two instances that both think they have the prefix to themselves.
    with running(mosquitto, me("x", ("porch",), shared=False)):
        with pytest.raises(ConfigError, match="shared_prefix = true"):
            check_unique(settings, me("y", ("shed",), shared=False))
        check_unique(settings, me("y", ("shed",), shared=True))


@pytest.mark.parametrize("shared", [True, False])
def test_retained_claims_nobody_answers_for_are_advice(
    mosquitto: MosquittoBroker, shared: bool
) -> None:
    """Issue 21 item 3: a forged (or stale) retained claim saying "online", on a camera of
    ours or on our availability topic (`har/status` when not shared), never stops a start."""
    settings = BrokerSettings(mosquitto.host, mosquitto.port)
    squat = me("squat", ("lobby",), shared=shared)
    _retain(mosquitto, _claim(squat, "online"))
    with capture_logs() as logs:
        t0 = time.monotonic()
        check_unique(settings, me("a", ("lobby",), shared=shared))
        assert time.monotonic() - t0 < 6.0  # read + one liveness timeout
    warned = [e for e in logs if e["event"] == "availability.claim_not_live"]
    assert len(warned) == 1 and warned[0]["instance"] == "squat", logs
    problems = " ".join(warned[0]["problems"])
    assert "camera 'lobby'" in problems
    assert ("availability topic 'site/status'" in problems) is (not shared)
    assert warned[0]["action"] == "starting anyway: it did not answer the liveness check"
    [checked] = [e for e in logs if e["event"] == "availability.checked"]
    assert (checked["live_instances"], checked["unanswered_claims"], checked["status_topic"]) == (
        [], ["squat"], me("a", shared=shared).status_topic,
    )  # fmt: skip


def test_check_is_skipped_quickly_when_the_broker_is_down() -> None:
    with capture_logs() as logs:
        t0 = time.monotonic()
        assert read_board(BrokerSettings("127.0.0.1", free_port()), me(), timeout=3) is None
        assert time.monotonic() - t0 < 1.0
    assert [e["event"] for e in logs] == ["availability.check_skipped"]
    assert logs[0]["reason"].startswith("ConnectionRefusedError: "), logs


def test_a_broker_that_never_answers_is_skipped_after_the_timeout() -> None:
    """A port that accepts the connection but never sends a CONNACK (a hung broker, a wrong
    service): the check gives up after its timeout, and the daemon starts."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        settings = BrokerSettings("127.0.0.1", server.getsockname()[1])
        with capture_logs() as logs:
            assert read_board(settings, me(), timeout=0.5) is None
            InstancePresence(me()).check(settings, timeout=0.5)  # the daemon's own check
    reasons = [e["reason"] for e in logs if e["event"] == "availability.check_skipped"]
    assert reasons == ["no CONNACK within 0.5s"] * 2, logs


def test_a_marker_the_broker_drops_ends_the_read_at_its_timeout(
    mosquitto_factory: Callable[..., MosquittoBroker],
) -> None:
    """An ACL that lets the daemon read the instance topics but not write its marker: the read
    ends at its timeout (logged), with the claims it got."""
    broker = mosquitto_factory(
        users={"ro": "pw", "admin": "pw"},
        acl="user ro\ntopic read site/#\nuser admin\ntopic readwrite site/#\n",
    )
    b = me("b", ("lobby",))
    publish.multiple(
        [{"topic": t, "payload": p, "qos": 1, "retain": True} for t, p in _claim(b, "online")],
        hostname=broker.host, port=broker.port, protocol=mqtt.MQTTv5,
        auth={"username": "admin", "password": "pw"},
    )  # fmt: skip
    settings = BrokerSettings(broker.host, broker.port, username="ro", password="pw")
    with capture_logs() as logs:
        board = read_board(settings, me("a", ("lobby",)), timeout=1.0)
    assert board is not None and [c.instance for c in board.live_claims()] == ["b"]
    incomplete = [e for e in logs if e["event"] == "availability.check_incomplete"]
    assert [(e["timeout_s"], e["reason"]) for e in incomplete] == [(1.0, [])], logs


def test_each_instance_has_its_own_will(mosquitto: MosquittoBroker) -> None:
    """Two publishers on one prefix: one stops cleanly ("stopped"), the other's connection
    dies (its Will, "offline"); neither touches the other's topic."""
    a, b = me("a"), me("b", ("yard",))
    clients = {
        x.instance: MqttClient(
            mosquitto.host, mosquitto.port, client_id=x.client_id, topic_prefix="site",
            status_topic=x.status_topic, keepalive=5, reconnect_min_delay=0.1,
            reconnect_max_delay=0.5,
        )
        for x in (a, b)
    }  # fmt: skip
    with MqttRecorder(mosquitto, "site/#") as rec:
        for c in clients.values():
            c.start()
        rec.wait_for(a.status_topic, "online")
        rec.wait_for(b.status_topic, "online")
        assert clients["a"].stop(timeout=3)
        rec.wait_for(a.status_topic, "stopped")
        # DISCONNECT with reason 0x04: the broker publishes b's Will, as for a crash.
        with_will = ReasonCode(PacketTypes.DISCONNECT, "Disconnect with will message")
        clients["b"]._client.disconnect(reasoncode=with_will)
        rec.wait_for(b.status_topic, "offline")
        clients["b"]._client.loop_stop()
        assert rec.payloads("site/status") == []
        assert rec.payloads(a.status_topic) == [b"online", b"stopped"]


def test_board_follows_claims_and_deletions() -> None:
    seen: list[int] = []
    board = InstanceBoard(me("a", ("yard",)), on_change=lambda: seen.append(1))
    b = me("b", ("yard",))
    board(b.info_topic, json.dumps(b.info()).encode(), True)
    assert board.live_claims() == []
    board(b.status_topic, b"online", True)
    assert [c.instance for c in board.live_claims()] == ["b"]
    assert list(board.conflicts()) == ["b"] and "camera 'yard'" in board.conflicts()["b"][0]
    elsewhere = me("c", ("lobby",))  # touches nothing of ours: not kept, no change
    board(elsewhere.info_topic, json.dumps(elsewhere.info()).encode(), True)
    board(b.info_topic, b"", True)  # info deleted
    board(T.instance_info("junk"), b"{not json", True)  # ignored
    assert board.live_claims() == [] and len(seen) == 3


def test_board_is_bounded_and_cheap_under_a_flood() -> None:
    """Issue 21 item 1: claims and availability topics kept are bounded, and a message that
    touches nothing of ours costs no conflict computation."""
    calls: list[int] = []
    board = InstanceBoard(
        me("a", ("yard",)), on_change=lambda: calls.append(1), max_claims=8, max_status=32
    )
    real = me("b", ("yard",))
    board(real.info_topic, json.dumps(real.info()).encode(), True)
    board(real.status_topic, b"online", True)
    for i in range(5000):
        fake = me(f"f{i}", ("yard",) if i % 2 else ("other",))
        board(fake.info_topic, json.dumps(fake.info()).encode(), True)
        board(fake.status_topic, b"online", True)
    assert len(board._claims) == 8 and len(board._status) == 32
    assert "b" in board.conflicts()  # the first, real claim is never pushed out
    assert len(calls) <= 2 + 2 * 8


def test_home_assistant_follows_the_instance_topic_and_maps_stopped() -> None:
    msgs = discovery_messages(
        discovery_prefix="homeassistant", topic_prefix="site", camera="lobby",
        classes=["a", "b"], alert_activities=["a"], model_name="m", version="0.1.0",
        snapshots=False, instance="a",
    )  # fmt: skip
    flt = node_filter("homeassistant", "site", "a")
    assert all(mqtt.topic_matches_sub(flt, t) for t, _ in msgs)
    assert not mqtt.topic_matches_sub(node_filter("homeassistant", "site", "b"), msgs[0][0])
    for _, raw in msgs:
        daemon = json.loads(raw)["availability"][0]
        assert daemon["topic"] == "site/instances/a/status"
        template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
            daemon["value_template"]
        )
        rendered = {v: template.render(value=v) for v in ("online", "stopped", "offline")}
        assert rendered == {"online": "online", "stopped": "offline", "offline": "offline"}
    single = discovery_messages(
        discovery_prefix="homeassistant", topic_prefix="site", camera="lobby",
        classes=["a", "b"], alert_activities=["a"], model_name="m", version="0.1.0",
        snapshots=False,
    )  # fmt: skip
    assert json.loads(single[0][1])["availability"][0]["topic"] == "site/status"


def test_running_board_logs_a_conflict_once(mosquitto: MosquittoBroker) -> None:
    presence = InstancePresence(me("a", ("lobby",)))
    client = MqttClient(
        mosquitto.host, mosquitto.port, client_id="client-a", topic_prefix="site",
        status_topic=presence.status_topic,
    )  # fmt: skip
    for topic_filter, callback in presence.subscriptions(lambda t, p: client.publish(t, p, 0)):
        client.subscribe(topic_filter, callback)
    with capture_logs() as logs:
        client.start()
        try:
            assert client.wait_subscribed(timeout=5)
            _retain(mosquitto, _claim(me("b", ("lobby",)), "online"))
            _retain(mosquitto, _claim(me("b", ("lobby",)), "online"))
            wait_until(
                lambda: any(e["event"] == "availability.conflict" for e in logs), 5,
                message="no conflict logged",
            )  # fmt: skip
            time.sleep(0.3)
        finally:
            client.stop(timeout=2)
    conflicts = [e for e in logs if e["event"] == "availability.conflict"]
    assert len(conflicts) == 1 and "camera 'lobby'" in conflicts[0]["problem"], conflicts


def test_a_refused_login_ends_the_check_at_once(
    mosquitto_factory: Callable[..., MosquittoBroker],
) -> None:
    """A wrong password is an answer, not silence: the check is skipped (logged) as soon as
    the broker says so, not after the whole timeout (20 s here, so a wait cannot pass)."""
    broker = mosquitto_factory(users={"alice": "right"})
    settings = BrokerSettings(broker.host, broker.port, username="alice", password="wrong")
    with capture_logs() as logs:
        t0 = time.monotonic()
        assert read_board(settings, me(), timeout=20) is None
        assert time.monotonic() - t0 < 10.0
    skipped = [e for e in logs if e["event"] == "availability.check_skipped"]
    assert len(skipped) == 1 and "authori" in skipped[0]["reason"].lower(), logs
