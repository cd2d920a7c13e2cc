"""Real services for tests: a Mosquitto broker, a GStreamer RTSP server and generated videos.

Nothing here is mocked: each helper starts the real program in its own temporary directory on a
free loopback port and stops it again, even when the test fails. The broker, the generated
videos and the process helpers live in `har_daemon.tools` (the bench uses them too); the modules
of the same names here re-export them for the tests that import them from here.
"""
