"""Real services for the tests: Mosquitto, an RTSP server, generated media."""

pytest_plugins = ["tests.infra.fixtures"]
