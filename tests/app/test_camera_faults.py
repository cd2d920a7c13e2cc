"""Issue 21 item 2: a camera's fault stays that camera's.

The real daemon (`python -m har_daemon run`, LiteRT, the bundled person-centric fight model)
against a real Mosquitto watches two cameras: a real CCTV fight clip, looped, and a video whose
frames are 1x2 or 2x1 pixels. Before, the tiny camera's capture thread died in `cv2.resize`
(the working frame had a side of 0) and the daemon exited 1 with every camera down
(`daemon.component_died`). Now the tiny camera alone is failed: retained `offline` on its status
topic, unhealthy in `/healthz` with the reason, one `camera.failed` line, while the fight camera
keeps producing windows and events. check-config refuses the same configuration in one line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.app.fault_helpers import (
    check_config,
    events_of,
    http_json,
    json_lines,
    looping,
    no_exceptions,
    one_error_line,
    stats_lines,
    stop,
    wait_events,
)
from tests.daemon_helpers import EAGER, DaemonPool, daemon_config
from tests.infra.media import make_test_video
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder
from tests.infra.procs import LOOPBACK, free_port, wait_until
from tests.shared_data import FIGHT_DATA, REPO, require

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

FIGHT_MODEL = REPO / "models" / "fight"


@pytest.mark.parametrize(("width", "height"), [(1, 2), (2, 1)])
def test_a_camera_with_frames_too_small_fails_alone(
    tmp_path: Path, broker: MosquittoBroker, daemons: DaemonPool, width: int, height: int
) -> None:
    clip = require(FIGHT_DATA / "fight" / "fi004.mp4")  # fight tops noFight: events
    tiny = make_test_video(
        tmp_path / f"tiny_{width}x{height}.mkv", 2, 10, (width, height), "ffv1", "testsrc"
    )
    port = free_port()
    cfg = daemon_config(
        tmp_path / "har.toml",
        broker,
        [looping("yard", clip), {"name": "tiny", "source": str(tiny), "realtime": True}],
        model={"path": FIGHT_MODEL},
        inference=EAGER,
        extra={
            "spool": {"path": tmp_path / "spool"},
            "stats": {"interval": 1},
            "metrics": {"port": port, "host": LOOPBACK},
        },
    )
    refused = check_config(cfg)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    one_error_line(refused.stderr, str(tiny), f"frames of {width}x{height} px are too small")

    with MqttRecorder(broker, "har/#") as rec:
        d = daemons.start(cfg)
        wait_events(d, 1, 120)  # the fight camera raises events

        def yard_windows() -> int:
            lines = stats_lines(d.logs())
            return lines[-1]["cameras"]["yard"]["windows"] if lines else 0

        wait_until(lambda: yard_windows() >= 3, 60, message=d.describe)
        windows = yard_windows()
        wait_until(lambda: yard_windows() > windows, 60, message=d.describe)  # and goes on
        assert d.alive(), d.describe()
        wait_until(lambda: rec.payloads("har/tiny/status")[-1:] == [b"offline"], 10)
        code, health = http_json(f"http://{LOOPBACK}:{port}/healthz")
        stats = json.loads(rec.payloads("har/stats")[-1])
        assert stop(d) == 0, d.describe()

    assert code == 503, health
    assert health["cameras"]["yard"] == {"healthy": True, "reasons": []}, health
    assert not health["cameras"]["tiny"]["healthy"], health
    assert "too small" in health["cameras"]["tiny"]["reasons"][0], health
    assert stats["cameras"]["tiny"]["failures"] == 1, stats
    assert "too small" in stats["cameras"]["tiny"]["error"], stats
    assert stats["cameras"]["yard"]["error"] is None, stats
    logs = json_lines(d)
    no_exceptions(logs)
    assert not events_of(logs, "daemon.component_died")
    failed = [e for e in events_of(logs, "camera.failed") if e["camera"] == "tiny"]
    assert len(failed) == 1 and failed[0]["action"] == "gave up", failed
    assert f"{width}x{height}" in failed[0]["error"], failed
    print(
        f"\n[2] {width}x{height} camera: {failed[0]['error']}; yard kept going "
        f"({yard_windows()} windows, {len(d.stdout_events())} events)"
    )
