"""The daemon's discovery payloads in a real Home Assistant (core 2024.3, the newest that runs on
Python 3.11), end to end: HA builds the entities from them, renders their templates against
the daemon's real messages, follows availability, and shows pause/resume on the switch.

What HA made of everything is read back through mqtt_statestream (see tests/infra/home_assistant).
"""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from tests.daemon_helpers import EAGER, DaemonPool, daemon_config
from tests.infra.home_assistant import HomeAssistant
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CAMERA = "yard"
CLASSES = ["HorseRace", "Biking", "Swing", "PizzaTossing"]  # the demo model's
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


class States:
    """HA's view: the latest state and attributes per entity id, from statestream."""

    def __init__(self, rec: MqttRecorder, prefix: str) -> None:
        self.rec, self.prefix = rec, prefix

    def history(self, entity: str, attribute: str = "state") -> list[str]:
        domain, object_id = entity.split(".", 1)
        topic = f"{self.prefix}/{domain}/{object_id}/{attribute}"
        return [p.decode() for p in self.rec.payloads(topic)]

    def entities(self) -> set[str]:
        out = set()
        for topic, _, _, _ in list(self.rec.messages):
            parts = topic.split("/")
            if len(parts) == 4 and parts[0] == self.prefix and parts[3] == "state":
                out.add(f"{parts[1]}.{parts[2]}")
        return out

    def wait(
        self, entity: str, state: str, timeout: float = 30.0, attribute: str = "state"
    ) -> None:
        def latest() -> str | None:
            seen = self.history(entity, attribute)
            return seen[-1] if seen else None

        wait_until(
            lambda: latest() == state, timeout, 0.1,
            message=lambda: f"{entity} {attribute} never became {state!r}; "
            f"saw {self.history(entity, attribute)}",
        )  # fmt: skip


def test_home_assistant_builds_and_follows_the_entities(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    import paho.mqtt.publish as publish

    cfg = daemon_config(
        tmp_path / "har.toml",
        mosquitto,
        [{"name": CAMERA, "source": videos["biking"], "loop": True, "realtime": True}],
        inference=EAGER,
        extra={"homeassistant": {"enabled": True}, "snapshots": {"enabled": True}},
    )
    with (
        MqttRecorder(mosquitto, "hastate/#") as rec,
        HomeAssistant(tmp_path / "ha", mosquitto) as ha,
    ):
        states = States(rec, ha.state_prefix)
        # First, that HA's complaints are seen at all: a payload it must reject.
        publish.single(
            "homeassistant/sensor/test/broken/config",
            json.dumps({"unique_id": "broken", "state_topic": "a/#/b", "qos": 7}),
            hostname=mosquitto.host, port=mosquitto.port,
        )  # fmt: skip
        wait_until(
            lambda: bool(ha.problems()),
            timeout=15,
            message="HA logged nothing about a broken payload",
        )
        rejected = ha.problems()
        assert any("broken" in line or "qos" in line for line in rejected), rejected

        d = daemons.start(cfg)

        # One device, seven entities: the activity sensor, a binary sensor per alerting
        # activity (all four classes here), the detection switch and the snapshot image.
        sensor = f"sensor.har_{CAMERA}_activity"
        binaries = {c: f"binary_sensor.har_{CAMERA}_{c.lower()}" for c in CLASSES}
        switch = f"switch.har_{CAMERA}_detection"
        image = f"image.har_{CAMERA}_snapshot"
        # The clip is Biking throughout: HA's sensor renders it from har/yard/activity.
        states.wait(sensor, "Biking", timeout=60)
        states.wait(binaries["Biking"], "on")
        states.wait(switch, "on")
        ours = {e for e in states.entities() if e.split(".", 1)[1].startswith(f"har_{CAMERA}_")}
        assert ours == {sensor, switch, image, *binaries.values()}, states.entities()
        for other in ("HorseRace", "Swing", "PizzaTossing"):
            assert states.history(binaries[other])[-1] == "off"

        # The sensor's attributes come from the json_attributes_template.
        confidence = float(states.history(sensor, "confidence")[-1])
        assert 0.3 <= confidence <= 1.0
        since = json.loads(states.history(sensor, "since")[-1])
        assert since.endswith("Z") and "T" in since
        assert json.loads(states.history(sensor, "device_class")[-1]) == "enum"
        assert json.loads(states.history(binaries["Biking"], "device_class")[-1]) == "safety"
        # The image entity's state is the time of its last picture: a snapshot arrived.
        wait_until(
            lambda: any(ISO.match(s) for s in states.history(image)), timeout=15,
            message=f"{image} never showed a snapshot time",
        )  # fmt: skip

        # Pausing the camera (what the switch sends) turns the switch off and ends the
        # activity: the sensor goes back to idle, the binary sensor off. Resuming brings it back.
        publish.single(
            f"har/{CAMERA}/set", json.dumps({"enabled": False}), qos=1,
            hostname=mosquitto.host, port=mosquitto.port,
        )  # fmt: skip
        states.wait(switch, "off")
        states.wait(sensor, "idle")
        states.wait(binaries["Biking"], "off")
        publish.single(
            f"har/{CAMERA}/set", json.dumps({"enabled": True}), qos=1,
            hostname=mosquitto.host, port=mosquitto.port,
        )  # fmt: skip
        states.wait(switch, "on")
        states.wait(sensor, "Biking", timeout=60)

        # The daemon going away makes every entity unavailable (har/status "stopped").
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=20) == 0, d.describe()
        for entity in ours:
            states.wait(entity, "unavailable", timeout=15)

        # Nothing of ours drew a warning: every key, topic and template was accepted.
        assert ha.problems() == rejected, "\n".join(ha.problems())
