"""Record by copy: a camera's main stream kept as a rolling set of short stream-copied segments.

IP cameras offer a low-resolution sub-stream (what the daemon decodes and analyses) and a full
main stream. For a camera with a `record_source`, one `ffmpeg` per camera reads the main stream
and writes it, **without decoding or re-encoding** (`-c copy`), as segments of about
`SEGMENT_S` seconds (the segment muxer cuts at the stream's key frames) into
`<clips>/.segments/<camera>/`. An event's clip is then the segments covering its pre-roll to
post-roll, joined by ffmpeg's concat demuxer, again with `-c copy` (`concat_segments`): the
clip has the main stream's resolution and codec, at the cost of copying bytes.

Times: ffmpeg lists each finished segment with its duration (`-segment_list ... +live`); this
recorder's thread stamps the segment's end with the daemon's timeline clock when the line
appears and its start that duration earlier, so segments and events share one clock. Clips are
cut at segment boundaries: up to a segment (a key-frame interval or `SEGMENT_S`) more than asked.

Segments older than `keep_s` are deleted, unless an open clip still needs them (`hold`). A
lost stream restarts ffmpeg after a doubling delay; numbering continues, so no name is reused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from har_daemon.core.logs import get_logger
from har_daemon.core.parent_death import die_with_parent
from har_daemon.core.redact import redact_url
from har_daemon.video.ffmpeg import FFMPEG

log = get_logger(__name__)

SEGMENTS_DIR = ".segments"
SEGMENT_S = 2.0
"""Target segment length: the pre-roll's granularity (cuts fall on key frames)."""
POLL_S = 0.25
RESTART_MAX_S = 30.0
CONCAT_TIMEOUT_S = 120.0
LIST_FILE = "segments.csv"


@dataclass(frozen=True)
class Segment:
    path: Path
    start: float  # timeline seconds
    end: float


def segment_command(
    source: str, directory: Path, first_number: int, rtsp_transport: str | None
) -> list[str]:
    """The ffmpeg command that copies `source`'s first video stream into numbered segments."""
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error"]
    if source.lower().startswith("rtsp"):
        cmd += ["-rtsp_transport", rtsp_transport or "tcp"]
    elif "://" not in source:
        cmd += ["-re", "-stream_loop", "-1"]  # a file plays as a live camera (tests, bench)
    cmd += ["-i", source, "-map", "0:v:0", "-c", "copy", "-an"]
    cmd += ["-f", "segment", "-segment_time", f"{SEGMENT_S:g}", "-segment_format", "mpegts"]
    cmd += ["-segment_list", str(directory / LIST_FILE), "-segment_list_type", "csv"]
    cmd += ["-segment_list_flags", "+live", "-segment_start_number", str(first_number)]
    return [*cmd, str(directory / "seg%09d.ts")]


def concat_segments(segments: list[Segment], out: Path) -> str | None:
    """Join `segments` into the MP4 `out` by stream copy; the failure's reason, or None."""
    if not segments:
        return "no segment covers the event"
    listing = out.with_suffix(".txt")
    listing.write_text("".join(f"file '{s.path}'\n" for s in segments))
    cmd = [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-f", "concat"]
    cmd += ["-safe", "0", "-i", str(listing), "-c", "copy", "-movflags", "+faststart"]
    cmd += ["-f", "mp4", "-y", str(out)]
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=CONCAT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"ffmpeg concat failed: {exc}"
    finally:
        listing.unlink(missing_ok=True)
    if res.returncode != 0:
        last = [ln for ln in res.stderr.splitlines() if ln.strip()][-1:] or ["no message"]
        return f"ffmpeg concat exited with {res.returncode}: {last[0][:300]}"
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
        (self.directory / LIST_FILE).unlink(missing_ok=True)
        self._read_pos = 0
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
        """Read the segments ffmpeg finished since the last look."""
        listing = self.directory / LIST_FILE
        try:
            with open(listing, "rb") as f:
                f.seek(self._read_pos)
                data = f.read()
        except FileNotFoundError:
            return
        lines = data.split(b"\n")
        complete, rest = lines[:-1], lines[-1]
        self._read_pos += len(data) - len(rest)
        now = self.clock()
        for line in complete:
            parts = line.decode(errors="replace").strip().split(",")
            if len(parts) < 3:
                continue
            try:
                duration = float(parts[-1]) - float(parts[-2])
            except ValueError:
                continue
            name = ",".join(parts[:-2])
            with self._lock:
                self._segments.append(Segment(self.directory / name, now - duration, now))
            number = name.removeprefix("seg").removesuffix(".ts")
            if number.isdigit():
                self._next_number = max(self._next_number, int(number) + 1)

    def _expire(self) -> None:
        now = self.clock()
        with self._lock:
            oldest_needed = min([now - self.keep_s, *self._holds.values()])
            doomed = [s for s in self._segments if s.end < oldest_needed]
            self._segments = [s for s in self._segments if s.end >= oldest_needed]
        for seg in doomed:
            with contextlib.suppress(OSError):
                os.unlink(seg.path)
