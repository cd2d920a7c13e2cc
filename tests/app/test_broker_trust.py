"""The broker is a trust boundary (issue 21): whoever can publish must not stall, silence or fool
the daemon. Each test runs the real daemon (and `har-daemon events`) against a real Mosquitto
and plays the publisher that the issue's probe played: a flood of instance topics, forged
retained claims, huge messages, forged event seqs, a stalled broker. The last test runs the
broker with the shipped ACL (deploy/mosquitto/acl) and shows that it refuses those publishes
from every user but the daemon's."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.daemon_helpers import DaemonPool, DaemonProcess, count, daemon_config
from tests.infra.events_consumer import EventsConsumer
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import free_port, wait_until
from tests.shared_data import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

CAMERA = "lobby"
ENABLED = f"har/{CAMERA}/enabled"
CONFLICTS = "har/instances/default/conflicts"
# Any top class starts at once, and an update every half second: events keep flowing.
CHATTY = {"enter_threshold": 0.3, "exit_threshold": 0.05, "min_windows": 1}
CHATTY_UPDATES = {**CHATTY, "update_interval_s": 0.5}
ACL = REPO / "deploy" / "mosquitto" / "acl"
DYNSEC = REPO / "deploy" / "mosquitto" / "dynamic-security.json"
USERS = {"har-daemon": "d-secret", "har-events": "e-secret", "homeassistant": "h-secret"}


def _config(
    tmp: Path,
    broker: MosquittoBroker,
    videos: dict[str, Path],
    name: str = "har.toml",
    **options: Any,
) -> Path:
    return daemon_config(
        tmp / name,
        broker,
        [{"name": CAMERA, "source": videos["biking"], "loop": True, "realtime": True}],
        inference=options.pop("inference", CHATTY),
        **options,
    )


class Publisher:
    """A real MQTT 5 client playing whoever can publish; `results` holds each QoS 1 PUBACK's
    reason code by mid."""

    def __init__(self, broker: MosquittoBroker, user: str | None = None) -> None:
        self.results: dict[int, int] = {}
        self._acked = threading.Condition()
        c = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        if user is not None:
            c.username_pw_set(user, USERS[user])
        c.on_publish = self._on_publish
        c.connect(broker.host, broker.port)
        c.loop_start()
        self.client = c

    def _on_publish(self, _c, _u, mid, reason_code, _props) -> None:  # type: ignore[no-untyped-def]
        with self._acked:
            self.results[mid] = int(reason_code.value)
            self._acked.notify_all()

    def send(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> int:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        return info.mid

    def wait(self, mids: list[int], timeout: float = 30.0) -> list[int]:
        """The PUBACK reason codes of `mids` (QoS 1), waiting for all of them."""
        with self._acked:
            assert self._acked.wait_for(lambda: all(m in self.results for m in mids), timeout)
            return [self.results[m] for m in mids]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _claim(instance: str, cameras: list[str], status_topic: str | None = None) -> str:
    return json.dumps(
        {
            "instance": instance,
            "client_id": f"squatter-{instance}",
            "host": "elsewhere",
            "status_topic": status_topic or f"har/instances/{instance}/status",
            "cameras": cameras,
            "version": "0",
            "started_at": None,
        }
    )


def _flood(pub: Publisher, instances: int, qos: int = 0) -> list[int]:
    """`instances` fake instances, each an online claim on our camera: the issue's flood."""
    mids = []
    for i in range(instances):
        mids.append(pub.send(f"har/instances/f{i}/info", _claim(f"f{i}", [CAMERA]), qos))
        mids.append(pub.send(f"har/instances/f{i}/status", "online", qos))
    return mids


def _healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _events(d: DaemonProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in d.logs() if e.get("event") == name]


def _conflict_states(rec: MqttRecorder) -> list[list[str]]:
    """The daemon's published conflict states (an empty payload, none, is left out)."""
    payloads = rec.payloads(CONFLICTS)
    return [json.loads(p)["conflicts"] for p in payloads if p]


def _hwm_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM), from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def _toggle(pub: Publisher, rec: MqttRecorder, enabled: bool, timeout: float) -> float:
    """Send a camera command; seconds until the daemon published its new state."""
    before = count(rec)
    t0 = time.monotonic()
    pub.send(f"har/{CAMERA}/set", json.dumps({"enabled": enabled}))
    want = json.dumps({"enabled": enabled}, separators=(",", ":"))
    try:
        rec.wait_for(ENABLED, want, timeout, after=before)
    except TimeoutError:  # its own message lists every message: thousands after a flood
        raise AssertionError(f"command not applied within {timeout}s") from None
    return time.monotonic() - t0


def _flood_story(d: DaemonProcess, broker: MosquittoBroker) -> str:
    """What the daemon said of MQTT, claims and commands, and the broker's log tail."""
    said = [
        json.dumps(e)
        for e in d.logs()
        if str(e.get("event", "")).startswith(("mqtt.", "availability.", "control.", "log."))
    ]
    broker_log = broker.log_path.read_text(errors="replace").splitlines()
    return "--- daemon\n" + "\n".join(said[-30:]) + "\n--- broker\n" + "\n".join(broker_log[-30:])


def test_instance_flood_neither_stalls_commands_nor_floods_the_log(
    tmp_path: Path, mosquitto_factory: Any, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    """Item 1: 20,000 fake instances (40,000 messages, the issue's flood) claiming our camera.
    On the old code every message ran a conflict scan over every claim on paho's thread
    (quadratic): the command sent after the flood was not applied within the minute. Now it is
    (linear work, a few seconds even on a loaded machine), acknowledgements keep flowing
    (/healthz, which watches them, stays healthy) and the conflict lines are throttled."""
    # The broker logs no line per message, and the test records only what it asserts on: the
    # flood's cost is the daemon's.
    # notice: a dropped outgoing message or a client's disconnect would show in its log
    mosquitto = mosquitto_factory(log_types=("error", "warning", "notice"))
    port = free_port()
    cfg = _config(
        tmp_path, mosquitto, videos,
        mqtt={"ack_stall_s": 5}, extra={"metrics": {"port": port, "host": "127.0.0.1"}},
    )  # fmt: skip
    pub = Publisher(mosquitto)
    try:
        with MqttRecorder(mosquitto, ENABLED, CONFLICTS) as rec:
            d = daemons.start(cfg)
            rec.wait_for(ENABLED, b'{"enabled":true}', timeout=30)
            _flood(pub, 20_000)
            try:
                _toggle(pub, rec, False, timeout=60)  # behind the flood on the same client
            except AssertionError as exc:  # seen once in a full suite: say who lost it
                raise AssertionError(f"{exc}\n{_flood_story(d, mosquitto)}") from None
            _toggle(pub, rec, True, timeout=10)
            wait_until(lambda: _healthz(port)[0] == 200, 10, message=lambda: str(_healthz(port)))
            time.sleep(6)  # longer than ack_stall_s: a stuck loop would show now
            status, body = _healthz(port)
            assert status == 200, body
            conflicts = _conflict_states(rec)
            assert conflicts and "camera 'lobby'" in conflicts[-1][0], conflicts[-1:]
    finally:
        pub.close()
    assert 1 <= len(_events(d, "availability.conflict")) <= 3, d.describe()
    assert len(_events(d, "availability.too_many_claims")) == 1


def test_forged_retained_claims_do_not_stop_a_start_a_live_owner_does(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    """Item 3: a retained claim on our camera and one on our availability topic (`har/status`),
    both "online": the daemon starts (the squatters do not answer the liveness check), says so
    and publishes the conflict state. A second daemon on the same camera, against a first that
    is really running, is still refused (exit 2)."""
    pub = Publisher(mosquitto)
    mids = [
        pub.send("har/instances/squat/info", _claim("squat", [CAMERA]), retain=True),
        pub.send("har/instances/squat/status", "online", retain=True),
        pub.send(
            "har/instances/fake/info", _claim("fake", ["elsewhere"], "har/status"), retain=True
        ),
        pub.send("har/status", "online", retain=True),
    ]
    assert all(code < 0x80 for code in pub.wait(mids))  # accepted
    pub.close()
    with MqttRecorder(mosquitto, "har/#") as rec:
        first = daemons.start(_config(tmp_path, mosquitto, videos))
        rec.wait_for(ENABLED, b'{"enabled":true}', timeout=30)
        assert first.alive(), first.describe()
        unverified = {e["instance"] for e in _events(first, "availability.claim_not_live")}
        assert unverified == {"squat", "fake"}, first.describe()
        wait_until(lambda: len(_conflict_states(rec)[-1:]) == 1, 10, message=first.describe)
        state = _conflict_states(rec)[-1]
        assert len(state) == 2 and "camera 'lobby'" in " ".join(state), state
        assert any("availability topic 'har/status'" in p for p in state), state

        second_cfg = _config(tmp_path, mosquitto, videos, "second.toml", mqtt={"instance": "b"})
        second = daemons.start(second_cfg)
        assert second.wait(timeout=60) == 2, second.describe()
        err = second.stderr_path.read_text()
        assert "camera 'lobby'" in err and "instance 'default'" in err, second.describe()
        assert first.alive()


def test_huge_messages_cost_no_memory(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    """Item 4: 64 MB on an instance topic (retained) and on `har/set`, while the daemon runs
    and when it starts with the retained one waiting: its peak RSS (VmHWM, /proc) does not move
    by anything near it (the old code: +64 MB and more), and commands still work."""
    big = b"x" * (64 * 1024 * 1024)
    pub = Publisher(mosquitto)
    try:
        with MqttRecorder(mosquitto, ENABLED) as rec:
            d = daemons.start(_config(tmp_path, mosquitto, videos))
            rec.wait_for(ENABLED, b'{"enabled":true}', timeout=30)
            time.sleep(2)
            before = _hwm_kib(d.pid)
            for topic, retain in (("har/instances/big/info", True), ("har/set", False)):
                assert pub.wait([pub.send(topic, big, retain=retain)])[0] < 0x80  # accepted
            _toggle(pub, rec, False, timeout=20)  # the loop got past both
            grown = _hwm_kib(d.pid) - before
            assert grown < 32 * 1024, f"peak RSS grew by {grown} KiB"
            d.signal(signal.SIGTERM)
            assert d.wait(timeout=20) == 0, d.describe()
            mark = count(rec)
            again = daemons.start(_config(tmp_path, mosquitto, videos))  # the retained one waits
            wait_until(lambda: _events(again, "availability.checked"), 30, message=again.describe)
            rec.wait_for(ENABLED, b'{"enabled":true}', timeout=30, after=mark)
            time.sleep(2)
            assert _hwm_kib(again.pid) < before + 32 * 1024, (before, _hwm_kib(again.pid))
    finally:
        pub.close()


def test_forged_seqs_hide_no_real_event_from_the_consumer(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    """Item 5: real events, then 50 forged ones carrying the next seqs, then more real ones:
    `har-daemon events` prints every real event (the old high-water mark dropped them)."""
    consumer = EventsConsumer(mosquitto, tmp_path / "consumer", "reader").start()
    d = daemons.start(_config(tmp_path, mosquitto, videos, inference=CHATTY_UPDATES))
    pub = Publisher(mosquitto)
    try:
        wait_until(lambda: len(consumer.events()) >= 3, 60, message=consumer.describe)
        last = max(e["seq"] for e in consumer.events())
        forged = [
            pub.send(
                f"har/{CAMERA}/events",
                json.dumps({**consumer.events()[-1], "id": f"forged-{s}", "seq": s}),
            )
            for s in range(last + 1, last + 51)
        ]
        pub.wait(forged)
        wait_until(lambda: len(d.stdout_events()) >= last + 12, 60, message=d.describe)
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=20) == 0, d.describe()
        real = {(e["id"], e["seq"]) for e in d.stdout_events()}

        def printed() -> set[tuple[str, int]]:
            return {(e["id"], e["seq"]) for e in consumer.events()}

        wait_until(lambda: real <= printed(), 20, message=lambda: str(sorted(real - printed())))
        assert consumer.stop() == 0, consumer.describe()
    finally:
        pub.close()
        consumer.kill()
    assert any(e["event"] == "events.seq_reused" for e in consumer.logs()), consumer.describe()


def test_events_state_that_is_not_one_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Item 9: `{"high":1e400}`, an overflowing seq in a real-looking state, binary bytes."""
    import subprocess
    import sys

    from tests.daemon_helpers import daemon_env

    cases = {
        "high.json": b'{"high":1e400}',
        "inf.json": b'{"version":2,"cameras":{"har/a":[[1e400,"0123456789abcdef"]]}}',
        "binary.json": bytes(range(256)) * 8,
    }
    for name, data in cases.items():
        state = tmp_path / name
        state.write_bytes(data)
        proc = subprocess.run(
            [sys.executable, "-m", "har_daemon", "events", "--host", "127.0.0.1",
             "--port", str(free_port()), "--state", str(state)],
            capture_output=True, text=True, env=daemon_env(tmp_path), cwd=REPO, timeout=60,
        )  # fmt: skip
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1, (name, proc.stderr)
        assert str(state) in lines[0] and "Traceback" not in proc.stderr, lines
        assert state.read_bytes() == data  # never overwritten


def test_stalled_broker_makes_healthz_unhealthy(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    """Item 1, /healthz: messages in flight and no acknowledgement handled for `ack_stall_s`
    (here a broker frozen with SIGSTOP; a busy network thread looks the same) is unhealthy,
    and healthy again once acknowledgements flow."""
    port = free_port()
    cfg = _config(
        tmp_path, mosquitto, videos, inference=CHATTY_UPDATES,
        mqtt={"ack_stall_s": 2, "keepalive": 60},
        extra={"metrics": {"port": port, "host": "127.0.0.1"}},
    )  # fmt: skip
    with MqttRecorder(mosquitto, f"har/{CAMERA}/events") as rec:
        d = daemons.start(cfg)
        rec.wait_for(f"har/{CAMERA}/events", timeout=60)
        wait_until(lambda: _healthz(port)[0] == 200, 20, message=lambda: str(_healthz(port)))
        assert mosquitto.pid is not None
        os.kill(mosquitto.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: _healthz(port)[0] == 503, 20, message=d.describe)
            reasons = _healthz(port)[1]["reasons"]
            assert any("no acknowledgement" in r for r in reasons), reasons
        finally:
            os.kill(mosquitto.pid, signal.SIGCONT)
        wait_until(lambda: _healthz(port)[0] == 200, 20, message=lambda: str(_healthz(port)))


def _dynsec_broker(tmp: Path, mosquitto_factory: Any) -> MosquittoBroker:
    """A broker with the dynamic security plugin and the shipped example, given the test's
    passwords the way the plugin stores them (PBKDF2-SHA512, as `mosquitto_ctrl` would)."""
    plugin = Path("/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so")
    assert plugin.is_file(), "the mosquitto package ships the dynamic security plugin"
    doc = json.loads(DYNSEC.read_text())
    for client in doc["clients"]:
        salt = os.urandom(12)
        secret = USERS[client["username"]].encode()
        digest = hashlib.pbkdf2_hmac("sha512", secret, salt, 101, 64)
        client.update(
            salt=base64.b64encode(salt).decode(),
            iterations=101,
            password=base64.b64encode(digest).decode(),
        )
    config = tmp / "dynamic-security.json"
    config.write_text(json.dumps(doc))
    return mosquitto_factory(
        allow_anonymous=False,
        extra_config=f"plugin {plugin}\nplugin_opt_config_file {config}",
    )


@pytest.mark.parametrize("kind", ["acl_file", "dynamic_security"])
def test_shipped_acl_refuses_the_attacks_for_every_user_but_the_daemon(
    tmp_path: Path,
    mosquitto_factory: Any,
    daemons: DaemonPool,
    videos: dict[str, Path],
    kind: str,
) -> None:
    """deploy/mosquitto/acl on a broker with a password file (and the dynamic security
    example, the same roles): Home Assistant and consumers (the non-daemon users) cannot flood
    instance topics (item 1), retain claims (item 3) or forge events (item 5): every such
    publish gets "Not authorized" and never reaches the daemon or the consumer, while each role
    still does its job."""
    if kind == "acl_file":
        broker = mosquitto_factory(users=USERS, acl=ACL.read_text())
    else:
        broker = _dynsec_broker(tmp_path, mosquitto_factory)
    cfg = _config(
        tmp_path, broker, videos, inference=CHATTY_UPDATES,
        mqtt={"username": "har-daemon", "password": USERS["har-daemon"]},
    )  # fmt: skip
    consumer = EventsConsumer(
        broker, tmp_path / "consumer", "reader",
        args=["--json", "--username", "har-events"],
        env={"HAR_MQTT__PASSWORD": USERS["har-events"]},
    )  # fmt: skip
    ha = Publisher(broker, "homeassistant")
    reader = Publisher(broker, "har-events")
    not_authorized = 0x87
    try:
        # Item 3 before the daemon starts: retained squatter claims.
        claims = [
            ha.send("har/instances/squat/info", _claim("squat", [CAMERA]), retain=True),
            ha.send("har/instances/squat/status", "online", retain=True),
            ha.send("har/status", "online", retain=True),
            reader.send("har/instances/squat/info", _claim("squat", [CAMERA]), retain=True),
        ]
        assert ha.wait(claims[:3]) == [not_authorized] * 3
        assert reader.wait(claims[3:]) == [not_authorized]
        consumer.start()
        with MqttRecorder(
            broker, "har/#", username="har-daemon", password=USERS["har-daemon"]
        ) as rec:
            d = daemons.start(cfg)
            rec.wait_for(ENABLED, b'{"enabled":true}', timeout=30)
            assert not _events(d, "availability.claim_not_live"), d.describe()
            wait_until(lambda: len(consumer.events()) >= 2, 60, message=consumer.describe)
            # Item 1: a flood of instance topics; item 5: forged events with the next seqs.
            flood = _flood(ha, 500, qos=1)
            last = max(e["seq"] for e in consumer.events())
            fake = {**consumer.events()[-1], "id": "forged"}
            forged = [
                who.send(f"har/{CAMERA}/events", json.dumps({**fake, "seq": s}))
                for who in (ha, reader)
                for s in range(last + 1, last + 21)
            ]
            assert set(ha.wait(flood + forged[:20])) == {not_authorized}
            assert set(reader.wait(forged[20:])) == {not_authorized}
            # Home Assistant's own rights still work: a command is applied.
            _toggle(ha, rec, False, timeout=10)
            wait_until(lambda: len(d.stdout_events()) >= last + 1, 30, message=d.describe)
            d.signal(signal.SIGTERM)
            assert d.wait(timeout=20) == 0, d.describe()
            seen = rec.messages
        wait_until(
            lambda: {e["id"] for e in d.stdout_events()} <= {e["id"] for e in consumer.events()},
            20, message=consumer.describe,
        )  # fmt: skip
        assert consumer.stop() == 0, consumer.describe()
    finally:
        ha.close()
        reader.close()
        consumer.kill()
    topics = {t for t, *_ in seen}
    assert not [t for t in topics if t.startswith("har/instances/") and "/default/" not in t]
    assert b"squatter" not in b"".join(p for t, p, *_ in seen if t.startswith("har/instances"))
    assert not [e for e in consumer.events() if e["id"] == "forged"]
    assert not [p for t, p, *_ in seen if t.endswith("/events") and b"forged" in p]
    assert not _events(d, "availability.conflict"), d.describe()
