"""Issue 21 item 7: clips follow `[spool] path`, and what the daemon writes is private.

The real daemon (demo model, LiteRT) runs a whole file against a real Mosquitto with a spool
directory and clips on but no `[clips] path`, outside systemd, started with the common umask
022. Before, clips went to `$XDG_STATE_HOME/har-daemon/clips` whatever the spool path said,
as 0644 files in a 0755 folder. Now they are in `<spool>/clips`, files 0600 and folders 0700,
and so are the spool's own files.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.daemon_helpers import EAGER, DaemonPool, daemon_config, json_messages
from tests.infra.mosquitto import MosquittoBroker, MqttRecorder

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

CAMERA = "porch"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_clips_go_beside_the_spool_and_nothing_is_world_readable(
    tmp_path: Path, mosquitto: MosquittoBroker, daemons: DaemonPool, videos: dict[str, Path]
) -> None:
    spool = tmp_path / "data" / "spool"
    cfg = daemon_config(
        tmp_path / "har.toml",
        mosquitto,
        [{"name": CAMERA, "source": videos["change"], "realtime": False}],
        inference=EAGER,
        extra={
            "spool": {"path": spool},
            "clips": {"enabled": True, "pre_roll_s": 1, "post_roll_s": 0.5, "fps": 5},
        },
    )
    previous = os.umask(0o022)  # what a login shell usually has: the daemon must not rely on it
    try:
        with MqttRecorder(mosquitto, "har/#") as rec:
            d = daemons.start(cfg)
            assert d.wait(timeout=120) == 0, d.describe()
            rec.wait_for("har/status", b"stopped", timeout=5)
            ends = [e for e in json_messages(rec, f"har/{CAMERA}/events") if e["type"] == "end"]
    finally:
        os.umask(previous)

    clips = [Path(e["clip"]) for e in ends if e.get("clip")]
    assert clips, ends
    for clip in clips:
        assert clip.parent == spool / "clips", clip
        assert _mode(clip) == 0o600, (clip, oct(_mode(clip)))
    assert not (d.stdout_path.parent / "state" / "har-daemon" / "clips").exists()
    for folder in (spool, spool / "clips", spool / "clips" / ".partial"):
        assert _mode(folder) == 0o700, (folder, oct(_mode(folder)))
    spool_files = [p for p in spool.iterdir() if p.is_file()]
    assert spool_files, sorted(spool.iterdir())
    for path in spool_files:
        assert _mode(path) == 0o600, (path, oct(_mode(path)))
