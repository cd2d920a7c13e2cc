"""A subscriber with a persistent MQTT session, for proving that nothing is lost."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from har_daemon.tools.broker import MosquittoBroker


class SessionSubscriber:
    """A paho subscriber with a persistent session: what the broker queues for it while it is
    away arrives when it is back. It subscribes only when the broker has no session for it,
    so a message after a broker restart proves the session (and subscription) survived."""

    def __init__(self, broker: MosquittoBroker, topic: str, client_id: str) -> None:
        self.broker = broker
        self.topic = topic
        self.received: list[dict[str, Any]] = []
        self.sessions_present: list[bool] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
        )
        self._client.reconnect_delay_set(0.1, 0.5)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        self.sessions_present.append(bool(flags.session_present))
        if not flags.session_present:
            client.subscribe(self.topic, qos=1)

    def _on_message(self, client, userdata, message) -> None:
        with self._cond:
            self.received.append(json.loads(message.payload))
            self._cond.notify_all()

    def start(self) -> SessionSubscriber:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600
        self._client.connect(
            self.broker.host, self.broker.port, keepalive=5, clean_start=False, properties=props
        )
        self._client.loop_start()
        assert self._subscribed.wait(10), "subscriber could not subscribe"
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def wait_for_ids(self, ids: set[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ids <= {m["id"] for m in self.received}:
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(ids - {m["id"] for m in self.received})
                    raise AssertionError(f"{len(missing)} events never arrived: {missing[:20]}")
                self._cond.wait(left)

    def seqs(self, camera: str) -> list[int]:
        with self._cond:
            return [m["seq"] for m in self.received if m["camera"] == camera]


def assert_in_order_per_camera(sub: SessionSubscriber, expected: dict[str, int]) -> int:
    """Every seq 1..n arrived for each camera, first arrivals in order; returns duplicates."""
    duplicates = 0
    for camera, n in expected.items():
        seqs = sub.seqs(camera)
        first: list[int] = []
        for s in seqs:
            if s not in first:
                first.append(s)
        assert first == list(range(1, n + 1)), f"{camera}: out of order or missing: {seqs}"
        duplicates += len(seqs) - len(first)
    return duplicates
