"""pytest fixtures for the real test services.

tests/conftest.py loads them with `pytest_plugins = ["tests.infra.fixtures"]`; a test module can
also import them by name (`from tests.infra.fixtures import mosquitto  # noqa: F401`).
Every service a fixture starts is stopped at teardown, whatever the test's outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from har_daemon.tools.broker import MosquittoBroker
from har_daemon.tools.media import make_test_video
from tests.daemon_helpers import DaemonPool
from tests.infra.rtsp_server import RtspServer


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A running anonymous broker on a free loopback port (function-scoped)."""
    broker = MosquittoBroker(tmp_path / "mosquitto")
    try:
        broker.start()
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def mosquitto_factory(tmp_path: Path) -> Iterator[Callable[..., MosquittoBroker]]:
    """make(**MosquittoBroker options) -> a started broker; all are stopped at teardown."""
    brokers: list[MosquittoBroker] = []

    def make(**options: Any) -> MosquittoBroker:
        broker = MosquittoBroker(tmp_path / f"mosquitto-{len(brokers)}", **options)
        brokers.append(broker)
        return broker.start()

    try:
        yield make
    finally:
        for broker in brokers:
            broker.stop()


@pytest.fixture(scope="session")
def sample_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s 320x240 25 fps H.264 MP4 test pattern (made once per session)."""
    return make_test_video(tmp_path_factory.mktemp("media") / "testsrc2_4s.mp4", seconds=4)


@pytest.fixture
def rtsp_server_factory(tmp_path: Path) -> Iterator[Callable[..., RtspServer]]:
    """make(video_path, **RtspServer options) -> a started server already serving frames.

    All servers are stopped at teardown.
    """
    servers: list[RtspServer] = []

    def make(video_path: str | Path, **options: Any) -> RtspServer:
        server = RtspServer(video_path, workdir=tmp_path / f"rtsp-{len(servers)}", **options)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[DaemonPool]:
    """Starts `har-daemon run` processes; whatever still runs is SIGKILLed at teardown."""
    pool = DaemonPool(tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Synthetic activity videos for the demo model, written once per session.

    "change": Biking then HorseRace, 10 s each (two occurrences); "biking": 6 s of Biking.
    """
    from har_daemon.training.synth import write_activity_video

    folder = tmp_path_factory.mktemp("videos")
    return {
        "change": write_activity_video(
            folder / "biking_then_horserace.mp4", [("Biking", 10.0), ("HorseRace", 10.0)], seed=7
        ),
        "biking": write_activity_video(folder / "biking.mp4", [("Biking", 6.0)], seed=11),
    }
