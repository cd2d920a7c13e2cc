"""Home Assistant MQTT discovery against a real Mosquitto broker, with plain paho clients."""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from har_daemon.comms.homeassistant import (
    IDLE,
    HaDiscovery,
    discovery_messages,
    node_filter,
    node_id,
    slug,
    stale_topics,
)
from har_daemon.comms.messenger import Messenger
from har_daemon.comms.payloads import activity_payload
from har_daemon.comms.topics import Topics
from har_daemon.dispatch.router import EventRouter, RouterSettings
from har_daemon.runtime.events import ActivityState
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until

DISC = "homeassistant"
PREFIX = "har/test"
CAMERAS = ["front_door", "garage"]
CLASSES = ["Violence", "NonViolence", "fall"]
ALERTS = ["Violence", "fall"]
BUILD: dict[str, Any] = {
    "discovery_prefix": DISC,
    "classes": CLASSES,
    "alert_activities": ALERTS,
    "model_name": "demo-mobilenet",
    "version": "0.1.0",
}
REQUIRED = {
    "sensor": ("state_topic",),
    "binary_sensor": ("state_topic",),
    "switch": ("command_topic", "state_topic"),
    "image": ("image_topic",),
}
CONFIG_TOPIC = re.compile(
    r"^homeassistant/(sensor|binary_sensor|switch|image)/([A-Za-z0-9_-]+)/([A-Za-z0-9_-]+)/config$"
)


class Client:
    """A plain paho 2.x client playing the daemon: publishes retained, dispatches subscriptions."""

    def __init__(self, broker: MosquittoBroker, name: str) -> None:
        self._routes: list[tuple[str, Callable[[str, bytes, bool], None]]] = []
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()
        self.published: list[tuple[str, str, bool]] = []
        self._infos: list[mqtt.MQTTMessageInfo] = []

    def publish(self, topic: str, payload: str, retain: bool) -> None:
        """QoS 1, not waiting: it may run inside a subscription callback on paho's own thread,
        which must keep running to receive the PUBACK (see `flush`)."""
        self.published.append((topic, payload, retain))
        self._infos.append(self.client.publish(topic, payload, qos=1, retain=retain))

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until the broker acknowledged everything published so far."""
        wait_until(lambda: all(i.is_published() for i in list(self._infos)), timeout)

    def subscribe(self, routes: list[tuple[str, Callable[[str, bytes, bool], None]]]) -> None:
        self._routes = routes
        self._subscribed.clear()
        self.client.subscribe([(f, 1) for f, _ in routes])
        assert self._subscribed.wait(5), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        for pattern, callback in self._routes:
            if mqtt.topic_matches_sub(pattern, message.topic):
                callback(message.topic, bytes(message.payload), bool(message.retain))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients(mosquitto: MosquittoBroker) -> Iterator[Callable[[str], Client]]:
    made: list[Client] = []

    def make(name: str) -> Client:
        made.append(Client(mosquitto, name))
        return made[-1]

    try:
        yield make
    finally:
        for c in made:
            c.close()


def retained(
    broker: MosquittoBroker, *pubs: Client, pattern: str = f"{DISC}/#"
) -> dict[str, bytes]:
    """What the broker holds retained under `pattern`, as a fresh subscriber receives it, once
    everything `pubs` published is acknowledged.

    A marker published after the SUBACK arrives after every retained message the broker queued
    for the subscription, so its arrival means the retained set is complete.
    """
    for pub in pubs:
        pub.flush()
    marker = f"test-marker/{uuid.uuid4().hex}"
    with MqttRecorder(broker, pattern, marker) as rec:
        pubs[0].publish(marker, "end", False)
        rec.wait_for(marker, "end", timeout=5)
        return {t: p for t, p, is_retained, _ in rec.messages if is_retained and t != marker}


def make_discovery(publish: Callable[[str, str, bool], None], **over: Any) -> HaDiscovery:
    kw: dict[str, Any] = {
        **BUILD,
        "topic_prefix": PREFIX,
        "cameras": CAMERAS,
        "snapshots": True,
        "publish": publish,
    }
    kw.update(over)
    return HaDiscovery(**kw)


def daemon_topics(prefix: str, camera: str) -> dict[str, str]:
    """The daemon's topic scheme for one camera (what discovery may reference)."""
    t = Topics(prefix)
    return {
        "status": t.status,
        "camera_status": t.camera_status(camera),
        "activity": t.activity(camera),
        "set": f"{t.prefix}/{camera}/set",
        "enabled": f"{t.prefix}/{camera}/enabled",
        "snapshot": f"{t.prefix}/{camera}/snapshot",
    }


# -- template rendering -------------------------------------------------------------------------


class _Obj:
    """Jinja-like attribute access on parsed JSON (missing keys are None, like Undefined)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return _Obj(value) if isinstance(value, dict) else value


class _ToJson:
    def __ror__(self, other: Any) -> str:
        return json.dumps(other)


def tiny_render(template: str, payload: str) -> str:
    """Evaluate `{{ expr }}` for the Jinja subset the templates use (shared with Python:
    conditional expressions, ==, literals, dict literals, attribute access, `| tojson`)."""
    m = re.fullmatch(r"\{\{(.*)\}\}", template, re.S)
    assert m, f"not a single {{{{ expression }}}}: {template!r}"
    env = {"value_json": _Obj(json.loads(payload)), "tojson": _ToJson(), "none": None}
    return str(eval(m.group(1).strip(), {"__builtins__": {}}, env))


def jinja_render_all(jobs: list[tuple[str, str]]) -> list[str]:
    """Render with real Jinja2 (a dev dependency), strict about undefined names like HA."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    return [env.from_string(t).render(value_json=json.loads(p), value=p) for t, p in jobs]


def activity_json(activity: str | None, confidence: float, since: float | None) -> str:
    state = ActivityState(
        activity=activity, confidence=confidence, since=since, alerting=True, occurrence_id=None
    )
    return json.dumps(activity_payload(state, updated_at=1_700_000_100.0))


# -- tests --------------------------------------------------------------------------------------


def test_announce_publishes_valid_retained_configs(mosquitto: MosquittoBroker, clients) -> None:
    daemon = clients("daemon")
    hd = make_discovery(daemon.publish)
    hd.announce()
    got = retained(mosquitto, daemon)
    daemon.published = [m for m in daemon.published if m[0].startswith(DISC)]

    # 2 cameras x (sensor + 2 binary_sensors + switch + image).
    assert len(got) == 10
    assert set(got) == set(hd.config_topics)
    assert all(retain for _, _, retain in daemon.published)
    unique_ids: list[str] = []
    device_ids: dict[str, str] = {}
    components: dict[str, list[str]] = {c: [] for c in REQUIRED}
    for topic, raw in got.items():
        m = CONFIG_TOPIC.match(topic)
        assert m, topic
        component, node, object_id = m.groups()
        assert node == node_id(PREFIX) == "har_test_" + node_id(PREFIX)[-8:]
        config = json.loads(raw)
        assert isinstance(config, dict)
        camera = next(c for c in CAMERAS if object_id.startswith(c + "_"))
        components[component].append(camera)
        scheme = daemon_topics(PREFIX, camera)

        for key in REQUIRED[component]:
            assert config[key] in scheme.values(), (topic, key)
        referenced = [v for k, v in config.items() if k.endswith("_topic")]
        referenced += [a["topic"] for a in config["availability"]]
        assert set(referenced) <= set(scheme.values()), topic

        unique_ids.append(config["unique_id"])
        assert config["unique_id"].startswith(f"har-daemon_{node}_{camera}_")
        device = config["device"]
        assert device["identifiers"] and isinstance(device["identifiers"], list)
        assert device["manufacturer"] == "har-daemon"
        assert device["model"] == "demo-mobilenet"
        assert device["sw_version"] == "0.1.0"
        assert camera in device["name"]
        assert device_ids.setdefault(camera, device["identifiers"][0]) == device["identifiers"][0]
        assert config["origin"] == {"name": "har-daemon", "sw_version": "0.1.0"}
        assert config["availability_mode"] == "all"
        for entry in config["availability"]:
            assert entry["payload_available"] == "online"
            assert entry["payload_not_available"] == "offline"
        avail = [a["topic"] for a in config["availability"]]
        if component == "switch":  # must stay usable while the camera is down / switched off
            assert avail == [scheme["status"]]
        else:
            assert avail == [scheme["status"], scheme["camera_status"]]

        if component == "sensor":
            assert config["state_topic"] == config["json_attributes_topic"] == scheme["activity"]
            assert config["device_class"] == "enum"
            assert config["options"] == [IDLE, *CLASSES]
        elif component == "binary_sensor":
            assert config["state_topic"] == scheme["activity"]
            assert config["device_class"] == "safety"
            assert config["name"] in ALERTS
        elif component == "switch":
            assert config["command_topic"] == scheme["set"]
            assert config["state_topic"] == scheme["enabled"]
            assert json.loads(config["payload_on"]) == {"enabled": True}
            assert json.loads(config["payload_off"]) == {"enabled": False}
            assert config["payload_on"] == '{"enabled":true}'
            assert config["payload_off"] == '{"enabled":false}'
        else:
            assert config["image_topic"] == scheme["snapshot"]
            assert config["content_type"] == "image/jpeg"

    assert len(set(unique_ids)) == len(unique_ids) == 10
    assert len(set(device_ids.values())) == 2
    assert {c: sorted(v) for c, v in components.items()} == {
        "sensor": CAMERAS,
        "binary_sensor": sorted(CAMERAS * 2),
        "switch": CAMERAS,
        "image": CAMERAS,
    }


def _templates(camera: str = "front_door") -> dict[str, dict[str, Any]]:
    msgs = discovery_messages(topic_prefix=PREFIX, camera=camera, snapshots=True, **BUILD)
    return {t.split("/")[3]: json.loads(p) for t, p in msgs}


def test_template_text() -> None:
    cfg = _templates()
    sensor = cfg["front_door_activity"]
    assert sensor["value_template"] == (
        '{{ value_json.activity if value_json.activity else "idle" }}'
    )
    assert sensor["json_attributes_template"] == (
        "{{ {'confidence': value_json.confidence, 'since': value_json.since, "
        "'updated_at': value_json.updated_at} | tojson }}"
    )
    assert cfg["front_door_alert_Violence"]["value_template"] == (
        "{{ 'ON' if value_json.activity == \"Violence\" else 'OFF' }}"
    )
    assert cfg["front_door_detection"]["value_template"] == (
        "{{ 'ON' if value_json.enabled else 'OFF' }}"
    )


def _render_cases() -> list[tuple[str, str, str]]:
    """(template, payload, expected rendering) for sample daemon payloads."""
    cfg = _templates()
    sensor = cfg["front_door_activity"]
    violence = cfg["front_door_alert_Violence"]["value_template"]
    fall = cfg["front_door_alert_fall"]["value_template"]
    switch = cfg["front_door_detection"]["value_template"]
    idle = activity_json(None, 0.0, None)
    fighting = activity_json("Violence", 0.91234, 1_700_000_000.0)
    other = activity_json("NonViolence", 0.7, 1_700_000_050.0)
    return [
        (sensor["value_template"], idle, "idle"),
        (sensor["value_template"], fighting, "Violence"),
        (sensor["value_template"], other, "NonViolence"),
        (
            sensor["json_attributes_template"],
            fighting,
            json.dumps(
                {
                    "confidence": 0.9123,
                    "since": "2023-11-14T22:13:20.000Z",
                    "updated_at": "2023-11-14T22:15:00.000Z",
                }
            ),
        ),
        (
            sensor["json_attributes_template"],
            idle,
            json.dumps(
                {"confidence": 0.0, "since": None, "updated_at": "2023-11-14T22:15:00.000Z"}
            ),
        ),
        (violence, fighting, "ON"),
        (violence, idle, "OFF"),
        (violence, other, "OFF"),
        (fall, fighting, "OFF"),
        (fall, activity_json("fall", 0.8, 1.0), "ON"),
        (switch, '{"enabled": true}', "ON"),
        (switch, '{"enabled": false}', "OFF"),
    ]


def _same(rendered: str, expected: str) -> bool:
    if expected.startswith("{"):
        return json.loads(rendered) == json.loads(expected)
    return rendered == expected


def test_templates_render_with_tiny_evaluator() -> None:
    for template, payload, expected in _render_cases():
        assert _same(tiny_render(template, payload), expected), (template, payload)


def test_templates_render_with_jinja2() -> None:
    cases = _render_cases()
    rendered = jinja_render_all([(t, p) for t, p, _ in cases])
    for (template, payload, expected), out in zip(cases, rendered, strict=True):
        assert _same(out, expected), (template, payload, out)


def test_reannounces_on_home_assistant_birth(mosquitto: MosquittoBroker, clients) -> None:
    daemon, ha = clients("daemon"), clients("ha")
    hd = make_discovery(daemon.publish, reannounce_interval_s=0.5)
    daemon.subscribe(hd.subscriptions())
    hd.announce()
    assert set(retained(mosquitto, ha, daemon)) == set(hd.config_topics)

    # Home Assistant lost them (broker without persistence restarted, say): clear the retained.
    for topic in hd.config_topics:
        ha.publish(topic, "", True)
    assert retained(mosquitto, ha) == {}

    count = len(daemon.published)
    ha.publish(f"{DISC}/status", "offline", False)
    ha.publish(f"{DISC}/status", "online", False)
    wait_until(lambda: hd.reannounce_due() == 1, 5)  # what the daemon's housekeeping calls
    got = retained(mosquitto, ha, daemon)
    assert set(got) == set(hd.config_topics)
    assert got == {t: p.encode() for t, p in hd.messages}
    assert len(daemon.published) == count + len(hd.config_topics)  # "offline" announced nothing


def test_a_flood_of_births_is_one_announcement_per_interval() -> None:
    published: list[tuple[str, str, bool]] = []
    now = [100.0]
    hd = make_discovery(
        lambda t, p, r: published.append((t, p, r)), reannounce_interval_s=5.0, clock=lambda: now[0]
    )
    assert hd.reannounce_due() == 0  # nobody asked
    for _ in range(10_000):
        hd.on_ha_status(hd.birth_topic, b"online", False)
    assert hd.reannounce_due() == 10_000  # the first request is answered at once
    assert len(published) == len(hd.config_topics)
    for _ in range(500):
        hd.on_ha_status(hd.birth_topic, b"online", False)
    now[0] += 4.9
    assert hd.reannounce_due() == 0  # within the interval: folded into the next one
    now[0] += 0.2
    assert hd.reannounce_due() == 500
    assert len(published) == 2 * len(hd.config_topics)
    hd.on_ha_status(hd.birth_topic, b"offline", False)
    now[0] += 60
    assert hd.reannounce_due() == 0


def test_cleanup_deletes_only_stale_configs(mosquitto: MosquittoBroker, clients) -> None:
    daemon, other = clients("daemon"), clients("other")
    # A previous run: a camera since removed, snapshots since turned off, "fall" since alerting.
    previous = make_discovery(daemon.publish, cameras=[*CAMERAS, "old_cam"])
    previous.announce()
    # Another instance (other prefix) on the same broker must be left alone.
    neighbour = make_discovery(other.publish, topic_prefix="har/other", cameras=["old_cam"])
    neighbour.announce()

    hd = make_discovery(daemon.publish, snapshots=False, alert_activities=["Violence"])
    daemon.subscribe(hd.subscriptions())
    wait_until(lambda: hd.seen == set(previous.config_topics), 5, message=lambda: str(hd.seen))
    hd.announce()
    before = len(daemon.published)
    stale = hd.cleanup()
    assert daemon.published[before:] == [(t, "", True) for t in stale]

    expected_stale = sorted(set(previous.config_topics) - set(hd.config_topics))
    assert stale == expected_stale
    assert len(stale) == 5 + 2 + 2  # old_cam's 5 entities, 2 images, 2 "fall" binary_sensors
    kinds = {"old_cam" if "/old_cam_" in t else t.split("/")[1] for t in stale}
    assert kinds == {"old_cam", "image", "binary_sensor"}
    assert all(
        "_alert_fall/" in t for t in stale if "/binary_sensor/" in t and "/old_cam_" not in t
    )
    got = retained(mosquitto, other, daemon)
    assert set(got) == set(hd.config_topics) | set(neighbour.config_topics)
    assert not set(got) & set(stale)
    assert hd.seen == set(hd.config_topics)  # its own announce is not counted as stale
    assert hd.cleanup() == []  # nothing left to delete


def test_two_instances_have_disjoint_topics_and_ids() -> None:
    prefixes = ["har", "site/har", "site_har", "other"]
    topics: list[str] = []
    ids: list[str] = []
    devices: list[str] = []
    for prefix in prefixes:
        msgs = discovery_messages(topic_prefix=prefix, camera="front_door", snapshots=True, **BUILD)
        for topic, payload in msgs:
            config = json.loads(payload)
            topics.append(topic)
            ids.append(config["unique_id"])
            devices.append(config["device"]["identifiers"][0])
            assert mqtt.topic_matches_sub(node_filter(DISC, prefix), topic)
            for p in prefixes:
                if p != prefix:
                    assert not mqtt.topic_matches_sub(node_filter(DISC, p), topic)
    assert len(set(topics)) == len(topics) == 4 * 5
    assert len(set(ids)) == len(ids)
    assert len(set(devices)) == 4


def test_ids_and_names_are_sanitised() -> None:
    assert node_id("har") == "har"
    assert node_id("site/har") != node_id("site_har") == "site_har"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", node_id("site/ha r"))
    assert slug("fall down") != slug("fall_down") == "fall_down"
    msgs = discovery_messages(
        **{**BUILD, "alert_activities": ["fall down"]},
        topic_prefix="a/b",
        camera="cam",
        snapshots=False,
    )
    for topic, _ in msgs:
        assert CONFIG_TOPIC.match(topic), topic
    for bad in ["", "a/b", "a+b", "a#", "a b"]:
        with pytest.raises(ValueError, match="topic level"):
            discovery_messages(topic_prefix="har", camera=bad, snapshots=False, **BUILD)


def test_colliding_names_are_refused() -> None:
    # camera "x_alert" + activity "y" and camera "x" + activity "alert_y" -> same object_id.
    with pytest.raises(ValueError, match="collide"):
        make_discovery(lambda *a: None, cameras=["x", "x_alert"], alert_activities=["y", "alert_y"])


def test_pure_helpers() -> None:
    assert (
        node_filter("homeassistant/", "har/test") == f"homeassistant/+/{node_id(PREFIX)}/+/config"
    )
    assert stale_topics(["a", "b", "c"], ["b", "d"]) == ["a", "c"]
    hd = make_discovery(lambda *a: None)
    # Non-retained, foreign and empty messages are not "held by the broker".
    hd.on_config_seen(f"{DISC}/sensor/{node_id(PREFIX)}/gone_activity/config", b"{}", False)
    hd.on_config_seen(f"{DISC}/sensor/elsewhere/gone_activity/config", b"{}", True)
    assert hd.seen == set()
    hd.on_config_seen(f"{DISC}/sensor/{node_id(PREFIX)}/gone_activity/config", b"{}", True)
    assert hd.seen == {f"{DISC}/sensor/{node_id(PREFIX)}/gone_activity/config"}
    hd.on_config_seen(f"{DISC}/sensor/{node_id(PREFIX)}/gone_activity/config", b"", False)
    assert hd.seen == set()


def test_zone_sensors_per_zone_and_alerting_activity() -> None:
    """A camera with zones gets one binary_sensor per zone and alerting activity; it is ON
    only while that activity is current with its people in that zone (real Jinja2)."""
    msgs = discovery_messages(
        topic_prefix=PREFIX, camera="front_door", snapshots=False, zones=["porch", "drive"], **BUILD
    )
    cfg = {t.split("/")[3]: json.loads(p) for t, p in msgs}
    zone_keys = sorted(k for k in cfg if "_zone_" in k)
    assert zone_keys == [
        f"front_door_zone_{z}_{a}" for z in ("drive", "porch") for a in ("Violence", "fall")
    ]
    porch = cfg["front_door_zone_porch_Violence"]
    assert porch["name"] == "Violence in porch" and porch["state_topic"].endswith("/activity")

    def state(activity: str | None, zones: list[str] | None) -> str:
        payload = json.loads(activity_json(activity, 0.9, 1_700_000_000.0))
        if zones is not None:
            payload["zones"] = zones
        return json.dumps(payload)

    template = porch["value_template"]
    rendered = jinja_render_all(
        [
            (template, state("Violence", ["porch"])),
            (template, state("Violence", ["drive"])),
            (template, state("fall", ["porch"])),
            (template, state(None, [])),
            (template, state("Violence", None)),  # a payload from before zones existed
        ]
    )
    assert rendered == ["ON", "OFF", "OFF", "OFF", "OFF"]
    # Cameras without zones keep exactly their former entities.
    plain = discovery_messages(topic_prefix=PREFIX, camera="garage", snapshots=False, **BUILD)
    assert not [t for t, _ in plain if "_zone_" in t]


def test_a_fall_recogniser_gets_its_zone_sensors_on_its_own_state() -> None:
    """A camera running the fall recogniser gets "fall in <zone>" sensors reading the fall's
    retained state (as the router writes it), not the classifier's (real Jinja2)."""
    msgs = discovery_messages(
        topic_prefix=PREFIX, camera="bedroom", snapshots=False, zones=["bed", "floor"],
        discovery_prefix=DISC, classes=["fight", "noFight"], alert_activities=["fight"],
        model_name="m", version="1", recognisers=["fall"],
    )  # fmt: skip
    cfg = {t.split("/")[3]: json.loads(p) for t, p in msgs}
    floor = cfg["bedroom_zone_floor_fall"]
    assert floor["name"] == "fall in floor"
    assert floor["state_topic"] == Topics(PREFIX).recogniser_activity("bedroom", "fall")
    assert cfg["bedroom_zone_floor_fight"]["state_topic"] == Topics(PREFIX).activity("bedroom")
    router = EventRouter(
        ["bedroom"],
        RouterSettings(model_name="m", classes=["fight", "noFight"], event_qos=1,
                       publish_scores=False, state_interval_s=10.0, queue_size=4),
        topics=Topics(PREFIX), messenger=Messenger(None),
    )  # fmt: skip

    def fall_state(zones: tuple[str, ...]) -> str:
        state = ActivityState("fall" if zones else None, 1.0, 1.0, True, None, "bedroom", zones)
        return json.dumps(router.state_payload(state, 2.0, 0.0))

    template = floor["value_template"]
    jobs = [(template, fall_state(z)) for z in (("floor",), ("bed",), ("bed", "floor"), ())]
    assert jinja_render_all(jobs) == ["ON", "OFF", "ON", "OFF"]
