"""The segmenter of record-by-copy on a real ffmpeg: segments listed on the daemon's clock,
old ones deleted unless a clip holds them, and a clip joined from them without re-encoding."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from har_daemon.outputs.clips.segments import SEGMENT_S, SegmentRecorder, concat_segments
from har_daemon.tools.media import make_test_video
from har_daemon.video.ffmpeg import FFPROBE
from tests.infra.procs import wait_until


def _probe(path: Path, entries: str) -> list[str]:
    cmd = [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", entries]
    res = subprocess.run([*cmd, "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    return res.stdout.strip().replace("\n", ",").split(",")


def test_segments_roll_and_join_by_copy(tmp_path: Path) -> None:
    video = make_test_video(tmp_path / "main.mp4", 3.0, 25, (320, 240), gop_s=0.5)
    later = [0.0]  # the clock jumps forward by this much

    def clock() -> float:
        return time.monotonic() + later[0]

    rec = SegmentRecorder("cam", str(video), tmp_path / "clips", keep_s=100.0, clock=clock)
    rec.start()
    try:
        wait_until(lambda: len(rec.between(0, 1e9)) >= 3, timeout=30)
        segments = rec.between(0, 1e9)
        assert all(s.path.is_file() and s.path.parent.name == "cam" for s in segments)
        assert all(0 < s.end - s.start <= 2 * SEGMENT_S for s in segments)
        assert rec.covered_until() == segments[-1].end

        out = tmp_path / "clip.mp4"
        assert concat_segments(segments, out) is None
        assert _probe(out, "stream=codec_name,width,height") == ["h264", "320", "240"]
        duration = float(_probe(out, "format=duration")[0])
        listed = sum(s.end - s.start for s in segments)
        assert abs(duration - listed) < 0.5, (duration, listed)

        # A held segment survives its age; the others go once older than keep_s.
        rec.hold("event", segments[-1].start)  # later than the first segment's end
        later[0] = 1000.0
        wait_until(lambda: not segments[0].path.exists(), timeout=10)
        assert segments[-1].path.exists()
        rec.release("event")
        wait_until(lambda: not segments[-1].path.exists(), timeout=10)
    finally:
        rec.stop()
    assert concat_segments([], tmp_path / "none.mp4") == "no segment covers the event"
