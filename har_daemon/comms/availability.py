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

Whoever can publish under the prefix can write those retained topics, so a claim is advice, not
a veto. At start-up `check_unique` reads them for a bounded time (`CHECK_TIMEOUT_S` at most,
about one round trip normally) from a short-lived connection of its own; a claim that says
"online" and owns one of our cameras or our availability topic is then put to a liveness check:
a nonce on `<prefix>/instances/<other>/ping`, which a running instance echoes on `.../pong`
(`PingResponder`, rate-limited). Only an instance that answers within `PING_TIMEOUT_S` stops
the start (ConfigError, exit 2); a claim nobody answers for (retained messages of a dead
instance, or forged ones) is logged and the daemon starts. An unreachable broker skips the check
(logged): the daemon must start while the broker is down.

Instances starting at the same moment cannot see each other yet, so the running daemon keeps
watching (`InstanceBoard` subscribed on its own client): a conflict is logged
(`availability.conflict`, throttled) and published, retained, as the instance's conflict state
(`<prefix>/instances/<instance>/conflicts`, `{"conflicts": [...]}`; deleted when none). Nothing a
message triggers here is more than a bounded amount of work on paho's network thread: the board
keeps only claims that touch our cameras or our availability topic (at most `MAX_CLAIMS`) and at
most `MAX_STATUS` availability topics, so a flood of instance topics costs O(1) per message.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
import uuid
from collections import OrderedDict
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
from har_daemon.core.logs import LogThrottle, get_logger

log = get_logger(__name__)

CHECK_TIMEOUT_S = 3.0
"""Longest the start-up read of the claims may take (connect, subscribe, retained messages)."""
PING_TIMEOUT_S = 2.0
"""Longest a claiming instance may take to answer the liveness check (a round trip normally)."""
MAX_CLAIMS = 64
"""Claims touching our cameras or availability topic kept at once; more are dropped (logged)."""
MAX_STATUS = 1024
"""Availability topics remembered at once (the oldest unclaimed one is forgotten first)."""
MAX_NONCE = 64
"""Longest ping payload answered; a longer one is ignored."""


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

    def touched_by(self, claim: Claim) -> bool:
        """Whether another instance's claim names one of our cameras or our availability topic;
        an earlier run of ourselves (same client id) is not another."""
        return claim.client_id != self.client_id and (
            claim.status_topic == self.status_topic or not claim.cameras.isdisjoint(self.cameras)
        )

    def problems(self, other: Claim) -> list[str]:
        """One sentence per camera or availability topic of ours that `other` claims."""
        out = [
            f"camera {camera!r} is already published under prefix {self.topics.prefix!r} "
            f"by live {other.describe()}"
            for camera in sorted(other.cameras & set(self.cameras))
        ]
        if other.status_topic == self.status_topic:
            out.append(
                f"availability topic {self.status_topic!r} is in use by live "
                f"{other.describe()}: give each instance sharing prefix {self.topics.prefix!r} "
                "its own [mqtt] instance and set [mqtt] shared_prefix = true"
            )
        return out

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
    """The retained instance topics of one prefix as seen by `me` (a subscription callback).

    Bounded: keeps only the claims that touch `me` (`MAX_CLAIMS` at most) and `MAX_STATUS`
    availability topics. `on_change` (optional) runs on the MQTT thread after a message that
    changed a kept claim or its availability, and only then; keep it short.
    """

    def __init__(
        self,
        me: InstanceIdentity,
        on_change: Callable[[], None] | None = None,
        *,
        max_claims: int = MAX_CLAIMS,
        max_status: int = MAX_STATUS,
    ) -> None:
        self.me = me
        self.on_change = on_change
        self.max_claims = max_claims
        self.max_status = max_status
        self._lock = threading.Lock()
        self._claims: dict[str, Claim] = {}  # info topic -> claim touching `me`
        self._status: OrderedDict[str, str] = OrderedDict()  # availability topic -> payload
        self._throttle = LogThrottle(60.0)

    def __call__(self, topic: str, payload: bytes, retained: bool) -> None:
        if self.me.topics.is_instance_info(topic):
            changed = self._claim(topic, Claim.parse(payload) if payload else None)
        else:
            changed = self._availability(topic, payload)
        if changed and self.on_change is not None:
            self.on_change()

    def _claim(self, topic: str, claim: Claim | None) -> bool:
        with self._lock:
            if claim is None or not self.me.touched_by(claim):
                return self._claims.pop(topic, None) is not None
            if topic in self._claims or len(self._claims) < self.max_claims:
                self._claims[topic] = claim
                return True
        if (held := self._throttle.allow("full")) is not None:
            log.warning("availability.too_many_claims", kept=self.max_claims, suppressed=held)
        return False

    def _availability(self, topic: str, payload: bytes) -> bool:
        # Availability values are one short word; anything longer is none of them.
        value = payload.decode(errors="replace").strip() if len(payload) <= 16 else "?"
        with self._lock:
            self._status[topic] = value
            self._status.move_to_end(topic)
            if len(self._status) > self.max_status:
                claimed = {c.status_topic for c in self._claims.values()}
                while len(self._status) > self.max_status:  # at most MAX_CLAIMS + 1 turns
                    oldest = next(iter(self._status))
                    if oldest in claimed:
                        self._status.move_to_end(oldest)
                    else:
                        del self._status[oldest]
            return any(c.status_topic == topic for c in self._claims.values())

    def live_claims(self) -> list[Claim]:
        """Kept claims whose availability topic says "online" now."""
        with self._lock:
            return [c for c in self._claims.values() if self._status.get(c.status_topic) == ONLINE]

    def conflicts(self) -> dict[str, list[str]]:
        """Problems per live other instance touching `me` (bounded by `MAX_CLAIMS`)."""
        out: dict[str, list[str]] = {}
        for claim in self.live_claims():
            out.setdefault(claim.instance, []).extend(self.me.problems(claim))
        return out


def _ask(settings: BrokerSettings, me: InstanceIdentity, timeout: float) -> _Check | None:
    check = _Check(settings, me)
    if not check.open(timeout):
        return None
    try:
        check.read(timeout)
        if suspects := check.board.live_claims():
            check.ping(suspects, PING_TIMEOUT_S)
    finally:
        check.close()
    return check


class _Check:
    """One short-lived connection: read the claims, then ping the suspicious ones."""

    def __init__(self, settings: BrokerSettings, me: InstanceIdentity) -> None:
        self.me = me
        self.settings = settings
        self.board = InstanceBoard(me)
        self.marker = f"{me.topics.prefix}/{INSTANCES}/{me.instance}/check"
        self.nonce = uuid.uuid4().hex
        self.answered: set[str] = set()
        self._all_answered = threading.Event()
        self.refused: list[str] = []
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._read = threading.Event()
        self._pongs: dict[str, str] = {}  # pong topic -> instance
        self._lock = threading.Lock()
        quick = dataclasses.replace(settings, connect_timeout=CHECK_TIMEOUT_S)
        client = new_client(quick, f"{me.client_id}-check")
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self.client = client

    def open(self, timeout: float) -> bool:
        try:
            self.client.connect(
                self.settings.host,
                self.settings.port,
                self.settings.keepalive,
                **self.settings.connect_kwargs(),
            )
        except (OSError, ValueError) as exc:
            log.warning("availability.check_skipped", reason=describe_error(exc))
            return False
        self.client.loop_start()
        self._connected.wait(timeout)
        if self.refused or not self._connected.is_set():
            self.close()
            reason = self.refused[0] if self.refused else f"no CONNACK within {timeout:g}s"
            log.warning("availability.check_skipped", reason=reason)
            return False
        return True

    def read(self, timeout: float) -> None:
        filters = [*self.me.topics.instances_filters, self.marker]
        deadline = time.monotonic() + timeout
        self.client.subscribe([(f, 1) for f in filters])
        if self._subscribed.wait(timeout) and not self.refused:
            self.client.publish(self.marker, self.nonce.encode(), qos=1)
            if self._read.wait(max(0.0, deadline - time.monotonic())):
                return
        log.warning("availability.check_incomplete", timeout_s=timeout, reason=self.refused)

    def ping(self, claims: list[Claim], timeout: float) -> None:
        """Ask each claiming instance to echo our nonce; `answered` names those that did."""
        topics = self.me.topics
        with self._lock:
            self._pongs = {topics.instance_pong(c.instance): c.instance for c in claims}
        deadline = time.monotonic() + timeout
        self._subscribed.clear()
        self.client.subscribe([(t, 1) for t in self._pongs])
        self._subscribed.wait(timeout)
        for claim in claims:
            self.client.publish(topics.instance_ping(claim.instance), self.nonce, qos=1)
        self._all_answered.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, _c, _u, _flags, reason_code, _props) -> None:  # type: ignore[no-untyped-def]
        if reason_code.is_failure:
            self.refused.append(str(reason_code))
        self._connected.set()

    def _on_subscribe(self, _c, _u, _mid, reason_codes, _props) -> None:  # type: ignore[no-untyped-def]
        failed = [str(code) for code in reason_codes if code.is_failure]
        if failed:  # e.g. an ACL (Mosquitto grants and filters per message instead)
            self.refused.append(f"subscription refused: {failed[0]}")
        self._subscribed.set()

    def _on_message(self, _c, _u, message: MQTTMessage) -> None:  # type: ignore[no-untyped-def]
        topic, payload = message.topic, bytes(message.payload)
        if self.settings.oversize(len(payload)):
            return
        with self._lock:
            instance = self._pongs.get(topic)
        if topic == self.marker:
            self._read.set()
        elif instance is not None:
            if payload == self.nonce.encode():
                self.answered.add(instance)
                if len(self.answered) == len(self._pongs):
                    self._all_answered.set()
        else:
            self.board(topic, payload, bool(message.retain))


def read_board(
    settings: BrokerSettings, me: InstanceIdentity, timeout: float = CHECK_TIMEOUT_S
) -> InstanceBoard | None:
    """The prefix's retained claims touching `me`, read over a connection of its own within
    `timeout` s; None when the broker could not be reached or refused us (logged).

    A marker message published after the SUBACK comes back after every retained message the
    broker queued for the subscription, so the read normally ends after one round trip.
    """
    check = _Check(settings, me)
    if not check.open(timeout):
        return None
    try:
        check.read(timeout)
    finally:
        check.close()
    return check.board


def check_unique(
    settings: BrokerSettings, me: InstanceIdentity, timeout: float = CHECK_TIMEOUT_S
) -> None:
    """ConfigError (one line, exit 2) naming each camera or availability topic of ours that an
    other instance claims and that answers the liveness check; unanswered claims are logged."""
    check = _ask(settings, me, timeout)
    if check is None:
        return
    conflicts = check.board.conflicts()
    live = [p for name, found in conflicts.items() if name in check.answered for p in found]
    if live:
        raise ConfigError("; ".join(live))
    for name, found in conflicts.items():
        log.warning(
            "availability.claim_not_live",
            instance=name,
            problems=found,
            action="starting anyway: it did not answer the liveness check",
        )
    log.info(
        "availability.checked",
        live_instances=sorted(check.answered),
        unanswered_claims=sorted(conflicts.keys() - check.answered),
        status_topic=me.status_topic,
    )


class PingResponder:
    """Answers the liveness check on `<prefix>/instances/<instance>/ping` (a subscription
    callback): echoes the nonce on `.../pong`, at most `per_s` a second, never a retained ping."""

    def __init__(self, me: InstanceIdentity, publish: Callable[[str, bytes], None]) -> None:
        self.topic = me.topics.instance_ping(me.instance)
        self.pong = me.topics.instance_pong(me.instance)
        self.publish = publish
        self._limit = LogThrottle(1.0, burst=10)

    def __call__(self, topic: str, payload: bytes, retained: bool) -> None:
        if retained or not 0 < len(payload) <= MAX_NONCE or self._limit.allow("ping") is None:
            return
        self.publish(self.pong, payload)


class InstancePresence:
    """What the running daemon does about its instance: check at start, announce its info on
    every connect, answer liveness checks, and keep watching for conflicts: each logged once
    (`availability.conflict`, throttled) and published as the conflict state (`publish_state`,
    from housekeeping, so a flood of claims publishes at most one state per call)."""

    def __init__(self, me: InstanceIdentity) -> None:
        self.me = me
        self.board = InstanceBoard(me, on_change=self._check)
        self._reported: set[str] = set()
        self._lock = threading.Lock()
        self._state: list[str] = []
        self._published: list[str] | None = None
        self._throttle = LogThrottle(60.0, burst=3)

    @property
    def status_topic(self) -> str:
        return self.me.status_topic

    def check(self, settings: BrokerSettings, timeout: float = CHECK_TIMEOUT_S) -> None:
        check_unique(settings, self.me, timeout)

    def subscriptions(
        self, publish: Callable[[str, bytes], None]
    ) -> list[tuple[str, MessageCallback]]:
        """The board's filters, and our ping topic answered through `publish(topic, payload)`
        (QoS 0, not retained)."""
        responder = PingResponder(self.me, publish)
        filters = self.me.topics.instances_filters
        return [*((f, self.board) for f in filters), (responder.topic, responder)]

    def announce(self, publish: Callable[..., None]) -> None:
        """Publish the retained info and conflict state; `publish(topic, payload, retain=True)`."""
        publish(self.me.info_topic, self.me.info(), retain=True)
        with self._lock:
            self._published = None
        self.publish_state(publish)

    def publish_state(self, publish: Callable[..., None]) -> None:
        """The conflict state, retained, when it changed since it was last published; none is
        an empty payload (deletes the retained message: no topic left behind without one)."""
        with self._lock:
            if self._published == self._state:
                return
            self._published = state = list(self._state)
        publish(
            self.me.topics.instance_conflicts(self.me.instance),
            {"conflicts": state} if state else b"",
            retain=True,
        )

    def _check(self) -> None:
        problems = [p for found in self.board.conflicts().values() for p in found]
        with self._lock:
            self._state = sorted(problems)
            new = [p for p in problems if p not in self._reported]
            self._reported = set(problems)
        for problem in new:
            if (held := self._throttle.allow("availability.conflict")) is not None:
                log.error("availability.conflict", problem=problem, suppressed=held)
