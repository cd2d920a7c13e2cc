"""The tests' Mosquitto broker and recorder live in `har_daemon.tools.broker` (the bench's too)."""

from har_daemon.tools.broker import MosquittoBroker, MqttRecorder

__all__ = ["MosquittoBroker", "MqttRecorder"]
