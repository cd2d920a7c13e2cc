"""har-daemon: real-time human-activity recognition with MQTT events."""

__version__ = "0.1.0"
