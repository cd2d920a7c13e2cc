"""A real Home Assistant core on a loopback port, wired to a test broker, for discovery tests.

    with HomeAssistant(tmp_path / "ha", broker) as ha:
        ...  # HA has connected and sent its birth message; its entities' states appear on
             # `<ha.state_prefix>/<domain>/<object_id>/state` (mqtt_statestream)

It runs from its own virtual environment (`.ha-venv`, made by scripts/install-deps.sh from
tests/home-assistant-requirements.txt: Home Assistant pins its own dependencies, which clash
with ours) with `--skip-pip`, so it never downloads anything. The MQTT integration cannot be set
up from YAML, so its config entry is written into `.storage` before the first start, exactly as
HA's own config flow stores it. mqtt_statestream republishes every entity's state and
attributes over MQTT, so tests read what Home Assistant made of our discovery payloads without
its authenticated HTTP API.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from har_daemon.tools.broker import MosquittoBroker, MqttRecorder
from har_daemon.tools.procs import LOOPBACK, ServiceProcess, free_port, start_process, tail

REPO = Path(__file__).resolve().parents[2]
HA_VENV = Path(os.environ.get("HAR_TEST_HA_VENV", REPO / ".ha-venv"))
HASS = HA_VENV / "bin" / "hass"
STATE_PREFIX = "hastate"

_CONFIG = """\
homeassistant:
  name: har-daemon test
  unit_system: metric
  time_zone: UTC
  latitude: 0
  longitude: 0
  elevation: 0
  currency: EUR
  country: DE
http:
  server_host: {host}
  server_port: {port}
mqtt_statestream:
  base_topic: {prefix}
  publish_attributes: true
logger:
  default: warning
"""

# Lines HA logs at WARNING or above from the parts that read discovery payloads and render
# their templates: any of them means a payload HA did not fully accept.
_PROBLEM = re.compile(
    r"^\S+ \S+ (WARNING|ERROR|CRITICAL) \(\w+\) \[homeassistant\.(components\.(mqtt|sensor|"
    r"binary_sensor|switch|image)|helpers\.(template|entity))\b"
)


class HomeAssistant(ServiceProcess):
    def __init__(self, workdir: Path, broker: MosquittoBroker) -> None:
        if not HASS.exists():
            raise RuntimeError(
                f"{HASS} not found: run scripts/install-deps.sh (it makes .ha-venv), or point "
                "HAR_TEST_HA_VENV at a venv with tests/home-assistant-requirements.txt"
            )
        super().__init__(workdir, "hass-")
        self.broker = broker
        self.state_prefix = STATE_PREFIX
        self.http_port = free_port()
        self.log_path = self.workdir / "hass.log"
        storage = self.workdir / ".storage"
        storage.mkdir(parents=True, exist_ok=True)
        (self.workdir / "configuration.yaml").write_text(
            _CONFIG.format(host=LOOPBACK, port=self.http_port, prefix=STATE_PREFIX)
        )
        entry = {
            "entry_id": "01HARDAEMONTESTMQTT",
            "version": 1,
            "minor_version": 1,
            "domain": "mqtt",
            "title": "test broker",
            "data": {
                "broker": broker.host,
                "port": broker.port,
                "discovery": True,
                "discovery_prefix": "homeassistant",
            },
            "options": {},
            "pref_disable_new_entities": False,
            "pref_disable_polling": False,
            "source": "user",
            "unique_id": None,
            "disabled_by": None,
        }
        (storage / "core.config_entries").write_text(
            json.dumps(
                {
                    "version": 1,
                    "minor_version": 2,
                    "key": "core.config_entries",
                    "data": {"entries": [entry]},
                }
            )
        )

    def start(self, timeout: float = 90.0) -> HomeAssistant:
        """Start HA and wait for its birth message (it is then subscribed to discovery)."""
        with MqttRecorder(self.broker, "homeassistant/status") as rec:
            self._proc = start_process(
                [str(HASS), "-c", str(self.workdir), "--skip-pip"], self.log_path
            )
            try:
                rec.wait_for("homeassistant/status", b"online", timeout=timeout)
            except TimeoutError:
                self.stop()
                raise RuntimeError(
                    f"Home Assistant sent no birth message in {timeout}s:\n"
                    + self.log_text()[-3000:]
                ) from None
        return self

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, and time for Home Assistant to shut down before SIGKILL."""
        super().stop(timeout)

    def log_text(self) -> str:
        return tail(self.log_path, 10**7)

    def problems(self) -> list[str]:
        """HA's warnings and errors about MQTT entities, their payloads and templates."""
        return [line for line in self.log_text().splitlines() if _PROBLEM.match(line)]
