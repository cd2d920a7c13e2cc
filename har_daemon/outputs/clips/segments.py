"""Record by copy: a camera's main stream kept as a rolling set of short stream-copied segments.

IP cameras offer a low-resolution sub-stream (what the daemon decodes and analyses) and a full
main stream. For a camera with a `record_source`, one `ffmpeg` per camera reads the main stream
and writes it, **without decoding or re-encoding** (`-c copy`), with its HLS muxer as
fragmented MP4: one init segment per ffmpeg run and media segments of about `SEGMENT_S`
seconds (cut at the stream's key frames) into `<clips>/.segments/<camera>/`. An event's clip is
then the init segment followed by the media segments covering its pre-roll to post-roll, joined
in this process by copying bytes (`join_segments`, `fmp4`): no process is started per clip, and
the clip has the main stream's resolution and codec.

Times: ffmpeg lists each finished segment with its duration in its playlist; this recorder's
thread stamps the segment's end with the daemon's timeline clock when the segment appears there
and its start that duration earlier, so segments and events share one clock. Clips are cut at
segment boundaries: up to a segment (a key-frame interval or `SEGMENT_S`) more than asked.

Segments older than `keep_s` are deleted, unless an open clip still needs them (`hold`). A
lost stream restarts ffmpeg after a doubling delay with a new init segment; numbering
continues, so no name is reused.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from har_daemon.core.logs import get_logger
from har_daemon.core.parent_death import die_with_parent
from har_daemon.core.redact import redact_url
from har_daemon.outputs.clips.fmp4 import Fmp4Error, check_init, fragments
from har_daemon.video.ffmpeg import FFMPEG

log = get_logger(__name__)

SEGMENTS_DIR = ".segments"
SEGMENT_S = 2.0
"""Target segment length: the pre-roll's granularity (cuts fall on key frames)."""
POLL_S = 0.25
RESTART_MAX_S = 30.0
PLAYLIST = "segments.m3u8"
PLAYLIST_SIZE = 10
"""Segments the playlist lists: the recorder's thread may stall this many segments unnoticed."""
_SEGMENT_NAME = re.compile(r"seg(\d{9})\.m4s")
_INIT_LINE = re.compile(r'#EXT-X-MAP:URI="([^"]+)"')


@dataclass(frozen=True)
class Segment:
    path: Path
    start: float  # timeline seconds
    end: float
    number: int
    init: Path  # the init segment of the ffmpeg run that wrote it


def segment_command(
    source: str, directory: Path, first_number: int, rtsp_transport: str | None
) -> list[str]:
    """The ffmpeg command that copies `source`'s first video stream into numbered fMP4
    segments, with the init segment `init<first_number>.mp4`."""
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error"]
    if source.lower().startswith("rtsp"):
        cmd += ["-rtsp_transport", rtsp_transport or "tcp"]
    elif "://" not in source:
        cmd += ["-re", "-stream_loop", "-1"]  # a file plays as a live camera (tests, bench)
    cmd += ["-i", source, "-map", "0:v:0", "-c", "copy", "-an"]
    cmd += ["-f", "hls", "-hls_time", f"{SEGMENT_S:g}", "-hls_list_size", str(PLAYLIST_SIZE)]
    cmd += ["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", f"init{first_number:09d}.mp4"]
    cmd += ["-hls_segment_filename", str(directory / "seg%09d.m4s"), "-hls_flags", "temp_file"]
    return [*cmd, "-start_number", str(first_number), str(directory / PLAYLIST)]


def one_run(segments: list[Segment]) -> list[Segment]:
    """The segments of the ffmpeg run that recorded most of `segments`, in order.

    Segments of two runs (a restart in the clip: a gap in the stream, perhaps new parameters)
    cannot be joined into one file; the clip keeps the longer side.
    """
    runs: dict[Path, list[Segment]] = {}
    for seg in sorted(segments, key=lambda s: s.number):
        runs.setdefault(seg.init, []).append(seg)
    return max(runs.values(), key=lambda run: (sum(s.end - s.start for s in run), run[0].number))


def join_segments(segments: list[Segment], out: Path) -> str | None:
    """Write the MP4 `out`: the init segment, then the media segments' fragments, by copying
    bytes (see `fmp4`); the failure's reason, or None. `segments`: one run's, consecutive."""
    if not segments:
        return "no segment covers the event"
    ordered = sorted(segments, key=lambda s: s.number)
    inits = {s.init for s in ordered}
    if len(inits) > 1:
        return f"segments of {len(inits)} ffmpeg runs (join one run's: one_run)"
    numbers = [s.number for s in ordered]
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing:
        return f"segments {missing} missing between {numbers[0]} and {numbers[-1]}"
    bases: dict[int, int] = {}
    try:
        with open(out, "wb") as f:
            init = ordered[0].init.read_bytes()
            check_init(init)
            f.write(init)
            for seg in ordered:
                f.write(fragments(seg.path.read_bytes(), bases))
    except (OSError, Fmp4Error) as exc:
        return f"joining segments failed: {exc}"
    return None


class SegmentRecorder:
    """One camera's segmenter: its ffmpeg process and the list of finished segments."""

    def __init__(
        self,
        camera: str,
        source: str,
        clips_dir: Path,
        *,
        keep_s: float,
        clock: Callable[[], float],
        rtsp_transport: str | None = None,
    ) -> None:
        self.camera = camera
        self.source = source
        self.directory = Path(clips_dir) / SEGMENTS_DIR / camera
        self.keep_s = keep_s
        self.clock = clock
        self.rtsp_transport = rtsp_transport
        self.restarts = 0
        self._segments: list[Segment] = []
        self._holds: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._next_number = 0
        self._playlist_seen: tuple[int, int] | None = None  # (inode, mtime) last read
        self._init: Path | None = None  # the running ffmpeg's init segment
        self._thread = threading.Thread(target=self._run, name=f"segments-{camera}", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)  # a previous run's segments
        self.directory.mkdir(parents=True, exist_ok=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- what clips ask ----------------------------------------------------------------------

    def hold(self, key: str, since: float) -> None:
        """Keep the segments ending after `since` until `release(key)` (an open clip)."""
        with self._lock:
            self._holds[key] = since

    def release(self, key: str) -> None:
        with self._lock:
            self._holds.pop(key, None)

    def covered_until(self) -> float | None:
        """Timeline end of the newest finished segment."""
        with self._lock:
            return self._segments[-1].end if self._segments else None

    def between(self, t0: float, t1: float) -> list[Segment]:
        """The finished segments overlapping [t0, t1], oldest first."""
        with self._lock:
            return [s for s in self._segments if s.end > t0 and s.start < t1]

    # -- the thread --------------------------------------------------------------------------

    def _run(self) -> None:
        delay = 1.0
        while not self._stopping.is_set():
            self._spawn()
            while not self._stopping.wait(POLL_S):
                self._collect()
                self._expire()
                if self._proc is not None and self._proc.poll() is not None:
                    break
            self._terminate()
            self._collect()
            if self._stopping.is_set():
                return
            self.restarts += 1
            log.warning("segments.restart", camera=self.camera, delay_s=delay)
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, RESTART_MAX_S)

    def _spawn(self) -> None:
        (self.directory / PLAYLIST).unlink(missing_ok=True)
        self._playlist_seen = None
        self._init = self.directory / f"init{self._next_number:09d}.mp4"
        cmd = segment_command(self.source, self.directory, self._next_number, self.rtsp_transport)
        self._proc = subprocess.Popen(  # dies with this thread: a killed daemon leaves none
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        log.info("segments.started", camera=self.camera, source=redact_url(self.source))

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def _collect(self) -> None:
        """Take in the segments ffmpeg listed since the last look (the playlist is replaced
        whole, by rename, after each segment)."""
        playlist = self.directory / PLAYLIST
        try:
            st = os.stat(playlist)
            if (st.st_ino, st.st_mtime_ns) == self._playlist_seen:
                return
            text = playlist.read_text(errors="replace")
        except FileNotFoundError:
            return
        self._playlist_seen = (st.st_ino, st.st_mtime_ns)
        now = self.clock()
        init: Path | None = None
        duration: float | None = None
        for line in text.splitlines():
            line = line.strip()
            if m := _INIT_LINE.match(line):
                init = self.directory / m.group(1)
            elif line.startswith("#EXTINF:"):
                try:
                    duration = float(line[8:].split(",")[0])
                except ValueError:
                    duration = None
            elif (m := _SEGMENT_NAME.fullmatch(line)) and duration is not None and init:
                number = int(m.group(1))
                if number >= self._next_number:
                    seg = Segment(self.directory / line, now - duration, now, number, init)
                    with self._lock:
                        self._segments.append(seg)
                    self._next_number = number + 1
                duration = None

    def _expire(self) -> None:
        now = self.clock()
        with self._lock:
            oldest_needed = min([now - self.keep_s, *self._holds.values()])
            doomed = [s for s in self._segments if s.end < oldest_needed]
            self._segments = [s for s in self._segments if s.end >= oldest_needed]
            inits = {s.init for s in self._segments} | {self._init}
        for path in [s.path for s in doomed] + [s.init for s in doomed if s.init not in inits]:
            with contextlib.suppress(OSError):
                os.unlink(path)
