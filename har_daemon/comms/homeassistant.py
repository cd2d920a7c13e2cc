"""Home Assistant MQTT discovery: each camera becomes an HA device with ready-made entities.

Per camera (one HA device):
- `sensor` "Activity": the current activity from the retained `<prefix>/<camera>/activity`
  JSON, "idle" when it is null; attributes confidence, since, updated_at.
- `binary_sensor` per alerting activity: ON while `activity` equals it (device_class safety);
  one more per other recogniser of the camera (a fall's), ON while its own retained
  `<prefix>/<camera>/activity/<activity>` says so: one sensor per camera and activity.
- `binary_sensor` per zone and alerting activity (cameras with zones), the other recognisers'
  included: ON while `activity` equals it and the activity JSON's `zones` holds the zone (a
  fall's: its own retained state, whose `zones` are where the people down lie).
- `switch` "Detection": commands `<prefix>/<camera>/set` ({"enabled":true|false}), state from
  the retained `<prefix>/<camera>/enabled` JSON.
- `image` "Snapshot" (only with snapshots on): the retained JPEG on `<prefix>/<camera>/snapshot`.

Config topics are `<discovery_prefix>/<component>/<node_id>/<object_id>/config`; node_id comes
from the topic prefix, so every config topic an instance could ever publish matches
`node_filter(...)`. That is how entities that disappear (a removed camera, an activity no longer
alerting, snapshots turned off) are deleted: subscribe to the filter, collect the retained
configs the broker holds, and publish an empty retained payload to those no longer produced.

unique_ids and device identifiers also derive from the topic prefix: two daemons with different
prefixes on one broker never collide in HA. Instances sharing a prefix (`instance` given) add
their instance name to the node_id, so each one's clean-up only ever touches its own configs.
Availability needs BOTH the daemon's availability topic (`<prefix>/status`, or the instance's
`<prefix>/instances/<instance>/status`; "stopped" and "offline" both mean unavailable, mapped by
a value_template) and the camera's `<prefix>/<camera>/status` to be "online"
(availability_mode "all"), except for the Detection switch, which follows the daemon only: it
must stay usable while the camera is down or switched off, or it could never be turned back on.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from paho.mqtt.client import topic_matches_sub

from har_daemon import __version__
from har_daemon.comms.payloads import enabled_payload, encode_json
from har_daemon.comms.topics import (
    OFFLINE,
    ONLINE,
    MessageCallback,
    Topics,
    check_topic_level,
)
from har_daemon.config import DaemonConfig
from har_daemon.core.errors import ConfigError
from har_daemon.model.meta import ModelMeta

MANUFACTURER = "har-daemon"
ORIGIN_NAME = "har-daemon"
IDLE = "idle"
"""Sensor state shown when no activity is current (the activity JSON's null)."""

COMPONENTS = ("sensor", "binary_sensor", "switch", "image")
BINARY_SENSOR_DEVICE_CLASS = "safety"

_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]+")

Publish = Callable[[str, str, bool], None]


def slug(name: str) -> str:
    """`name` as a discovery-topic/unique_id component ([A-Za-z0-9_-]).

    Names that are already safe are kept; others get their unsafe runs replaced by "_" plus a
    short hash of the original, so "site/har" and "site_har" stay distinct.
    """
    if _SAFE.match(name):
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    cleaned = _UNSAFE_CHARS.sub("_", name).strip("_")
    return f"{cleaned}_{digest}" if cleaned else digest


def node_id(topic_prefix: str, instance: str | None = None) -> str:
    """The discovery node_id of the instance publishing under `topic_prefix` (and named
    `instance` when several share the prefix)."""
    prefix = topic_prefix.strip("/")
    return slug(prefix if instance is None else f"{prefix}_{instance}")


def daemon_availability_template() -> str:
    """Maps the daemon's three availability values onto HA's two ("stopped" is unavailable)."""
    on, off = _jinja_str(ONLINE), _jinja_str(OFFLINE)
    return f"{{{{ {on} if value == {on} else {off} }}}}"


def _jinja_str(text: str) -> str:
    """A Jinja string literal for `text` (JSON's escaping is valid Jinja)."""
    return json.dumps(text)


def sensor_value_template() -> str:
    return "{{ value_json.activity if value_json.activity else " + _jinja_str(IDLE) + " }}"


def sensor_attributes_template() -> str:
    return (
        "{{ {'confidence': value_json.confidence, 'since': value_json.since, "
        "'updated_at': value_json.updated_at} | tojson }}"
    )


def binary_sensor_value_template(activity: str) -> str:
    return "{{ 'ON' if value_json.activity == " + _jinja_str(activity) + " else 'OFF' }}"


def zone_sensor_value_template(activity: str, zone: str) -> str:
    return (
        "{{ 'ON' if value_json.activity == "
        + _jinja_str(activity)
        + " and "
        + _jinja_str(zone)
        + " in (value_json.get('zones') or []) else 'OFF' }}"
    )


def switch_value_template() -> str:
    return "{{ 'ON' if value_json.enabled else 'OFF' }}"


def discovery_messages(
    *,
    discovery_prefix: str,
    topic_prefix: str,
    camera: str,
    classes: list[str],
    alert_activities: list[str],
    model_name: str,
    version: str,
    snapshots: bool,
    instance: str | None = None,
    recognisers: Sequence[str] = (),
    zones: Sequence[str] = (),
) -> list[tuple[str, str]]:
    """(config topic, JSON payload) for every HA entity of one camera; pure.

    `alert_activities` are the classes that get a binary_sensor: pass the effective list
    (`DecisionPolicy.alerting`), since the config's empty list means "all". `instance`: the
    instance's name when several share the prefix (its own availability topic and node_id).
    `recognisers`: the activities of the camera's other recognisers (["fall"]).
    `zones`: the camera's zone names; each gets a binary_sensor per alerting activity and per
    other recogniser's activity, on that activity's state topic.
    """
    check_topic_level(camera)
    disc = discovery_prefix.strip("/")
    topics = Topics(topic_prefix)
    node = node_id(topic_prefix, instance)
    daemon_status = topics.status if instance is None else topics.instance_status(instance)
    cam = slug(camera)
    base_id = f"har-daemon_{node}_{cam}"
    activity_topic = topics.activity(camera)

    def availability(*status_topics: str) -> dict[str, Any]:
        entries = []
        for t in status_topics:
            entry = {"topic": t, "payload_available": ONLINE, "payload_not_available": OFFLINE}
            if t == daemon_status:
                entry["value_template"] = daemon_availability_template()
            entries.append(entry)
        return {"availability": entries, "availability_mode": "all"}

    both = availability(daemon_status, topics.camera_status(camera))
    plain = node_id(topic_prefix) == "har"
    common: dict[str, Any] = {
        "device": {
            "identifiers": [base_id],
            "name": f"HAR {camera}" if plain else f"HAR {topic_prefix.strip('/')} {camera}",
            "manufacturer": MANUFACTURER,
            "model": model_name,
            "sw_version": version,
        },
        "origin": {"name": ORIGIN_NAME, "sw_version": version},
    }

    entities: list[tuple[str, str, dict[str, Any]]] = []  # component, entity key, config
    entities.append(
        (
            "sensor",
            "activity",
            {
                "name": "Activity",
                "icon": "mdi:motion-sensor",
                "state_topic": activity_topic,
                "value_template": sensor_value_template(),
                "json_attributes_topic": activity_topic,
                "json_attributes_template": sensor_attributes_template(),
                "device_class": "enum",
                "options": list(dict.fromkeys([IDLE, *classes])),
                "qos": 1,
                **both,
            },
        )
    )
    sensors = [(a, activity_topic) for a in dict.fromkeys(alert_activities)]
    sensors += [(a, topics.recogniser_activity(camera, a)) for a in dict.fromkeys(recognisers)]
    for activity, state_topic in sensors:
        entities.append(
            (
                "binary_sensor",
                f"alert_{slug(activity)}",
                {
                    "name": activity,
                    "state_topic": state_topic,
                    "value_template": binary_sensor_value_template(activity),
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    "device_class": BINARY_SENSOR_DEVICE_CLASS,
                    "qos": 1,
                    **both,
                },
            )
        )
    for zone in zones:
        for activity, state_topic in sensors:
            entities.append(
                (
                    "binary_sensor",
                    f"zone_{slug(zone)}_{slug(activity)}",
                    {
                        "name": f"{activity} in {zone}",
                        "state_topic": state_topic,
                        "value_template": zone_sensor_value_template(activity, zone),
                        "payload_on": "ON",
                        "payload_off": "OFF",
                        "device_class": BINARY_SENSOR_DEVICE_CLASS,
                        "qos": 1,
                        **both,
                    },
                )
            )
    entities.append(
        (
            "switch",
            "detection",
            {
                "name": "Detection",
                "icon": "mdi:cctv",
                "command_topic": topics.set(camera),
                "payload_on": encode_json(enabled_payload(True)).decode(),
                "payload_off": encode_json(enabled_payload(False)).decode(),
                "state_topic": topics.enabled(camera),
                "value_template": switch_value_template(),
                "state_on": "ON",
                "state_off": "OFF",
                "retain": False,
                "qos": 1,
                # The daemon only: usable while the camera is down or switched off.
                **availability(daemon_status),
            },
        )
    )
    if snapshots:
        entities.append(
            (
                "image",
                "snapshot",
                {
                    "name": "Snapshot",
                    "image_topic": topics.snapshot(camera),
                    "content_type": "image/jpeg",
                    **both,
                },
            )
        )

    out = []
    for component, key, config in entities:
        object_id = f"{cam}_{key}"
        payload = {"unique_id": f"{base_id}_{key}", **config, **common}
        topic = f"{disc}/{component}/{node}/{object_id}/config"
        out.append((topic, encode_json(payload).decode()))
    return out


def node_filter(discovery_prefix: str, topic_prefix: str, instance: str | None = None) -> str:
    """Subscription filter matching every config topic this instance could ever publish."""
    return f"{discovery_prefix.strip('/')}/+/{node_id(topic_prefix, instance)}/+/config"


def stale_topics(seen: Iterable[str], current: Iterable[str]) -> list[str]:
    """Config topics found on the broker that are no longer produced (to delete), sorted."""
    return sorted(set(seen) - set(current))


class HaDiscovery:
    """Announces every camera's entities and deletes the ones no longer produced.

    Driven by the daemon: subscribe to `subscriptions()` (callbacks take topic, payload bytes,
    retained flag; they may run on paho's thread), call `announce()` after every (re)connect,
    then `cleanup()` once the retained configs have had time to arrive (a second or so), and
    `reannounce_due()` every fraction of a second: HA's "online" only asks for an announcement,
    made at most once per `reannounce_interval_s` (a flood of "online" costs one counter).
    """

    def __init__(
        self,
        *,
        discovery_prefix: str,
        topic_prefix: str,
        cameras: Iterable[str],
        classes: list[str],
        alert_activities: list[str],
        model_name: str,
        version: str,
        snapshots: bool,
        publish: Publish,
        instance: str | None = None,
        reannounce_interval_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        zones: Mapping[str, Sequence[str]] | None = None,
        recognisers: Mapping[str, Sequence[str]] | None = None,
        classified: Iterable[str] | None = None,
    ) -> None:
        """`zones`: camera -> its zone names (cameras with zones get their zone sensors);
        `recognisers`: each camera's other recognisers' activities; `classified`: the cameras
        that run the classifier (None: all), the others get no classifier alerts."""
        self.reannounce_interval_s = reannounce_interval_s
        self._clock = clock
        self._requests = 0  # HA's "online" messages not answered yet
        self._next_announce = float("-inf")
        self.discovery_prefix = discovery_prefix.strip("/")
        self.topic_prefix = topic_prefix
        self.instance = instance
        self.cameras = [check_topic_level(c) for c in cameras]
        self._publish = publish
        self._messages: list[tuple[str, str]] = []
        classifying = set(self.cameras if classified is None else classified)
        for camera in self.cameras:
            self._messages += discovery_messages(
                discovery_prefix=discovery_prefix,
                topic_prefix=topic_prefix,
                camera=camera,
                classes=classes,
                alert_activities=alert_activities if camera in classifying else [],
                recognisers=(recognisers or {}).get(camera, ()),
                model_name=model_name,
                version=version,
                snapshots=snapshots,
                instance=instance,
                zones=(zones or {}).get(camera, ()),
            )
        self._check_unique()
        self._lock = threading.Lock()
        self._seen: set[str] = set()

    def _check_unique(self) -> None:
        """Pathological camera/activity names could map onto one topic or unique_id."""
        topics = [t for t, _ in self._messages]
        ids = [json.loads(p)["unique_id"] for _, p in self._messages]
        for what, values in (("config topic", topics), ("unique_id", ids)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"camera/activity names collide on {what} {dupes[0]!r}")

    @property
    def messages(self) -> list[tuple[str, str]]:
        """Every (config topic, payload) announced."""
        return list(self._messages)

    @property
    def config_topics(self) -> list[str]:
        return [t for t, _ in self._messages]

    @property
    def birth_topic(self) -> str:
        """Where Home Assistant publishes "online" when it (re)starts."""
        return f"{self.discovery_prefix}/status"

    @property
    def node_filter(self) -> str:
        return node_filter(self.discovery_prefix, self.topic_prefix, self.instance)

    def subscriptions(self) -> list[tuple[str, MessageCallback]]:
        return [(self.birth_topic, self.on_ha_status), (self.node_filter, self.on_config_seen)]

    def announce(self) -> None:
        """Publish every config, retained (HA also finds them after its own restart)."""
        with self._lock:
            self._next_announce = self._clock() + self.reannounce_interval_s
        for topic, payload in self._messages:
            self._publish(topic, payload, True)

    def on_ha_status(self, topic: str, payload: bytes, retained: bool) -> None:
        """HA's birth message: ask for an announcement, so a HA that lost its state gets
        everything (`reannounce_due` makes it)."""
        if topic == self.birth_topic and payload.strip() == ONLINE.encode():
            with self._lock:
                self._requests += 1

    def reannounce_due(self) -> int:
        """Announce if HA asked since the last announcement and the interval has passed;
        returns how many of HA's requests it answered (0: none made)."""
        with self._lock:
            if not self._requests or self._clock() < self._next_announce:
                return 0
            requests, self._requests = self._requests, 0
        self.announce()
        return requests

    def on_config_seen(self, topic: str, payload: bytes, retained: bool) -> None:
        """Track which of this node's configs the broker holds (retained, non-empty)."""
        if not topic_matches_sub(self.node_filter, topic):
            return
        with self._lock:
            if not payload:
                self._seen.discard(topic)  # deleted (by us or someone else)
            elif retained:
                self._seen.add(topic)

    @property
    def seen(self) -> set[str]:
        with self._lock:
            return set(self._seen)

    def cleanup(self) -> list[str]:
        """Delete (empty retained payload) seen configs no longer produced; returns them."""
        with self._lock:
            stale = stale_topics(self._seen, self.config_topics)
            self._seen.difference_update(stale)
        for topic in stale:
            self._publish(topic, "", True)
        return stale


def discovery_for(
    config: DaemonConfig,
    meta: ModelMeta,
    cameras: list[str],
    alert_activities: list[str],
    publish: Publish,
) -> HaDiscovery:
    """The daemon's discovery from its configuration; a name that cannot be announced is a
    configuration error (one line, exit 2)."""
    configs = {cam.name: cam for cam in config.cameras}
    recognisers = {name: configs[name].recogniser_activities for name in cameras if name in configs}
    classified = [n for n in cameras if n not in configs or configs[n].classifies]
    try:
        return HaDiscovery(
            discovery_prefix=config.homeassistant.discovery_prefix,
            topic_prefix=config.mqtt.topic_prefix,
            cameras=cameras,
            classes=meta.classes,
            alert_activities=alert_activities,
            model_name=meta.name,
            version=__version__,
            snapshots=config.snapshots.enabled,
            publish=publish,
            instance=config.mqtt.instance if config.mqtt.shared_prefix else None,
            reannounce_interval_s=config.homeassistant.reannounce_interval_s,
            recognisers=recognisers,
            classified=classified,
            zones={cam.name: [z.name for z in cam.zones] for cam in config.cameras},
        )
    except ValueError as exc:
        raise ConfigError(f"homeassistant: {exc}") from None
