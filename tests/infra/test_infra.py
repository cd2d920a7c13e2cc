"""The real test services themselves: Mosquitto, the GStreamer RTSP server, generated videos."""

from __future__ import annotations

import time

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from har_daemon.tools.broker import MosquittoBroker, MqttRecorder
from har_daemon.tools.media import make_test_video
from har_daemon.tools.procs import pid_alive, port_accepts
from har_daemon.video.frames import probe_video
from tests.infra.rtsp_server import RtspServer, open_rtsp_capture, read_frames


def _roundtrip(broker: MosquittoBroker, topic: str, payload: bytes) -> None:
    """A real paho client publishes; a real subscriber receives it."""
    with MqttRecorder(broker, topic) as rec:
        pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        try:
            pub.publish(topic, payload, qos=1).wait_for_publish(5)
        finally:
            pub.disconnect()
            pub.loop_stop()
        rec.wait_for(topic, payload, timeout=5)


def test_broker_serves_a_real_client_and_restarts_on_the_same_port(
    mosquitto: MosquittoBroker,
) -> None:
    _roundtrip(mosquitto, "infra/a", b"one")
    port, pid = mosquitto.port, mosquitto.pid
    assert pid is not None and pid_alive(pid)

    mosquitto.stop()
    assert not pid_alive(pid)
    assert not port_accepts(mosquitto.host, port)

    mosquitto.start()
    assert mosquitto.port == port and mosquitto.pid != pid
    _roundtrip(mosquitto, "infra/b", b"two")
    assert "mosquitto version" in mosquitto.log_text()


def test_killed_broker_leaves_no_process_and_persistence_survives_a_stop(
    mosquitto_factory,
) -> None:
    broker = mosquitto_factory(persistence=True)
    pub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    pub.publish("infra/kept", b"retained", qos=1, retain=True).wait_for_publish(5)
    pub.disconnect()
    pub.loop_stop()

    broker.stop()  # SIGTERM: mosquitto saves its database
    assert list(broker.persistence_dir.iterdir())
    broker.start()
    with MqttRecorder(broker, "infra/kept") as rec:
        assert rec.wait_for("infra/kept", b"retained", timeout=5)[2] is True  # retained

    pid = broker.pid
    broker.kill()
    assert pid is not None and not pid_alive(pid)
    assert not broker.is_running


def test_broker_with_users_refuses_anonymous_clients(mosquitto_factory) -> None:
    broker = mosquitto_factory(users={"alice": "pw-1"})
    results: list[int] = []

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        results.append(reason_code.value)

    for username in (None, "alice"):
        client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.on_connect = on_connect
        if username:
            client.username_pw_set(username, "pw-1")
        client.connect(broker.host, broker.port)
        deadline = time.monotonic() + 5
        n = len(results)
        while len(results) == n and time.monotonic() < deadline:
            client.loop(0.1)
        client.disconnect()
    assert results[0] >= 0x80  # anonymous refused
    assert results[1] == 0


def test_context_manager_stops_the_broker(tmp_path) -> None:
    with MosquittoBroker(tmp_path / "b", tls=True) as broker:
        pid = broker.pid
        assert broker.ca_cert.is_file() and port_accepts(broker.host, broker.tls_port)
    assert pid is not None and not pid_alive(pid)


def test_make_test_video_is_readable_by_opencv(tmp_path) -> None:
    path = make_test_video(tmp_path / "v.mp4", seconds=1.2, fps=10, size=(160, 96))
    info = probe_video(path, exact=True)
    assert (info.width, info.height, info.fps, info.frame_count) == (160, 96, 10.0, 12)


def _closest_source_frame_error(frame: np.ndarray, source: list[np.ndarray]) -> float:
    return min(float(np.mean(np.abs(frame.astype(np.int16) - s.astype(np.int16)))) for s in source)


def test_rtsp_server_loops_the_video_and_restarts(tmp_path, rtsp_server_factory) -> None:
    video = make_test_video(tmp_path / "one_second.mp4", seconds=1, fps=25)
    cap = cv2.VideoCapture(str(video))
    source = [cap.read()[1] for _ in range(25)]
    cap.release()

    server = rtsp_server_factory(video, name="cam1")
    assert server.url == f"rtsp://127.0.0.1:{server.port}/cam1"
    start = time.monotonic()
    frames = read_frames(server.url, 40)  # more frames than the file has: it loops
    assert time.monotonic() - start >= 1.0  # served at the video's rate, not flat out
    assert all(f.shape == (240, 320, 3) for f in frames)
    # What arrives is the video (re-encoded), not some other picture.
    assert max(_closest_source_frame_error(f, source) for f in frames[::5]) < 6

    pid, port = server.pid, server.port
    server.stop()
    assert pid is not None and not pid_alive(pid)
    assert not port_accepts(server.host, port)
    with pytest.raises(RuntimeError):
        read_frames(server.url, 1, timeout_s=1)

    server.start()
    assert server.port == port and server.pid != pid
    assert len(read_frames(server.url, 5, transport="udp")) == 5


def test_rtsp_server_freeze_stalls_the_stream(rtsp_server_factory, sample_video) -> None:
    server: RtspServer = rtsp_server_factory(sample_video)
    cap = open_rtsp_capture(server.url, timeout_s=0.5)
    try:
        assert cap.read()[0]
        server.freeze()
        start = time.monotonic()
        while cap.read()[0]:  # what was already buffered, then a read timeout
            assert time.monotonic() - start < 10
        server.thaw()
    finally:
        cap.release()
    assert len(read_frames(server.url, 3)) == 3
