"""The daemon end to end: `har-daemon run` as a real process, a real Mosquitto, a real subscriber.

Nothing is mocked. Each test starts `python -m har_daemon run --config F` (the bundled demo model
on the LiteRT backend, so no TensorFlow start-up), feeds it generated videos (files played as
fast as possible unless the test needs wall-clock time, or an RTSP stream from GStreamer) and
checks what a subscriber on the broker, and a reader of stdout, actually receive.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from har_daemon.model.meta import read_meta
from tests.daemon_helpers import (
    DEMO_MODEL,
    EAGER,
    REPO,
    DaemonPool,
    DaemonProcess,
    broker_lines,
    check_event_schema,
    count,
    daemon_config,
    daemon_env,
    json_messages,
    messages,
    parse_iso,
    proc_counts,
    wait_for_json,
    write_config,
)
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.rtsp_server import RtspServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CAMERA = "yard"
META = read_meta(DEMO_MODEL)


def file_camera(source: Path, **options: Any) -> dict[str, Any]:
    return {"name": CAMERA, "source": source, **options}


def looping_camera(source: Path) -> dict[str, Any]:
    """A file played in real time, forever: a stand-in for a live camera."""
    return file_camera(source, loop=True, realtime=True)


# -- 1 and 2: a whole file, events, then a clean exit --------------------------------------------


@dataclass
class FinishedRun:
    broker: MosquittoBroker
    prefix: str
    rc: int
    seconds: float
    daemon: DaemonProcess
    recorder: MqttRecorder

    def topic(self, suffix: str) -> str:
        return f"{self.prefix}/{suffix}"


@pytest.fixture(scope="module")
def finished_run(
    tmp_path_factory: pytest.TempPathFactory, videos: dict[str, Path]
) -> Iterator[FinishedRun]:
    """The daemon once through the Biking-then-HorseRace file, watched by a subscriber that was
    there before it started; the broker stays up for the retained-topic checks."""
    tmp = tmp_path_factory.mktemp("finished_run")
    broker = MosquittoBroker(tmp / "broker").start()
    pool = DaemonPool(tmp)
    rec = MqttRecorder(broker, "e2e/#").start()
    try:
        cfg = daemon_config(
            tmp / "har.toml",
            broker,
            [file_camera(videos["change"], realtime=False)],
            mqtt={"topic_prefix": "e2e"},
        )
        t0 = time.monotonic()
        daemon = pool.start(cfg)
        try:
            rc = daemon.wait(timeout=60)
        except Exception:
            pytest.fail(f"the daemon did not exit at the end of the file\n{daemon.describe()}")
        seconds = time.monotonic() - t0
        # Its last word on the broker: the retained "stopped" sent before disconnecting.
        rec.wait_for("e2e/status", b"stopped", timeout=5)
        yield FinishedRun(broker, "e2e", rc, seconds, daemon, rec)
    finally:
        rec.stop()
        pool.close()
        broker.stop()


def test_events_end_to_end_from_a_file_whose_activity_changes(finished_run: FinishedRun) -> None:
    run, d = finished_run, finished_run.daemon
    assert run.rc == 0, d.describe()
    assert run.seconds < 30, f"took {run.seconds:.1f} s"

    rec = run.recorder
    events_topic = run.topic(f"{CAMERA}/events")
    events = json_messages(rec, events_topic)
    check_event_schema(events, CAMERA, META.classes, META.name)
    # Events are messages, not state: never retained.
    assert all(not retain for t, _, retain, _ in rec.messages if t == events_topic)
    # stdout carries the very same events, one JSON document per line, in the same order.
    assert d.stdout_events() == events

    stopped = [log for log in d.logs() if log.get("event") == "daemon.stopped"]
    assert len(stopped) == 1, d.describe()
    stats = stopped[0]["cameras"][CAMERA]
    assert stats["windows"] >= 20 and stats["events"] == len(events), stats
    # One model-sized window per stride of sampled frames, none dropped for staleness.
    assert stats["stale_windows"] == 0, stats

    # What the video shows: Biking for 10 s, then HorseRace for 10 s.
    starts = [e for e in events if e["type"] == "start"]
    assert [e["activity"] for e in starts] == ["Biking", "HorseRace"], events
    assert events[-1]["type"] == "end"
    gap = parse_iso(starts[1]["started_at"]) - parse_iso(starts[0]["started_at"])
    assert 5.0 <= gap <= 15.0, f"HorseRace started {gap:.1f} s after Biking (video: 10 s)"


def test_retained_topics_after_a_clean_exit(finished_run: FinishedRun) -> None:
    """A subscriber arriving after the daemon left still learns its final state."""
    run = finished_run
    with MqttRecorder(run.broker, f"{run.prefix}/#") as fresh:
        fresh.wait_for(run.topic("status"), b"stopped", timeout=5)
        fresh.wait_for(run.topic(f"{CAMERA}/status"), b"offline", timeout=5)
        fresh.wait_for(run.topic(f"{CAMERA}/activity"), timeout=5)
        time.sleep(0.3)  # anything else retained arrives in the same burst
        by_topic = {t: (p, retain) for t, p, retain, _ in fresh.messages}
    assert set(by_topic) == {
        run.topic("status"),
        run.topic(f"{CAMERA}/status"),
        run.topic(f"{CAMERA}/activity"),
        run.topic(f"{CAMERA}/enabled"),
        run.topic("stats"),  # the final figures, published at exit
        run.topic("instances/default/info"),  # which cameras this instance owns
    }, by_topic
    assert all(retain for _, retain in by_topic.values()), by_topic
    info = json.loads(by_topic[run.topic("instances/default/info")][0])
    assert (info["cameras"], info["status_topic"]) == ([CAMERA], run.topic("status")), info
    assert json.loads(by_topic[run.topic(f"{CAMERA}/enabled")][0]) == {"enabled": True}
    final = json.loads(by_topic[run.topic("stats")][0])
    assert final["cameras"][CAMERA]["finished"] is True and final["cameras"][CAMERA]["windows"] > 0

    state = json.loads(by_topic[run.topic(f"{CAMERA}/activity")][0])
    assert set(state) == {"activity", "confidence", "since", "updated_at"}, state
    # Everything open was ended when the file ended: the camera is idle.
    assert state["activity"] is None and state["confidence"] == 0.0, state
    assert state["updated_at"].endswith("Z")
    if json_messages(run.recorder, run.topic(f"{CAMERA}/events")):
        assert state["since"] is not None and state["since"].endswith("Z"), state


# -- 3 and 4: a live-like source, then SIGKILL or SIGTERM ----------------------------------------


def start_live(
    tmp_path: Path,
    daemons: DaemonPool,
    broker: MosquittoBroker,
    video: Path,
    prefix: str = "har",
    **mqtt: Any,
) -> DaemonProcess:
    cfg = daemon_config(
        tmp_path / f"{prefix}.toml",
        broker,
        [looping_camera(video)],
        mqtt={"topic_prefix": prefix, "publish_scores": True, **mqtt},
        inference=EAGER,
    )
    return daemons.start(cfg)


def test_sigkill_leaves_the_last_will_offline(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    with MqttRecorder(mosquitto, "har/#") as rec:
        d = start_live(tmp_path, daemons, mosquitto, videos["biking"])
        rec.wait_for("har/status", b"online", timeout=20)
        rec.wait_for(f"har/{CAMERA}/status", b"online", timeout=20)
        wait_for_json(rec, f"har/{CAMERA}/scores", timeout=20, daemon=d)
        before = count(rec)
        d.signal(signal.SIGKILL)
        assert d.wait(timeout=5) == -signal.SIGKILL
        t0 = time.monotonic()
        # Published by the broker, not the dead daemon: its Last Will.
        msg = rec.wait_for("har/status", b"offline", timeout=10, after=before)
        assert time.monotonic() - t0 < 5
        assert msg[3] == 1
    with MqttRecorder(mosquitto, "har/status") as fresh:
        _, payload, retain, _ = fresh.wait_for("har/status", timeout=5)
        assert (payload, retain) == (b"offline", True)
    # The broker saw the connection drop, not a DISCONNECT: the "offline" was the Will.
    client_id = f"har-daemon-{socket.gethostname()}-default"
    assert not [
        line
        for line in broker_lines(mosquitto, f"Client {client_id} disconnected")
        if line.endswith(f"Client {client_id} disconnected.")
    ], mosquitto.log_text()[-3000:]


def test_sigterm_exits_promptly_and_ends_the_ongoing_activity(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    with MqttRecorder(mosquitto, "har/#") as rec:
        d = start_live(tmp_path, daemons, mosquitto, videos["biking"])
        rec.wait_for("har/status", b"online", timeout=20)
        start = wait_for_json(
            rec, f"har/{CAMERA}/events", lambda e: e["type"] == "start", timeout=20, daemon=d
        )
        before = count(rec)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        rc = d.wait(timeout=15)
        took = time.monotonic() - t0
        assert rc == 0, d.describe()
        assert took < 5, f"SIGTERM took {took:.1f} s\n{d.describe()}"
        rec.wait_for("har/status", b"stopped", timeout=5, after=before)  # a clean stop
        rec.wait_for(f"har/{CAMERA}/status", b"offline", timeout=5, after=before)
        time.sleep(0.2)
        events = json_messages(rec, f"har/{CAMERA}/events")
        activity = json_messages(rec, f"har/{CAMERA}/activity")

    check_event_schema(events, CAMERA, META.classes, META.name)
    assert d.stdout_events() == events
    # Whatever was going on when the signal came was closed, with reason "finish".
    assert events[-1]["type"] == "end" and events[-1]["reason"] == "finish", events
    assert any(e["type"] == "end" and e["id"] == start["id"] for e in events), events
    assert activity[-1]["activity"] is None, activity
    # A clean DISCONNECT (the broker logs "due to ..." for a dropped connection).
    client_id = f"har-daemon-{socket.gethostname()}-default"
    lines = broker_lines(mosquitto, f"Client {client_id} disconnected")
    assert [line.endswith(f"Client {client_id} disconnected.") for line in lines] == [True], lines


# -- 5: two instances on one broker --------------------------------------------------------------


def test_two_instances_share_a_broker_under_their_own_prefixes(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    sites = ("site-a", "site-b")
    with MqttRecorder(mosquitto, "#") as rec:
        procs = {
            site: start_live(tmp_path, daemons, mosquitto, videos["biking"], site, instance=site)
            for site in sites
        }
        for site, d in procs.items():
            rec.wait_for(f"{site}/status", b"online", timeout=20)
            wait_for_json(rec, f"{site}/{CAMERA}/scores", timeout=20, daemon=d)
            wait_for_json(
                rec, f"{site}/{CAMERA}/events", lambda e: e["type"] == "start", timeout=20, daemon=d
            )
        time.sleep(2.0)  # long enough for a kicked-off client to have reconnected
        for site, d in procs.items():
            assert d.alive(), d.describe()
            assert messages(rec, f"{site}/status") == [b"online"], rec.messages
        before = count(rec)
        for d in procs.values():
            d.signal(signal.SIGTERM)
        for site, d in procs.items():
            assert d.wait(timeout=15) == 0, d.describe()
            rec.wait_for(f"{site}/status", b"stopped", timeout=5, after=before)
        time.sleep(0.2)
        topics = {t for t, _, _, _ in rec.messages}

    assert all(t.startswith(("site-a/", "site-b/")) for t in topics), topics
    for site, d in procs.items():
        events = json_messages(rec, f"{site}/{CAMERA}/events")
        check_event_schema(events, CAMERA, META.classes, META.name)  # own seq from 1
        assert d.stdout_events() == events
    # Derived client ids differ, so the broker kept both connections: one connect each.
    host = socket.gethostname()
    for site in sites:
        client_id = f"har-daemon-{host}-{site}"
        connects = broker_lines(mosquitto, f" as {client_id} ")
        assert len(connects) == 1, broker_lines(mosquitto, "New client connected")
    assert not broker_lines(mosquitto, "already connected"), mosquitto.log_text()[-3000:]


# -- 6: an RTSP camera that goes away and comes back ----------------------------------------------


def test_rtsp_camera_reconnects_without_leaking_threads_or_fds(
    tmp_path: Path,
    mosquitto: MosquittoBroker,
    daemons: DaemonPool,
    rtsp_server_factory: Any,
    videos: dict[str, Path],
) -> None:
    server: RtspServer = rtsp_server_factory(videos["biking"])
    cfg = daemon_config(
        tmp_path / "rtsp.toml",
        mosquitto,
        [
            {
                "name": CAMERA,
                "source": server.url,
                "stall_timeout_s": 2,
                "reconnect_initial_s": 0.5,
                "reconnect_max_s": 2,
            }
        ],
        mqtt={"publish_scores": True},
    )
    status = f"har/{CAMERA}/status"
    scores = f"har/{CAMERA}/scores"
    counts: list[tuple[int, int]] = []
    with MqttRecorder(mosquitto, "har/#") as rec:
        d = daemons.start(cfg)
        rec.wait_for(status, b"online", timeout=20)
        wait_for_json(rec, scores, timeout=20, daemon=d)
        for _ in range(2):
            before = count(rec)
            server.stop()
            rec.wait_for(status, b"offline", timeout=10, after=before)
            assert d.alive(), d.describe()
            time.sleep(2.0)  # down long enough for reconnect attempts to fail and back off
            back = count(rec)
            server.start()
            rec.wait_for(status, b"online", timeout=15, after=back)
            wait_for_json(rec, scores, timeout=15, after=back, daemon=d)
            time.sleep(1.0)  # let the new capture settle (decoder threads started)
            counts.append(proc_counts(d.pid))
        assert d.alive(), d.describe()
        before = count(rec)
        d.signal(signal.SIGTERM)
        assert d.wait(timeout=15) == 0, d.describe()
        rec.wait_for(status, b"offline", timeout=5, after=before)

    (threads1, fds1), (threads2, fds2) = counts
    assert threads2 <= threads1 + 3, counts
    assert fds2 <= fds1 + 1, counts  # a capture left open would hold its socket
    logs = d.logs()
    stopped = [log for log in logs if log.get("event") == "daemon.stopped"]
    assert stopped and stopped[0]["cameras"][CAMERA]["reconnects"] == 2, d.describe()
    assert sum(log.get("event") == "camera.open_failed" for log in logs) >= 2, d.describe()
    print(f"threads, fds after reconnect 1 and 2: {counts}")


# -- 7: check-config -----------------------------------------------------------------------------


def _har(
    command: str, config: Path, tmp_path: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", command, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**daemon_env(tmp_path), **(env or {})},
    )


def test_check_config_accepts_a_good_config(tmp_path: Path, videos: dict[str, Path]) -> None:
    cfg = daemon_config(tmp_path / "good.toml", None, [file_camera(videos["biking"])])
    result = _har("check-config", cfg, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("configuration OK:"), result.stdout
    assert META.name in result.stdout and f"{CAMERA} (file)" in result.stdout
    # HAR_<SECTION>__<FIELD> variables override the file.
    result = _har("check-config", cfg, tmp_path, {"HAR_MQTT__PORT": "18883"})
    assert result.returncode == 0, result.stderr
    assert ":18883" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("case", "named"),
    [
        ("unknown_key", "mqtt.prot: unknown option; did you mean 'port'?"),
        ("port_out_of_range", "mqtt.port:"),
        ("missing_model_dir", "no-such-model"),
        ("missing_file_source", "no-such-video.mp4"),
    ],
)
def test_check_config_rejects_a_bad_config_in_one_line(
    case: str, named: str, tmp_path: Path, videos: dict[str, Path]
) -> None:
    camera = file_camera(videos["biking"])
    model: dict[str, Any] = {"path": DEMO_MODEL, "backend": "litert"}
    mqtt: dict[str, Any] = {"enabled": False}
    if case == "unknown_key":
        mqtt["prot"] = 1883
    elif case == "port_out_of_range":
        mqtt["port"] = 70000
    elif case == "missing_model_dir":
        model["path"] = tmp_path / "no-such-model"
    else:
        camera["source"] = tmp_path / "no-such-video.mp4"
    cfg = write_config(tmp_path / f"{case}.toml", {"model": model, "mqtt": mqtt}, [camera])

    result = _har("check-config", cfg, tmp_path)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("har-daemon: error:"), result.stderr
    if lines[0] == f"har-daemon: error: invalid configuration in {cfg} (1 problem):":
        # Invalid values: a header, then one line per bad field (README, config.load_config).
        lines = lines[1:]
    assert len(lines) == 1, result.stderr
    assert named in lines[0], result.stderr


def test_run_refuses_a_bad_config_before_connecting(
    tmp_path: Path, mosquitto: MosquittoBroker
) -> None:
    """Start-up validates everything first: one line, exit 2, and the broker never sees it."""
    cfg = daemon_config(
        tmp_path / "bad.toml", mosquitto, [file_camera(tmp_path / "no-such-video.mp4")]
    )
    result = _har("run", cfg, tmp_path)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("har-daemon:")]
    assert len(errors) == 1 and "no-such-video.mp4" in errors[0], result.stderr
    assert not broker_lines(mosquitto, "as har-daemon-"), mosquitto.log_text()[-2000:]
