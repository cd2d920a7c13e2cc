"""Real services for tests: a Mosquitto broker, a GStreamer RTSP server and generated videos.

Nothing here is mocked: each helper starts the real program in its own temporary directory on a
free loopback port and stops it again, even when the test fails.
"""
