"""Detect on the sub-stream, record the main stream: event clips cut by stream copy.

Two real RTSP mounts (GStreamer, tests/infra) serve the same scene: `main` at 640x480 and `sub`
at 160x120. The daemon analyses `sub`; its clips must have `main`'s resolution and carry
`main`'s own H.264 parameter sets byte for byte (SPS and PPS): a re-encode would write its own.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from har_daemon.video.ffmpeg import FFPROBE
from tests.daemon_helpers import EAGER, DaemonPool, daemon_config
from tests.infra.procs import wait_until

pytestmark = pytest.mark.slow


def _probe(url_or_path: str) -> dict[str, Any]:
    cmd = [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_streams", "-show_data"]
    if url_or_path.startswith("rtsp"):
        cmd += ["-rtsp_transport", "tcp"]
    res = subprocess.run([*cmd, url_or_path], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    fields: dict[str, Any] = {}
    lines = iter(res.stdout.splitlines())
    for line in lines:
        if line == "extradata=":
            dump = []
            for row in lines:
                if not re.match(r"^[0-9a-f]{8}:", row):
                    break
                dump.append("".join(row[10:49].split()))
            fields["extradata"] = bytes.fromhex("".join(dump))
        elif "=" in line:
            key, value = line.split("=", 1)
            fields[key] = value
    return fields


def _nal_units(annex_b: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream (start codes 00 00 01 / 00 00 00 01).

    Zero bytes at either end belong to the start codes (a 4-byte code's first zero, trailing
    zeros), not to the unit: an SPS or PPS ends with its stop bit, never with a zero byte.
    """
    return [n.strip(b"\x00") for n in re.split(b"\x00\x00\x01", annex_b) if n.strip(b"\x00")]


def test_event_clips_are_the_main_stream_copied(
    tmp_path: Path, daemons: DaemonPool, rtsp_server_factory: Any, videos: dict[str, Path]
) -> None:
    main = rtsp_server_factory(videos["change"], name="main", size=(640, 480))
    sub = rtsp_server_factory(videos["change"], name="sub", size=(160, 120))
    clips_dir = tmp_path / "clips"
    cfg = daemon_config(
        tmp_path / "har.toml",
        None,
        [{"name": "door", "source": sub.url, "record_source": main.url}],
        inference=EAGER,
        extra={
            "clips": {"enabled": True, "path": clips_dir, "pre_roll_s": 2, "post_roll_s": 1},
        },
    )
    d = daemons.start(cfg)

    def clips() -> list[dict[str, Any]]:
        ends = [e for e in d.stdout_events() if e["type"] == "end" and e.get("clip")]
        return [e for e in ends if Path(e["clip"]).is_file()]

    wait_until(lambda: d.alive() and clips(), timeout=90, message=d.describe)
    end = clips()[0]
    clip = _probe(end["clip"])
    source = _probe(main.url)
    analysed = _probe(sub.url)
    assert (int(analysed["width"]), int(analysed["height"])) == (160, 120)
    assert (int(clip["width"]), int(clip["height"])) == (640, 480), clip
    for key in ("codec_name", "profile", "level", "pix_fmt", "has_b_frames"):
        assert clip[key] == source[key], (key, clip[key], source[key])
    # The main stream's own SPS and PPS are inside the clip's avcC: copied, not re-encoded.
    units = _nal_units(source["extradata"])
    assert {u[0] & 0x1F for u in units} >= {7, 8}, units  # an SPS and a PPS
    for unit in units:
        assert unit in clip["extradata"], (unit.hex(), clip["extradata"].hex())
    # About the event plus its pre- and post-roll, cut at segment boundaries (<= 2 s each).
    expected = end["duration_s"] + 2 + 1
    assert expected - 1 <= float(clip["duration"]) <= expected + 2 * 2 + 1, (clip, end)
    logs = [line for line in d.logs() if line.get("event") == "clips.saved"]
    assert logs and logs[0]["codec"] == "copy", logs
    assert Path(end["clip"]).parent == clips_dir
    assert not list((clips_dir / ".partial").iterdir())

    # A daemon killed outright leaves no segmenter writing on behind it.
    assert _segmenters(clips_dir), "no ffmpeg segmenter found while the daemon runs"
    d.kill()
    wait_until(lambda: not _segmenters(clips_dir), timeout=10, message="ffmpeg outlived the daemon")


def _segmenters(clips_dir: Path) -> list[int]:
    """Live processes whose command line names the clip directory's segments."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if str(clips_dir / ".segments").encode() in cmdline and state != "Z":
            found.append(int(proc.name))
    return found
