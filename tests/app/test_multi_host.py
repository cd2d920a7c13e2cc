"""Many hosts, one alert stream: two daemon instances on a site broker, bridged to a central
broker, and `har-daemon events` on the central one; every broker goes away once.

The site broker's bridge (`site_bridge_config`, the configuration docs show) forwards the
prefix with QoS 1 over a persistent bridge session (cleansession false); both brokers keep
their state on disk across a clean restart. The consumer's output must hold every event both
daemons printed exactly once, in order per camera, whatever was sent twice on the way (and one
re-send is made certain at the end, so the dedup is always exercised).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import paho.mqtt.publish as publish
import pytest

from tests.daemon_helpers import DaemonPool, DaemonProcess, daemon_config
from tests.infra.events_consumer import EventsConsumer
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PREFIX = "har"
# Frequent events: any top class starts at once, and an update every half second.
CHATTY = {
    "enter_threshold": 0.3,
    "exit_threshold": 0.05,
    "min_windows": 1,
    "update_interval_s": 0.5,
}
INSTANCES = {"host-a": "cam-a", "host-b": "cam-b"}
CENTRAL_OUTAGE_S = 20.0
SITE_OUTAGE_S = 5.0


def site_bridge_config(central: MosquittoBroker, site: str = "site1") -> str:
    """The site broker's bridge to the central one (docs/operations.md, "Scaling out")."""
    return "\n".join(
        [
            "max_queued_messages 100000",
            f"connection {site}-to-central",
            f"address {central.host}:{central.port}",
            f"remote_clientid {site}-bridge",
            "cleansession false",
            f"topic {PREFIX}/# out 1",
            "restart_timeout 1 5",
            "keepalive_interval 10",
        ]
    )


def _daemon(
    tmp_path: Path, daemons: DaemonPool, site: MosquittoBroker, video: Path, instance: str
) -> DaemonProcess:
    camera = INSTANCES.get(instance, "cam-a")
    cfg = daemon_config(
        tmp_path / f"{instance}.toml",
        site,
        [{"name": camera, "source": str(video), "loop": True, "realtime": True}],
        inference=CHATTY,
        mqtt={"keepalive": 5, "instance": instance, "shared_prefix": True},
    )
    return daemons.start(cfg)


def _wait_printed(d: DaemonProcess, n: int, timeout: float) -> None:
    wait_until(
        lambda: len(d.stdout_events()) >= n or not d.alive(),
        timeout,
        message=lambda: f"fewer than {n} events\n{d.describe()}",
    )
    assert d.alive(), d.describe()


def _by_camera(events: list[dict[str, Any]]) -> dict[str, list[tuple[int, str, str]]]:
    out: dict[str, list[tuple[int, str, str]]] = {}
    for e in events:
        out.setdefault(e["camera"], []).append((e["seq"], e["id"], e["type"]))
    return out


def _differences(
    want: dict[str, list[tuple[int, str, str]]],
    consumer: EventsConsumer,
    *brokers: MosquittoBroker,
) -> str:
    """What the consumer printed against what the daemons printed, camera by camera: missing,
    extra and out-of-order seqs, then the consumer's and the brokers' own logs."""
    got = _by_camera(consumer.events())
    lines = ["consumer differs from the daemons"]
    for camera in sorted(set(want) | set(got)):
        w, g = want.get(camera, []), got.get(camera, [])
        missing = [row[0] for row in w if row not in g]
        extra = [row[0] for row in g if row not in w]
        order = [s for s, _, _ in g]
        lines.append(
            f"{camera}: daemon {len(w)}, consumer {len(g)}, missing {missing}, extra {extra}, "
            f"consumer seq order {order}"
        )
    lines.append(consumer.describe())
    for broker in brokers:  # connections, bridges, persistence: not every PUBLISH/PUBACK
        log = [x for x in broker.log_text().splitlines() if "PUB" not in x]
        lines.append(f"--- {broker}\n" + "\n".join(log[-80:]))
    return "\n".join(lines)


def test_two_instances_two_bridged_brokers_every_event_once(
    tmp_path: Path,
    mosquitto_factory: Callable[..., MosquittoBroker],
    daemons: DaemonPool,
    videos: dict[str, Path],
) -> None:
    video = videos["change"]  # Biking then HorseRace, looped: events all along
    central = mosquitto_factory(persistence=True, autosave_interval=1)
    site = mosquitto_factory(
        persistence=True, autosave_interval=1, extra_config=site_bridge_config(central)
    )
    consumer = EventsConsumer(central, tmp_path / "consumer", "central-reader").start()
    try:
        procs = {i: _daemon(tmp_path, daemons, site, video, i) for i in INSTANCES}
        for d in procs.values():
            _wait_printed(d, 3, 60)

        # A third instance claiming a camera of a live one is refused at start-up.
        dup = _daemon(tmp_path, daemons, site, video, "host-c")
        assert dup.wait(timeout=30) == 2, dup.describe()
        err = [x for x in dup.stderr_path.read_text().splitlines() if x.startswith("har-daemon:")]
        assert len(err) == 1 and "camera 'cam-a'" in err[0] and "'host-a'" in err[0], err

        # The central broker goes away for 20 s: the site's bridge queues, then catches up.
        central.stop()
        before = sum(len(d.stdout_events()) for d in procs.values())
        time.sleep(CENTRAL_OUTAGE_S)
        during = sum(len(d.stdout_events()) for d in procs.values()) - before
        central.start()
        for d in procs.values():
            _wait_printed(d, len(d.stdout_events()) + 2, 30)
        # Then the site broker: the daemons spool, reconnect and replay.
        site.stop()
        time.sleep(SITE_OUTAGE_S)
        site.start()
        for d in procs.values():
            _wait_printed(d, len(d.stdout_events()) + 2, 30)

        for d in procs.values():
            d.signal(signal.SIGTERM)
        for d in procs.values():
            assert d.wait(timeout=20) == 0, d.describe()
        produced = [e for d in procs.values() for e in d.stdout_events()]
        want = _by_camera(produced)
        # Exactly once and in order per camera: the consumer's lines, camera by camera, are
        # the daemons' own.
        wait_until(
            lambda: _by_camera(consumer.events()) == want,
            60,
            message=lambda: _differences(want, consumer, site, central),
        )
        # A re-send on the way (what a lost acknowledgement causes), made certain: an event
        # already printed enters the site broker again, then a new camera's first event.
        again = procs["host-a"].stdout_events()[2]
        probe = {**again, "camera": "probe", "seq": 1}
        publish.multiple(
            [
                {"topic": f"{PREFIX}/cam-a/events", "payload": json.dumps(again), "qos": 1},
                {"topic": f"{PREFIX}/probe/events", "payload": json.dumps(probe), "qos": 1},
            ],
            hostname=site.host, port=site.port, protocol=mqtt.MQTTv5,
        )  # fmt: skip
        wait_until(lambda: "probe" in _by_camera(consumer.events()), 20, message=consumer.describe)
        assert consumer.stop() == 0, consumer.describe()
    finally:
        consumer.kill()

    assert set(want) == set(INSTANCES.values())
    for camera, seqs in want.items():
        assert [s for s, _, _ in seqs] == list(range(1, len(seqs) + 1)), (camera, seqs)
    assert during >= 10, f"only {during} events while the central broker was away"
    # The consumer came back to its session (the broker kept it, and what was queued for it).
    sessions = [e["session_present"] for e in consumer.logs() if e["event"] == "events.connected"]
    assert sessions[0] is False and len(sessions) >= 2 and all(sessions[1:]), sessions
    stopped = [e for e in consumer.logs() if e.get("event") == "events.stopped"]
    assert stopped and stopped[0]["printed"] == len(produced) + 1, consumer.describe()
    assert stopped[0]["duplicates"] >= 1, consumer.describe()
    assert _by_camera(consumer.events())["cam-a"] == want["cam-a"]  # the re-send dropped

    # Each instance's availability and claim reached the central broker through the bridge.
    with MqttRecorder(central, f"{PREFIX}/instances/#") as rec:
        for instance, camera in INSTANCES.items():
            rec.wait_for(f"{PREFIX}/instances/{instance}/status", b"stopped", timeout=10)
            _, info, retained, _ = rec.wait_for(f"{PREFIX}/instances/{instance}/info", timeout=5)
            assert retained and json.loads(info)["cameras"] == [camera]
