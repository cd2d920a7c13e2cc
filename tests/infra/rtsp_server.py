"""A real RTSP server (GStreamer gst-rtsp-server) that loops a video file forever.

    server = RtspServer(video_path, workdir=tmp_path / "rtsp").start()
    cap = cv2.VideoCapture(server.url, cv2.CAP_FFMPEG)   # with rtsp_transport;tcp, see below
    server.stop()      # camera gone (SIGTERM; stop(kill=True) for SIGKILL)
    server.start()     # camera back on the same URL; restart() does both
    server.freeze()    # SIGSTOP: the TCP connection stays up but no frame arrives (a stall)
    server.thaw()      # SIGCONT

The video is decoded once by ffmpeg into workdir/frames.yuv (yuv420p, width cropped to a
multiple of 8 and height to a multiple of 2 so the rows are packed the way GStreamer expects);
`tests/infra/gst_rtsp_serve.py`, run by Debian's /usr/bin/python3 (python3-gi lives there, not in
the venv), re-encodes it with x264 and serves it at rtsp://127.0.0.1:PORT/NAME, looping with
timestamps that keep increasing. `start()` returns only once OpenCV, over RTSP/TCP, reads frames.
Clients share one pipeline while any is connected; once the last one leaves, the next client
starts again from the video's first frame. The raw file takes width*height*1.5 bytes per frame
(about 280 MB for 3 s of 1080p at 30 fps).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

from har_daemon.tools.procs import (
    LOOPBACK,
    ServiceProcess,
    free_port,
    port_accepts,
    start_process,
    stop_process,
    tail,
    wait_until,
)
from har_daemon.video.ffmpeg import FFMPEG, FFPROBE

SYSTEM_PYTHON = "/usr/bin/python3"
SERVE_SCRIPT = Path(__file__).with_name("gst_rtsp_serve.py")

# OpenCV reads FFmpeg capture options from this variable when a capture is opened.
FFMPEG_OPTIONS_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_env_lock = threading.Lock()


def open_rtsp_capture(
    url: str, transport: str = "tcp", timeout_s: float = 10.0, analyze_s: float | None = 0.2
):
    """cv2.VideoCapture for `url` over RTSP with `transport` (tcp/udp), with open/read timeouts.

    `analyze_s` bounds FFmpeg's stream probing (its default, 5 s of analysis, makes an open take
    about 1.1 s here; 0.2 s is plenty for one H.264 stream); None keeps FFmpeg's default.
    Sets OPENCV_FFMPEG_CAPTURE_OPTIONS only while opening, then restores it.
    """
    import cv2

    ms = int(timeout_s * 1000)
    options = f"rtsp_transport;{transport}"
    if analyze_s is not None:
        options += f"|analyzeduration;{int(analyze_s * 1e6)}"
    with _env_lock:
        before = os.environ.get(FFMPEG_OPTIONS_ENV)
        os.environ[FFMPEG_OPTIONS_ENV] = options
        try:
            return cv2.VideoCapture(
                url,
                cv2.CAP_FFMPEG,
                [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms],
            )
        finally:
            if before is None:
                os.environ.pop(FFMPEG_OPTIONS_ENV, None)
            else:
                os.environ[FFMPEG_OPTIONS_ENV] = before


def read_frames(url: str, count: int, transport: str = "tcp", timeout_s: float = 10.0) -> list:
    """Open `url` and read `count` BGR frames (numpy arrays); RuntimeError when it cannot."""
    cap = open_rtsp_capture(url, transport, timeout_s)
    try:
        if not cap.isOpened():
            raise RuntimeError(f"OpenCV cannot open {url}")
        frames = []
        for _ in range(count):
            ok, frame = cap.read()
            if not ok:
                raise RuntimeError(f"OpenCV stopped reading {url} after {len(frames)} frames")
            frames.append(frame)
        return frames
    finally:
        cap.release()


def _probe(video: Path) -> tuple[int, int, Fraction]:
    result = subprocess.run(
        [FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height,avg_frame_rate,r_frame_rate", "-of", "json", str(video)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"ffprobe cannot read {video}: {result.stderr.strip()}")
    streams = json.loads(result.stdout).get("streams") or []
    if not streams:
        raise RuntimeError(f"{video} has no video stream")
    s = streams[0]
    fps = Fraction(0)
    for key in ("avg_frame_rate", "r_frame_rate"):
        with contextlib.suppress(ValueError, ZeroDivisionError):
            fps = Fraction(s.get(key, "0/0"))
        if 0 < fps <= 240:
            break
    if not 0 < fps <= 240:
        fps = Fraction(25)
    return int(s["width"]), int(s["height"]), fps.limit_denominator(1001)


class RtspServer(ServiceProcess):
    """Serves `video_path` looping at rtsp://127.0.0.1:`port`/`name` (port chosen when None).

    fps: serve at this rate instead of the file's (the file is resampled by ffmpeg).
    size: (width, height) to scale to; default the file's own size.
    """

    host = LOOPBACK

    def __init__(
        self,
        video_path: str | Path,
        port: int | None = None,
        *,
        name: str = "stream",
        workdir: str | Path | None = None,
        fps: float | None = None,
        size: tuple[int, int] | None = None,
    ) -> None:
        self.video_path = Path(video_path)
        if not self.video_path.is_file():
            raise FileNotFoundError(self.video_path)
        self.port = port or free_port()
        self.name = name.strip("/")
        super().__init__(workdir, "rtsp-")
        self.log_path = self.workdir / "rtsp_server.log"
        self.raw_path = self.workdir / "frames.yuv"
        self._fps_override = fps
        self._size_override = size
        self.width = self.height = 0
        self.fps = Fraction(0)
        self.frame_count = 0

    @property
    def url(self) -> str:
        return f"rtsp://{self.host}:{self.port}/{self.name}"

    def _prepare(self) -> None:
        width, height, fps = _probe(self.video_path)
        if self._size_override:
            width, height = self._size_override
        if self._fps_override:
            fps = Fraction(self._fps_override).limit_denominator(1001)
        # Packed I420 rows: width % 8 == 0 keeps both luma and chroma strides 4-byte aligned.
        self.width, self.height, self.fps = width - width % 8, height - height % 2, fps
        filters = []
        if self._size_override:
            filters.append(f"scale={width}:{height}")
        filters.append(f"crop={self.width}:{self.height}:0:0")
        result = subprocess.run(
            [FFMPEG, "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
             "-i", str(self.video_path), "-an", "-vf", ",".join(filters),
             "-r", f"{fps.numerator}/{fps.denominator}",
             "-pix_fmt", "yuv420p", "-f", "rawvideo", str(self.raw_path)],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"ffmpeg cannot decode {self.video_path}: {result.stderr.strip()}")
        self.frame_count = self.raw_path.stat().st_size // (self.width * self.height * 3 // 2)
        if self.frame_count == 0:
            raise RuntimeError(f"no frame decoded from {self.video_path}")

    def start(self, timeout: float = 30.0, verify_frames: int = 3) -> RtspServer:
        """Start serving (same port as before) and return once OpenCV reads `verify_frames`."""
        if self.is_running:
            return self
        if not self.frame_count:
            self._prepare()
        cmd = [
            SYSTEM_PYTHON, str(SERVE_SCRIPT),
            "--raw", str(self.raw_path),
            "--width", str(self.width), "--height", str(self.height),
            "--fps", f"{self.fps.numerator}/{self.fps.denominator}",
            "--port", str(self.port), "--address", self.host, "--mount", f"/{self.name}",
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        self._proc = start_process(cmd, self.log_path, env=env)
        deadline = time.monotonic() + timeout

        def listening() -> bool:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(
                    f"RTSP server exited with {self._proc.returncode}:\n{tail(self.log_path)}"
                )
            return port_accepts(self.host, self.port)

        try:
            wait_until(listening, timeout, message=lambda: f"RTSP server not listening on "
                       f"{self.port}:\n{tail(self.log_path)}")  # fmt: skip
            if verify_frames:
                self._verify(verify_frames, deadline)
        except BaseException:
            self.stop(kill=True)
            raise
        return self

    def _verify(self, frames: int, deadline: float) -> None:
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                got = read_frames(self.url, frames, "tcp", max(1.0, deadline - time.monotonic()))
            except RuntimeError as err:
                last = err
                time.sleep(0.2)
                continue
            if got[0].shape[:2] == (self.height, self.width):
                return
            last = RuntimeError(f"frames are {got[0].shape}, expected {self.height}x{self.width}")
        raise TimeoutError(f"no frames from {self.url}: {last}\n{tail(self.log_path)}")

    def stop(self, timeout: float = 10.0, *, kill: bool = False) -> None:
        """Stop serving: SIGTERM (SIGKILL when `kill` or after `timeout`); clients see EOF."""
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGCONT)  # a frozen server must see SIGTERM
        stop_process(self._proc, timeout, kill=kill)
        self._proc = None

    def restart(self, timeout: float = 30.0) -> RtspServer:
        self.stop()
        return self.start(timeout)

    def freeze(self) -> None:
        """SIGSTOP the server: connections stay open, frames stop (a stalled camera)."""
        if self.is_running:
            os.kill(self._proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]

    def thaw(self) -> None:
        """SIGCONT after freeze()."""
        if self.is_running:
            os.kill(self._proc.pid, signal.SIGCONT)  # type: ignore[union-attr]

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.is_running else "stopped"
        return f"RtspServer({self.url}, {self.width}x{self.height}@{float(self.fps):g}, {state})"
