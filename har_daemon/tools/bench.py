"""`har-daemon bench`: the speed figures of issue 5, measured in one run on this machine.

Inference is timed in this process: the tutorial's `model.predict` on one window (the
baseline), the keras backend's compiled call and the litert backend, one window and a batch of
8. Preprocessing is the shipped `resize_frame` on a 1080p frame. Streams are measured on the
real thing: `har-daemon run` as a subprocess with N generated 640x480 25 fps H.264 files played
in real time, publishing every window's scores to a Mosquitto broker this command starts on a
free loopback port. A stream count passes when, over the measured seconds, every camera read
frames at the file's rate and sampled them at 1/frame_spacing_s (both within `--tolerance`, in
wall-clock time, from the daemon's own `stats` log lines) and no stale window was dropped.
Counts 1, 2, 4, 8, 12, 16, ... are tried up to `--streams-max`, stopping at the first failure.
Latency (a window's last-frame capture time, the `at` of its scores message, to its arrival at a
subscriber; `at` has millisecond resolution) and the daemon's resident memory (VmRSS, the
largest sample) are taken at `--latency-streams` cameras. A file source's frames carry video
time (the moment each frame is due when played in real time), so a capture thread that falls
behind shows up as latency too.

Nothing here is a test: the figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from har_daemon import __version__
from har_daemon.core.errors import HarError
from har_daemon.core.paths import DEMO_MODEL_DIR
from har_daemon.model.meta import ModelMeta, read_meta

TOPIC_PREFIX = "harbench"
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
STREAM_CODEC = "h264 (libx264 veryfast, main, no B-frames, GOP 2 s, ~1 Mbit/s)"
STREAM_CONTENT = "ffmpeg testsrc2 (moving pattern) with temporal noise"


# -- arguments -----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `bench` subcommand's options."""
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEMO_MODEL_DIR,
        help="model directory with model.keras and model.tflite (default: the bundled demo)",
    )
    parser.add_argument(
        "--runs", type=int, default=50, help="timed calls per inference figure (default 50)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="inference threads (default: as the daemon)"
    )
    parser.add_argument(
        "--streams-max",
        type=int,
        default=48,
        help="largest stream count tried; 0 skips the stream search (default 48)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="measured seconds per stream count, after the warm-up (default 15)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=4.0,
        help="seconds after all cameras are online before measuring (default 4)",
    )
    parser.add_argument(
        "--latency-streams",
        type=int,
        default=8,
        help="stream count for latency_p95_ms and rss_mb; 0 skips them (default 8)",
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=0.03,
        help="allowed shortfall of read and sampled frame rates (default 0.03 = 3%%)",
    )
    parser.add_argument(
        "--batch-max",
        type=int,
        default=None,
        help="the daemon's [model] batch_max (default: the daemon's default)",
    )
    parser.add_argument("--width", type=int, default=640, help="stream width (default 640)")
    parser.add_argument("--height", type=int, default=480, help="stream height (default 480)")
    parser.add_argument("--fps", type=int, default=25, help="stream frame rate (default 25)")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep configs, video and daemon logs here"
    )


# -- small helpers -------------------------------------------------------------------------------


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _median_ms(fn: Callable[[], object], runs: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, runs)):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


# -- inference -----------------------------------------------------------------------------------


def measure_inference(model_dir: Path, runs: int, threads: int | None) -> dict[str, Any]:
    """Medians in ms per window: model.predict, keras compiled call, litert (1 and 8)."""
    import cv2

    from har_daemon.model.backends import create_backend
    from har_daemon.model.keras.store import load_model_dir
    from har_daemon.model.preprocess import resize_frame

    loaded = load_model_dir(model_dir)
    meta = loaded.meta
    rng = np.random.default_rng(0)
    one = rng.random((1, *meta.input_shape), dtype=np.float32)
    eight = rng.random((8, *meta.input_shape), dtype=np.float32)
    model: Any = loaded.model

    _progress("timing model.predict (the tutorial's way)")
    predict_ms = _median_ms(lambda: model.predict(one, verbose=0), max(10, runs // 3))
    _progress("timing the keras backend")
    keras_ms = _median_ms(lambda: loaded.predict(one), runs)
    _progress("timing the litert backend")
    litert = create_backend("litert", model_dir, threads=threads)
    litert_ms = _median_ms(lambda: litert.predict(one), runs)
    batch8_ms = _median_ms(lambda: litert.predict(eight), runs) / 8.0
    fast_backend, fast_ms = min((("litert", litert_ms), ("keras", keras_ms)), key=lambda x: x[1])

    frame = rng.integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    hw = meta.frame_size
    shipped_us = 1000 * _median_ms(
        lambda: resize_frame(frame, hw, meta.resize_interpolation), runs * 4
    )
    exact_us = 1000 * _median_ms(
        lambda: cv2.resize(frame, (hw[1], hw[0]), interpolation=cv2.INTER_AREA), runs
    )
    return {
        "predict_ms": round(predict_ms, 2),
        "fast_ms": round(fast_ms, 2),
        "fast_backend": fast_backend,
        "keras_ms": round(keras_ms, 2),
        "batch8_ms_per_window": round(batch8_ms, 2),
        "speedup": round(predict_ms / fast_ms, 2),
        "preprocess_us_1080p": round(shipped_us, 1),
        "preprocess_interpolation": meta.resize_interpolation,
        "preprocess_us_1080p_exact_inter_area": round(exact_us, 1),
        "inference_threads": getattr(litert, "threads", threads),
    }


# -- broker and subscriber -----------------------------------------------------------------------


def find_mosquitto() -> str | None:
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if Path(p).is_file()), None)


class Broker:
    """A throw-away `mosquitto -p PORT` on loopback (mosquitto 2 without a config file listens
    on the local interface only and allows anonymous clients)."""

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.port = _free_port()
        self.log_path = workdir / "mosquitto.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> Broker:
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [self.executable, "-p", str(self.port)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log_path.read_text(errors="replace")[-500:]
                raise HarError(f"mosquitto did not start on port {self.port}: {tail}")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None


class ScoresSubscriber:
    """Records (arrival time, window capture time) for every `<prefix>/+/scores` message."""

    def __init__(self, port: int) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.port = port
        self.samples: list[tuple[float, float]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"har-bench-sub-{os.getpid()}-{id(self):x}",
        )
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            client.subscribe(f"{TOPIC_PREFIX}/+/scores", qos=0)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        arrived = time.time()
        try:
            at = _parse_time(json.loads(message.payload)["at"])
        except (ValueError, KeyError, TypeError):
            return
        with self._lock:
            self.samples.append((arrived, at))

    def start(self, timeout: float = 10.0) -> ScoresSubscriber:
        self._client.connect("127.0.0.1", self.port, keepalive=30)
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise HarError(f"could not subscribe on the benchmark broker (port {self.port})")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def latencies_ms(self, start: float, end: float) -> list[float]:
        """Latency of the messages that arrived in [start, end] (epoch seconds)."""
        with self._lock:
            return [(a - at) * 1000.0 for a, at in self.samples if start <= a <= end]


# -- the streams ---------------------------------------------------------------------------------


def make_stream_video(path: Path, width: int, height: int, fps: int, seconds: float) -> Path:
    """A camera-like H.264 file: moving test pattern plus sensor-like temporal noise."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise HarError("the stream benchmark needs ffmpeg on PATH to generate its video")
    cmd = [
        ffmpeg, "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={fps}",
        "-vf", "noise=alls=6:allf=t+u", "-t", f"{seconds:.1f}",
        "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main", "-bf", "0",
        "-g", str(2 * fps), "-b:v", "1M", "-maxrate", "1500k", "-bufsize", "2M",
        "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if result.returncode != 0 or not path.is_file():
        raise HarError(f"ffmpeg could not write {path}: {result.stderr.strip()[-300:]}")
    return path


def write_config(
    path: Path,
    n: int,
    video: Path,
    model_dir: Path,
    broker_port: int | None,
    state: Path,
    batch_max: int | None = None,
) -> Path:
    """The daemon's TOML for `n` real-time cameras on `video` (litert, stats every second)."""
    q = json.dumps  # a JSON string is a valid TOML basic string
    mqtt = (
        f'host = "127.0.0.1"\nport = {broker_port}\ntopic_prefix = "{TOPIC_PREFIX}"\n'
        f"client_id = {q(f'har-bench-{os.getpid()}-{n}')}\npublish_scores = true\nqos = 0\n"
        if broker_port is not None
        else "enabled = false\n"
    )
    cameras = "".join(
        f'[[cameras]]\nname = "cam{i:02d}"\nsource = {q(str(video))}\nrealtime = true\n'
        "loop = true\n"
        for i in range(1, n + 1)
    )
    path.write_text(
        f'[model]\npath = {q(str(model_dir))}\nbackend = "litert"\n'
        + (f"batch_max = {batch_max}\n" if batch_max else "")
        + f"[mqtt]\n{mqtt}"
        f"[spool]\npath = {q(str(state))}\n"
        '[logging]\nlevel = "info"\njson = true\n'
        "[stats]\ninterval = 1\n"
        f"{cameras}"
    )
    return path


@dataclass
class StepResult:
    """One stream count: pass/fail, why, and the rates and latencies behind it."""

    streams: int
    ok: bool
    reason: str = ""
    measured_s: float = 0.0
    read_fps_min: float | None = None
    sampled_fps_min: float | None = None
    sampled_fps_max: float | None = None
    expected_sampled_fps: float = 0.0
    windows_per_s: float | None = None
    stale_windows: int = 0
    stale_windows_total: int = 0
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    latency_max_ms: float | None = None
    scores_messages: int = 0
    rss_mb: float | None = None
    cameras: dict[str, dict[str, float]] = field(default_factory=dict)


def _log_events(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                yield json.loads(line)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_step(
    n: int,
    video: Path,
    fps: float,
    meta: ModelMeta,
    args: argparse.Namespace,
    workdir: Path,
    broker: Broker | None,
) -> StepResult:
    """Run the daemon on `n` real-time copies of `video` and judge whether it kept up."""
    spacing = meta.frame_spacing_s
    expected = 1.0 / spacing
    result = StepResult(streams=n, ok=False, expected_sampled_fps=round(expected, 3))
    config = write_config(
        workdir / f"streams-{n}.toml",
        n,
        video,
        args.model,
        broker.port if broker else None,
        workdir / f"state-{n}",
        args.batch_max,
    )
    err_path = workdir / f"daemon-{n}.log"
    subscriber = ScoresSubscriber(broker.port).start() if broker else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cmd = [sys.executable, "-m", "har_daemon", "run", "--quiet", "--config", str(config)]
    with err_path.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env)
    rss: list[float] = []
    try:
        deadline = time.monotonic() + 60.0
        while True:
            online = sum(1 for e in _log_events(err_path) if e.get("event") == "camera.online")
            if online >= n:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                result.reason = (
                    f"daemon exited with {proc.returncode}"
                    if proc.poll() is not None
                    else f"only {online} of {n} cameras online after 60 s"
                )
                return result
            time.sleep(0.1)
        start = time.time() + args.warmup
        end = start + args.seconds
        while time.time() < end + 1.2:  # one more stats line after the measured span
            if proc.poll() is not None:
                result.reason = f"daemon exited with {proc.returncode} while measuring"
                return result
            value = _rss_mb(proc.pid)
            if value is not None:
                rss.append(value)
            time.sleep(0.25)
    finally:
        _stop(proc)
        if subscriber is not None:
            subscriber.stop()
    result.rss_mb = round(max(rss), 1) if rss else None
    _judge(result, err_path, start, end, fps, expected, args.tolerance)
    if subscriber is not None:
        lat = subscriber.latencies_ms(start, end)
        result.scores_messages = len(lat)
        result.latency_p50_ms = _percentile(lat, 50)
        result.latency_p95_ms = _percentile(lat, 95)
        result.latency_max_ms = round(max(lat), 1) if lat else None
    return result


def _judge(
    result: StepResult,
    log_path: Path,
    start: float,
    end: float,
    fps: float,
    expected: float,
    tolerance: float,
) -> None:
    """Rates between the first and last `stats` lines of the measured span, per camera."""
    stats = []
    stopped: dict[str, Any] = {}
    for event in _log_events(log_path):
        if event.get("event") == "stats" and "timestamp" in event:
            t = _parse_time(event["timestamp"])
            if start <= t <= end + 1.2:
                stats.append((t, event["cameras"]))
        elif event.get("event") == "daemon.stopped":
            stopped = event.get("cameras", {})
    result.stale_windows_total = sum(int(c.get("stale_windows", 0)) for c in stopped.values())
    if len(stats) < 2 or stats[-1][0] - stats[0][0] < 0.5 * (end - start):
        result.reason = f"too few stats lines in the measured span ({len(stats)})"
        return
    (t0, first), (t1, last) = stats[0], stats[-1]
    dt = t1 - t0
    result.measured_s = round(dt, 2)
    problems = []
    read, sampled, windows = [], [], 0
    for name, c1 in last.items():
        c0 = first.get(name)
        if c0 is None:
            problems.append(f"{name} missing from stats")
            continue
        r = (c1["frames_read"] - c0["frames_read"]) / dt
        s = (c1["frames_sampled"] - c0["frames_sampled"]) / dt
        stale = int(c1["stale_windows"]) - int(c0["stale_windows"])
        windows += int(c1["windows"]) - int(c0["windows"])
        read.append(r)
        sampled.append(s)
        result.stale_windows += stale
        result.cameras[name] = {
            "read_fps": round(r, 2),
            "sampled_fps": round(s, 3),
            "stale_windows": stale,
        }
        if r < fps * (1 - tolerance):
            problems.append(f"{name} read {r:.2f} fps < {fps:g}")
        if abs(s - expected) > tolerance * expected:
            problems.append(f"{name} sampled {s:.2f}/s, schedule {expected:.2f}/s")
        if stale:
            problems.append(f"{name} dropped {stale} stale windows")
    result.read_fps_min = round(min(read), 2) if read else None
    result.sampled_fps_min = round(min(sampled), 3) if sampled else None
    result.sampled_fps_max = round(max(sampled), 3) if sampled else None
    result.windows_per_s = round(windows / dt, 2)
    result.ok = not problems
    result.reason = "; ".join(problems[:4]) + (" ..." if len(problems) > 4 else "")


def stream_counts(streams_max: int) -> list[int]:
    """1, 2, 4, 8, then every 4 up to `streams_max` (which is always included)."""
    counts = [n for n in (1, 2, 4, 8) if n <= streams_max]
    n = 12
    while n <= streams_max:
        counts.append(n)
        n += 4
    if streams_max >= 1 and counts[-1] != streams_max:
        counts.append(streams_max)
    return counts


def measure_streams(args: argparse.Namespace, meta: ModelMeta, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    mosquitto = find_mosquitto()
    broker = Broker(mosquitto, workdir).start() if mosquitto else None
    if broker is None:
        out["latency_note"] = "mosquitto not found: latency not measured (scores not published)"
        _progress(out["latency_note"])
    longest = args.warmup + args.seconds + 30.0  # the daemon's start-up fits in the margin
    _progress(f"generating a {args.width}x{args.height} {args.fps} fps H.264 clip")
    video = make_stream_video(
        workdir / "stream.mp4", args.width, args.height, args.fps, min(600.0, longest)
    )
    steps: list[StepResult] = []
    best = 0
    try:
        for n in stream_counts(args.streams_max):
            _progress(f"{n} stream(s) for {args.warmup:g}+{args.seconds:g} s")
            step = run_step(n, video, args.fps, meta, args, workdir, broker)
            steps.append(step)
            _progress(f"{n} stream(s): {'ok' if step.ok else 'FAILED: ' + step.reason}")
            if not step.ok:
                break
            best = n
        at = next((s for s in steps if s.streams == args.latency_streams), None)
        if args.latency_streams and at is None:
            _progress(f"{args.latency_streams} stream(s) for latency and memory")
            at = run_step(args.latency_streams, video, args.fps, meta, args, workdir, broker)
            steps.append(at)
    finally:
        if broker is not None:
            broker.stop()
    out["streams_realtime"] = best if args.streams_max else None
    if at is not None:
        out["latency_p95_ms"] = at.latency_p95_ms
        out["latency_p50_ms"] = at.latency_p50_ms
        out["latency_streams"] = at.streams
        out["latency_step_ok"] = at.ok
        out["rss_mb"] = at.rss_mb
    out["steps"] = [asdict(s) for s in steps]
    out["stream"] = {
        "width": args.width,
        "height": args.height,
        "fps": args.fps,
        "codec": STREAM_CODEC,
        "content": STREAM_CONTENT,
        "realtime": True,
        "warmup_s": args.warmup,
        "measured_s_per_step": args.seconds,
        "tolerance": args.tolerance,
        "batch_max": args.batch_max or "daemon default",
    }
    return out


# -- the command ---------------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    import cv2

    info: dict[str, Any] = {
        "machine": f"{_cpu_model()} ({platform.machine()}), {platform.system()}",
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "opencv": cv2.__version__,
        "har_daemon": __version__,
        "date": datetime.now().astimezone().isoformat(timespec="seconds"),
    }
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        info["ai_edge_litert"] = version("ai-edge-litert")
    return info


def run(args: argparse.Namespace) -> int:
    """Measure everything, print one JSON object (--json) or a table; 0 when it completed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    model_dir = Path(args.model).expanduser().resolve()
    args.model = model_dir
    meta = read_meta(model_dir)
    threads = args.threads
    if threads is None:
        from har_daemon.model.backends import default_threads

        threads = default_threads()
    result: dict[str, Any] = {
        "model": str(model_dir),
        "model_name": meta.name,
        "backend": "litert",
        "frame_spacing_s": meta.frame_spacing_s,
        "window": list(meta.input_shape),
    }
    result.update(machine_info())
    result.update(measure_inference(model_dir, args.runs, threads))
    result["runs"] = args.runs
    if args.streams_max > 0 or args.latency_streams > 0:
        if args.workdir is not None:
            workdir = Path(args.workdir)
            workdir.mkdir(parents=True, exist_ok=True)
            result.update(measure_streams(args, meta, workdir))
        else:
            with tempfile.TemporaryDirectory(prefix="har-bench-") as tmp:
                result.update(measure_streams(args, meta, Path(tmp)))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    rows = [
        ("model.predict, one window (baseline)", result.get("predict_ms"), "ms"),
        (f"{result.get('fast_backend')}, one window", result.get("fast_ms"), "ms"),
        ("keras backend, one window", result.get("keras_ms"), "ms"),
        ("litert, batch of 8, per window", result.get("batch8_ms_per_window"), "ms"),
        ("speedup (predict / fast)", result.get("speedup"), "x"),
        ("resize_frame, one 1080p frame", result.get("preprocess_us_1080p"), "µs"),
        ("exact INTER_AREA, one 1080p frame", result.get("preprocess_us_1080p_exact_inter_area"),
         "µs"),
        ("real-time 640x480 25 fps streams", result.get("streams_realtime"), ""),
        (f"latency p95 at {result.get('latency_streams')} streams", result.get("latency_p95_ms"),
         "ms"),
        (f"daemon RSS at {result.get('latency_streams')} streams", result.get("rss_mb"), "MB"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"har-daemon bench: {result['model_name']} on {result['machine']}")
    print(f"{result['cpu_count']} CPUs, {result.get('inference_threads')} inference threads")
    for label, value, unit in rows:
        shown = "n/a" if value is None else f"{value} {unit}".strip()
        print(f"  {label:<{width}}  {shown}")
    if "latency_note" in result:
        print(f"  note: {result['latency_note']}")
    for step in result.get("steps", []):
        state = "ok" if step["ok"] else f"failed: {step['reason']}"
        print(
            f"  {step['streams']:>3} streams: read >= {step['read_fps_min']} fps, sampled "
            f"{step['sampled_fps_min']}-{step['sampled_fps_max']}/s "
            f"(schedule {step['expected_sampled_fps']}), stale {step['stale_windows']}, "
            f"p95 {step['latency_p95_ms']} ms, RSS {step['rss_mb']} MB: {state}"
        )


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m har_daemon.tools.bench`) until the CLI has `bench`."""
    parser = argparse.ArgumentParser(prog="har-daemon bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except HarError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
