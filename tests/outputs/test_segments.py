"""The segmenter of record-by-copy on a real ffmpeg: segments listed on the daemon's clock,
old ones deleted unless a clip holds them, and a clip joined from them by copying bytes.

"Not re-encoded" is checked packet by packet: the clip's packets have the sizes of a run of
the source's consecutive packets (the source file loops), so a missing or misplaced segment,
or a re-encode, breaks the run.
"""

from __future__ import annotations

import math
import subprocess
import time
from pathlib import Path

import pytest

from har_daemon.outputs.clips.recorder import ClipRecorder
from har_daemon.outputs.clips.segments import (
    SEGMENT_S,
    Segment,
    SegmentRecorder,
    join_segments,
    one_run,
)
from har_daemon.tools.media import make_test_video
from har_daemon.video.ffmpeg import FFMPEG, FFPROBE
from tests.infra.procs import wait_until


def _probe(path: Path, entries: str) -> list[str]:
    cmd = [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries", entries]
    res = subprocess.run([*cmd, "-of", "csv=p=0", str(path)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip().replace("\n", ",").split(",")


def _packets(path: Path) -> list[tuple[int, float]]:
    """(size, decode time) of each video packet, in file order."""
    values = _probe(path, "packet=size,dts_time")
    return [(int(s), float(t)) for t, s in zip(values[::2], values[1::2], strict=True)]


def _is_run_of(sizes: list[int], source: list[int]) -> bool:
    """`sizes` is a run of consecutive packets of `source` played in a loop."""
    looped = source * (len(sizes) // len(source) + 2)
    return any(looped[i : i + len(sizes)] == sizes for i in range(len(source)))


@pytest.fixture
def recorded(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A segmenter on a looped 3 s file (key frame every 0.5 s) with >= 4 segments, the
    clock it stamps with (moved forward by `later[0]`), and the file's packet sizes."""
    video = make_test_video(tmp_path / "main.mp4", 3.0, 25, (320, 240), gop_s=0.5)
    later = [0.0]

    def clock() -> float:
        return time.monotonic() + later[0]

    rec = SegmentRecorder("cam", str(video), tmp_path / "clips", keep_s=100.0, clock=clock)
    rec.start()
    try:
        wait_until(lambda: len(rec.between(0, math.inf)) >= 4, timeout=40)
        yield rec, later, [size for size, _ in _packets(video)]
    finally:
        rec.stop()


def test_segments_roll_and_join_by_copy(recorded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rec, later, source = recorded
    segments = rec.between(0, math.inf)[:4]
    assert all(s.path.is_file() and s.path.parent.name == "cam" for s in segments)
    assert all(0 < s.end - s.start <= 2 * SEGMENT_S for s in segments)
    assert [s.number for s in segments] == list(range(4))
    assert len({s.init for s in segments}) == 1 and segments[0].init.is_file()

    out = tmp_path / "clip.mp4"
    assert join_segments(segments, out) is None
    assert _probe(out, "stream=codec_name,width,height") == ["h264", "320", "240"]
    packets = _packets(out)
    assert _is_run_of([size for size, _ in packets], source), "not the source's packets"
    # Every segment's packets, each once, in order: rebased to start at 0, never going back.
    per_segment = [len(_packets_of_segment(s)) for s in segments]
    assert len(packets) == sum(per_segment)
    times = [t for _, t in packets]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert abs(times[0]) < 0.1, times[:3]
    duration = float(_probe(out, "format=duration")[0])
    listed = sum(s.end - s.start for s in segments)
    assert abs(duration - listed) < 0.5, (duration, listed)
    decoded = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True
    )
    assert decoded.returncode == 0 and not decoded.stderr.strip(), decoded.stderr

    # Given out of order, the join still writes them in order.
    shuffled = tmp_path / "shuffled.mp4"
    assert join_segments([segments[2], segments[0], segments[3], segments[1]], shuffled) is None
    assert shuffled.read_bytes() == out.read_bytes()

    # A held segment survives its age; the others go once older than keep_s.
    rec.hold("event", segments[-1].start)  # later than the first segment's end
    later[0] = 1000.0
    wait_until(lambda: not segments[0].path.exists(), timeout=10)
    assert segments[-1].path.exists() and segments[-1].init.exists()
    rec.release("event")
    wait_until(lambda: not segments[-1].path.exists(), timeout=10)
    # The running ffmpeg's init segment stays: the segments it writes next still need it.
    assert segments[-1].init.exists()
    assert join_segments([], tmp_path / "none.mp4") == "no segment covers the event"


def _packets_of_segment(seg: Segment) -> list[tuple[int, float]]:
    """The packets of one media segment, read as a file of its own (init + segment)."""
    single = seg.path.with_suffix(".single.mp4")
    single.write_bytes(seg.init.read_bytes() + seg.path.read_bytes())
    try:
        return _packets(single)
    finally:
        single.unlink()


def test_a_missing_segment_fails_the_join(recorded, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rec, _later, _source = recorded
    first, second, third = rec.between(0, math.inf)[:3]
    failure = join_segments([first, third], tmp_path / "gap.mp4")
    assert failure is not None and "[1] missing" in failure, failure
    second.path.unlink()
    failure = join_segments([first, second, third], tmp_path / "deleted.mp4")
    assert failure is not None and second.path.name in failure, failure


def test_one_run_keeps_the_longer_run_of_a_restart(tmp_path: Path) -> None:
    def seg(n: int, start: float, end: float, run: str) -> Segment:
        return Segment(tmp_path / f"seg{n:09d}.m4s", start, end, n, tmp_path / run)

    before = [seg(3, 0.0, 2.0, "init3"), seg(4, 2.0, 4.0, "init3")]
    after = [seg(5, 9.0, 10.0, "init5")]
    assert one_run([after[0], before[1], before[0]]) == before
    longer = [seg(5, 9.0, 12.0, "init5"), seg(6, 12.0, 14.0, "init5")]
    assert one_run([*before, *longer]) == longer
    assert join_segments([*before, *longer], tmp_path / "x.mp4") is not None


def test_a_copied_clip_covers_its_pre_roll_and_post_roll(tmp_path: Path) -> None:
    """Through `ClipRecorder`: an event of 0.5 s with 4 s of pre-roll and 1 s of post-roll
    gives a clip of at least 5.5 s (at most a segment more at either end). Segments here last
    1.5-2.5 s: a clip from the event's start on, without its pre-roll, would be 2 of them."""
    video = make_test_video(tmp_path / "main.mp4", 3.0, 25, (320, 240), gop_s=0.5)
    rec = SegmentRecorder("cam", str(video), tmp_path / "clips", keep_s=20.0, clock=time.time)
    clips = ClipRecorder(
        tmp_path / "clips",
        fps=25,
        pre_roll_s=4.0,
        post_roll_s=1.0,
        max_clip_s=60,
        max_bytes=10**9,
        max_age_s=3600,
        history=None,
        copy_from={"cam": rec},  # started by the recorder, stopped by close_all
    )
    try:
        wait_until(lambda: len(rec.between(0, math.inf)) >= 4, timeout=40)
        t0 = time.time()  # the clock of `tick`
        path = clips.start("e1", "cam", "walk", t0)
        assert clips.end("e1", t0 + 0.5) == path
        wait_until(lambda: (clips.tick(), path.is_file())[1], timeout=30)
    finally:
        clips.close_all()
    duration = float(_probe(path, "format=duration")[0])
    assert 5.5 - 0.3 <= duration <= 5.5 + 2 * 2 * SEGMENT_S, duration
    source = [size for size, _ in _packets(video)]
    assert _is_run_of([size for size, _ in _packets(path)], source)
    assert clips.stats.clips_saved == 1 and clips.stats.clips_failed == 0
