"""The daemon's one way to put a message on MQTT outside the event outbox.

Retained state (availability, activity, enabled, snapshots, stats) and scores go straight to
the client: they are re-published on every reconnect, so a lost one is replaced, never owed.
Without a broker (MQTT disabled) every call is a no-op, so callers never branch on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from har_daemon.comms.mqtt import MqttClient
from har_daemon.comms.payloads import encode_json


class Messenger:
    def __init__(self, client: MqttClient | None) -> None:
        self.client = client

    @property
    def enabled(self) -> bool:
        return self.client is not None

    def publish(
        self,
        topic: str,
        payload: Mapping[str, Any] | bytes | str,
        *,
        retain: bool = False,
        qos: int = 1,
    ) -> None:
        if self.client is not None:
            self.client.publish(topic, encode_json(payload), qos=qos, retain=retain)
