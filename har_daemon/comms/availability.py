"""Which daemon instances publish under a prefix, which cameras each owns, and which are alive.

MQTT gives a connection exactly one Last Will, so each instance has exactly one availability
topic, and the Will is on it:

- `<prefix>/status` when the instance has the prefix to itself (`[mqtt] shared_prefix = false`,
  the default, as before);
- `<prefix>/instances/<instance>/status` when several instances share the prefix
  (`shared_prefix = true`): two instances never overwrite each other's Will.

Either says "online" (published on every connect), "stopped" (published by a clean stop) or
"offline" (the Will: a crash, a kill, a lost network), as Frigate does. Every instance also
keeps `<prefix>/instances/<instance>/info` retained (`payloads.instance_payload`): its client id,
host, cameras and the availability topic above, so a dashboard finds every instance of a prefix
from one subscription, and a starting instance can see who owns what.

At start-up `check_unique` reads those retained topics for a bounded time (`CHECK_TIMEOUT_S`
at most, about one round trip normally) from a short-lived connection of its own, and refuses to
start (ConfigError, exit 2) when a *live* other instance (its availability says "online")
owns one of our cameras or uses our availability topic. An unreachable broker skips the check
(logged): the daemon must start while the broker is down. Instances starting at the same moment
cannot see each other yet, so the running daemon keeps watching (`InstanceBoard` subscribed on
its own client) and logs `availability.conflict` when a conflict appears later.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from paho.mqtt.client import MQTTMessage

from har_daemon.comms.connection import BrokerSettings, describe_error, new_client
from har_daemon.comms.payloads import instance_payload
from har_daemon.comms.topics import (
    INSTANCES,
    ONLINE,
    MessageCallback,
    Topics,
    check_topic_level,
)
from har_daemon.core.errors import ConfigError
from har_daemon.core.logs import get_logger

log = get_logger(__name__)

CHECK_TIMEOUT_S = 3.0
"""Longest the start-up check may take (connect, subscribe, retained messages)."""


@dataclass(frozen=True)
class InstanceIdentity:
    """This daemon instance as the other instances of its prefix see it."""

    topics: Topics
    instance: str
    client_id: str
    cameras: tuple[str, ...]
    shared: bool
    version: str
    started_at: float
    host: str = field(default_factory=socket.gethostname)

    def __post_init__(self) -> None:
        check_topic_level(self.instance, "instance name")

    @property
    def status_topic(self) -> str:
        """The one availability topic, carrying the Last Will."""
        return self.topics.instance_status(self.instance) if self.shared else self.topics.status

    @property
    def info_topic(self) -> str:
        return self.topics.instance_info(self.instance)

    def info(self) -> dict[str, Any]:
        return instance_payload(
            instance=self.instance,
            client_id=self.client_id,
            host=self.host,
            status_topic=self.status_topic,
            cameras=list(self.cameras),
            version=self.version,
            started_at=self.started_at,
        )


@dataclass(frozen=True)
class Claim:
    """What another instance's retained info says it owns."""

    instance: str
    client_id: str
    host: str
    status_topic: str
    cameras: frozenset[str]

    @classmethod
    def parse(cls, payload: bytes) -> Claim | None:
        """None for an empty (deleted) or malformed payload."""
        try:
            doc = json.loads(payload)
            return cls(
                instance=str(doc["instance"]),
                client_id=str(doc["client_id"]),
                host=str(doc.get("host", "?")),
                status_topic=str(doc["status_topic"]),
                cameras=frozenset(str(c) for c in doc["cameras"]),
            )
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"instance {self.instance!r} (client {self.client_id} on {self.host})"


class InstanceBoard:
    """The retained instance topics of one prefix as they arrive (a subscription callback).

    `on_change` (optional) runs on the MQTT thread after each message; keep it short.
    """

    def __init__(self, topics: Topics, on_change: Callable[[], None] | None = None) -> None:
        self.topics = topics
        self.on_change = on_change
        self._lock = threading.Lock()
        self._claims: dict[str, Claim] = {}  # info topic -> claim
        self._status: dict[str, str] = {}  # availability topic -> payload

    def __call__(self, topic: str, payload: bytes, retained: bool) -> None:
        with self._lock:
            if self.topics.is_instance_info(topic):
                claim = Claim.parse(payload) if payload else None
                if claim is None:
                    self._claims.pop(topic, None)
                else:
                    self._claims[topic] = claim
            else:
                self._status[topic] = payload.decode(errors="replace").strip()
        if self.on_change is not None:
            self.on_change()

    def live_claims(self) -> list[Claim]:
        """Claims whose availability topic says "online" now."""
        with self._lock:
            return [c for c in self._claims.values() if self._status.get(c.status_topic) == ONLINE]

    def conflicts(self, me: InstanceIdentity) -> list[str]:
        """One sentence per live other instance that owns one of our cameras or our
        availability topic; an earlier run of ourselves (same client id) is not another."""
        out = []
        for other in self.live_claims():
            if other.client_id == me.client_id:
                continue
            for camera in sorted(other.cameras & set(me.cameras)):
                out.append(
                    f"camera {camera!r} is already published under prefix "
                    f"{me.topics.prefix!r} by live {other.describe()}"
                )
            if other.status_topic == me.status_topic:
                out.append(
                    f"availability topic {me.status_topic!r} is in use by live "
                    f"{other.describe()}: give each instance sharing prefix "
                    f"{me.topics.prefix!r} its own [mqtt] instance and set "
                    "[mqtt] shared_prefix = true"
                )
        return out


def read_board(
    settings: BrokerSettings, me: InstanceIdentity, timeout: float = CHECK_TIMEOUT_S
) -> InstanceBoard | None:
    """The prefix's retained instance topics, read over a connection of its own within
    `timeout` s; None when the broker could not be reached or refused us (logged).

    A marker message published after the SUBACK comes back after every retained message the
    broker queued for the subscription, so the read normally ends after one round trip.
    """
    board = InstanceBoard(me.topics)
    marker = f"{me.topics.prefix}/{INSTANCES}/{me.instance}/check"
    nonce = uuid.uuid4().hex.encode()
    done = threading.Event()
    refused: list[str] = []
    quick = dataclasses.replace(settings, connect_timeout=timeout)
    client = new_client(quick, f"{me.client_id}-check")

    def on_connect(c, _u, _flags, reason_code, _props) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            refused.append(str(reason_code))
            done.set()
            return
        c.subscribe([(f, 1) for f in [*me.topics.instances_filters, marker]])

    def on_subscribe(c, _u, _mid, reason_codes, _props) -> None:  # type: ignore[no-untyped-def]
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:  # e.g. an ACL (Mosquitto grants and filters per message instead)
            refused.append(f"subscription refused: {failed[0]}")
            done.set()
            return
        c.publish(marker, nonce, qos=1)

    def on_message(_c, _u, message: MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        if message.topic == marker:
            done.set()
        else:
            board(message.topic, bytes(message.payload), bool(message.retain))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    kwargs: dict[str, Any] = {"clean_start": True} if settings.mqtt5 else {}
    deadline = time.monotonic() + timeout
    try:
        client.connect(settings.host, settings.port, settings.keepalive, **kwargs)
    except (OSError, ValueError) as exc:
        log.warning("availability.check_skipped", reason=describe_error(exc))
        return None
    client.loop_start()
    try:
        complete = done.wait(max(0.0, deadline - time.monotonic()))
    finally:
        client.disconnect()
        client.loop_stop()
    if refused:
        log.warning("availability.check_skipped", reason=refused[0])
        return None
    if not complete:
        log.warning("availability.check_incomplete", timeout_s=timeout)
    return board


def check_unique(
    settings: BrokerSettings, me: InstanceIdentity, timeout: float = CHECK_TIMEOUT_S
) -> None:
    """ConfigError (one line, exit 2) naming each camera or availability topic that a live
    other instance already owns under our prefix."""
    board = read_board(settings, me, timeout)
    if board is None:
        return
    problems = board.conflicts(me)
    if problems:
        raise ConfigError("; ".join(problems))
    log.info(
        "availability.checked",
        live_instances=sorted(c.instance for c in board.live_claims()),
        status_topic=me.status_topic,
    )


class InstancePresence:
    """What the running daemon does about its instance: check at start, announce its info on
    every connect, and keep watching for conflicts, logged once each
    (`availability.conflict`): the start-up check cannot see an instance starting at the same
    moment, or one that started while the broker was away."""

    def __init__(self, me: InstanceIdentity) -> None:
        self.me = me
        self.board = InstanceBoard(me.topics, on_change=self._check)
        self._reported: set[str] = set()

    @property
    def status_topic(self) -> str:
        return self.me.status_topic

    def check(self, settings: BrokerSettings, timeout: float = CHECK_TIMEOUT_S) -> None:
        check_unique(settings, self.me, timeout)

    def subscriptions(self) -> list[tuple[str, MessageCallback]]:
        return [(f, self.board) for f in self.me.topics.instances_filters]

    def announce(self, publish: Callable[..., None]) -> None:
        """Publish the retained info; `publish(topic, payload, retain=True)`."""
        publish(self.me.info_topic, self.me.info(), retain=True)

    def _check(self) -> None:
        for problem in self.board.conflicts(self.me):
            if problem not in self._reported:
                self._reported.add(problem)
                log.error("availability.conflict", problem=problem)
