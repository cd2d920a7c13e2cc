"""The real-time stream figures of `har-daemon bench`, measured on the real daemon.

`har-daemon run` runs as a subprocess with N generated 640x480 25 fps H.264 files played in
real time, publishing every window's scores to a Mosquitto broker started on a free loopback
port. A stream count passes when, over the measured seconds, every camera read frames at the
file's rate and sampled them at 1/frame_spacing_s (both within `--tolerance`, in wall-clock
time, from the daemon's own `stats` log lines) and no stale window was dropped. Counts 1, 2, 4,
8, 12, 16, ... are tried up to `--streams-max`, stopping at the first failure. Latency (a
window's last-frame capture time, the `at` of its scores message, to its arrival at a
subscriber; `at` has millisecond resolution) and the daemon's resident memory (VmRSS, the
largest sample) are taken at `--latency-streams` cameras. A file source's frames carry video
time (the moment each frame is due when played in real time), so a capture thread that falls
behind shows up as latency too.

Nothing here imports TensorFlow: the daemon under test serves with the litert backend.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np

from har_daemon.core.errors import HarError
from har_daemon.model.meta import ModelMeta
from har_daemon.tools.broker import MosquittoBroker, MqttRecorder, find_mosquitto
from har_daemon.tools.media import STREAM_CODEC, STREAM_CONTENT, make_stream_video
from har_daemon.tools.procs import rss_mb, start_process, stop_process

__all__ = [
    "FUSION_SETTINGS",
    "TOPIC_PREFIX",
    "Fusion",
    "StepResult",
    "judge",
    "measure_streams",
    "progress",
    "run_step",
    "scores_latencies_ms",
    "stream_counts",
    "write_config",
]

TOPIC_PREFIX = "harbench"

Fusion = Literal["pose", "pretrained"]
FUSION_SETTINGS: dict[Fusion, str] = {"pose": "pose_fusion", "pretrained": "pretrained_fusion"}
"""The `[inference]` switch of each second opinion the bench measures beside the fight model."""
_BROKER_LOG_TYPES = ("error", "warning", "notice")  # not every message: the broker shares CPUs
_ONLINE_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 30.0


def progress(message: str) -> None:
    """One line on stderr, so `--json` keeps stdout to the result."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def scores_latencies_ms(recorder: MqttRecorder, start: float, end: float) -> list[float]:
    """Arrival minus `at` of every scores message that arrived in [start, end] (epoch s)."""
    latencies = []
    for arrived, (topic, payload, _, _) in recorder.timed():
        if not (start <= arrived <= end and topic.endswith("/scores")):
            continue
        with contextlib.suppress(ValueError, KeyError, TypeError):
            latencies.append((arrived - _parse_time(json.loads(payload)["at"])) * 1000.0)
    return latencies


def write_config(
    path: Path,
    n: int,
    video: Path,
    model_dir: Path,
    broker_port: int | None,
    state: Path,
    batch_max: int | None = None,
    fusion: Fusion | None = None,
) -> Path:
    """The daemon's TOML for `n` real-time cameras on `video` (litert, stats every second);
    `fusion` turns on a second opinion on the fight model's regions (`FUSION_SETTINGS`)."""
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
        + (f"[inference]\n{FUSION_SETTINGS[fusion]} = true\n" if fusion else "")
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


def run_step(
    n: int,
    video: Path,
    fps: float,
    meta: ModelMeta,
    args: argparse.Namespace,
    workdir: Path,
    broker: MosquittoBroker | None,
    fusion: Fusion | None = None,
) -> StepResult:
    """Run the daemon on `n` real-time copies of `video` and judge whether it kept up."""
    expected = 1.0 / meta.frame_spacing_s
    result = StepResult(streams=n, ok=False, expected_sampled_fps=round(expected, 3))
    config = write_config(
        workdir / f"streams-{n}.toml",
        n,
        video,
        args.model,
        broker.port if broker else None,
        workdir / f"state-{n}",
        args.batch_max,
        fusion,
    )
    err_path = workdir / f"daemon-{n}.log"
    recorder = MqttRecorder(broker, f"{TOPIC_PREFIX}/+/scores").start() if broker else None
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cmd = [sys.executable, "-m", "har_daemon", "run", "--quiet", "--config", str(config)]
    proc = start_process(cmd, err_path, env=env, stdout=subprocess.DEVNULL)
    rss: list[float] = []
    try:
        deadline = time.monotonic() + _ONLINE_TIMEOUT_S
        while True:
            online = sum(1 for e in _log_events(err_path) if e.get("event") == "camera.online")
            if online >= n:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                result.reason = (
                    f"daemon exited with {proc.returncode}"
                    if proc.poll() is not None
                    else f"only {online} of {n} cameras online after {_ONLINE_TIMEOUT_S:.0f} s"
                )
                return result
            time.sleep(0.1)
        start = time.time() + args.warmup
        end = start + args.seconds
        while time.time() < end + 1.2:  # one more stats line after the measured span
            if proc.poll() is not None:
                result.reason = f"daemon exited with {proc.returncode} while measuring"
                return result
            value = rss_mb(proc.pid)
            if value is not None:
                rss.append(value)
            time.sleep(0.25)
    finally:
        stop_process(proc, _STOP_TIMEOUT_S)
        if recorder is not None:
            recorder.stop()
    result.rss_mb = round(max(rss), 1) if rss else None
    judge(result, err_path, start, end, fps, expected, args.tolerance)
    if recorder is not None:
        lat = scores_latencies_ms(recorder, start, end)
        result.scores_messages = len(lat)
        result.latency_p50_ms = _percentile(lat, 50)
        result.latency_p95_ms = _percentile(lat, 95)
        result.latency_max_ms = round(max(lat), 1) if lat else None
    return result


def judge(
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


def _start_broker(workdir: Path) -> MosquittoBroker | None:
    """A broker for the scores, or None (latency is then not measured) without mosquitto."""
    mosquitto = find_mosquitto()
    if mosquitto is None:
        return None
    broker = MosquittoBroker(
        workdir / "mosquitto", log_types=_BROKER_LOG_TYPES, executable=mosquitto
    )
    try:
        return broker.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        raise HarError(f"the benchmark broker did not start: {exc}") from None


def _stream_video(args: argparse.Namespace, workdir: Path) -> Path:
    longest = args.warmup + args.seconds + 30.0  # the daemon's start-up fits in the margin
    progress(f"generating a {args.width}x{args.height} {args.fps} fps H.264 clip")
    try:
        return make_stream_video(
            workdir / "stream.mp4", args.width, args.height, args.fps, min(600.0, longest)
        )
    except (RuntimeError, OSError, ValueError) as exc:
        raise HarError(f"the stream benchmark could not generate its video: {exc}") from None


def measure_streams(
    args: argparse.Namespace,
    meta: ModelMeta,
    workdir: Path,
    video: Path | None = None,
    fusion: Fusion | None = None,
) -> dict[str, Any]:
    """Real-time stream counts, then latency and memory at `--latency-streams` cameras, on
    `video` (default: a generated clip); `fusion` as in `write_config`."""
    workdir.mkdir(parents=True, exist_ok=True)
    out: dict[str, Any] = {}
    broker = _start_broker(workdir)
    if broker is None:
        out["latency_note"] = "mosquitto not found: latency not measured (scores not published)"
        progress(out["latency_note"])
    steps: list[StepResult] = []
    best = 0
    at = None
    try:
        video = video or _stream_video(args, workdir)
        for n in stream_counts(args.streams_max):
            progress(f"{n} stream(s) for {args.warmup:g}+{args.seconds:g} s")
            step = run_step(n, video, args.fps, meta, args, workdir, broker, fusion)
            steps.append(step)
            progress(f"{n} stream(s): {'ok' if step.ok else 'FAILED: ' + step.reason}")
            if not step.ok:
                break
            best = n
        at = next((s for s in steps if s.streams == args.latency_streams), None)
        if args.latency_streams and at is None:
            progress(f"{args.latency_streams} stream(s) for latency and memory")
            at = run_step(
                args.latency_streams, video, args.fps, meta, args, workdir, broker, fusion
            )
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
