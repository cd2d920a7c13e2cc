"""`har-daemon bench --recording`: what event clips cost a camera, by copy and by re-encoding.

One real-time camera on the real daemon, in four runs. The camera shows the demo model's
synthetic activities, Biking and HorseRace for `--event-s` seconds each (10 by default),
looped, so an event ends and the next starts every `--event-s` seconds: clips are always being
recorded, and each is finished (joined, or re-encoded to H.264) within the measured time when
it is longer than `--event-s`. The runs:

* `off`: the sub-stream analysed, clips off (the reference);
* `copy`: the sub-stream analysed, clips cut from the main stream by stream copy
  (`record_source`, `outputs.clips.segments`);
* `reencode`: the sub-stream analysed, clips re-encoded from the analysed frames (today's path,
  the sub-stream's resolution);
* `reencode_main`: the main stream analysed, clips re-encoded from it (today's only way to get
  full-resolution clips).

With `--recording-model fight` the analysed model is the bundled fight model (its person stage
on: the person detector looks at every sampled frame) and the camera shows a real clip of a
person walking (`tools.people.PEOPLE_CLIP`, or `--recording-clip`, looped): a deployment's
analysis cost, with the events (if any) that model raises on it.

The CPU of each run is the daemon's and its children's (ffmpeg segmenter, concat, H.264
re-encodes) user + system time over the measured seconds, read from /proc; printed as percent
of one core and as ratios to `off`. The streams are generated files played in real time, looped.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from har_daemon.core.errors import ConfigError
from har_daemon.core.paths import DEMO_MODEL_DIR, FIGHT_MODEL_DIR
from har_daemon.tools.media import STREAM_CODEC, camera_encode, concat_clips
from har_daemon.tools.people import PEOPLE_CLIP
from har_daemon.tools.procs import start_process, stop_process
from har_daemon.tools.streams import progress
from har_daemon.training.synth import write_activity_video

MAIN_SIZE = (1280, 720)
SUB_SIZE = (640, 360)
FPS = 25
ACTIVITIES = ("Biking", "HorseRace")
MODES = ("off", "copy", "reencode", "reencode_main")
MODELS = {"demo": DEMO_MODEL_DIR, "fight": FIGHT_MODEL_DIR}
_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_cpu_s(pid: int) -> float:
    """CPU seconds of `pid`, its live descendants, and the children it already reaped."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat(int(entry))) is not None:
            parents[int(entry)] = int(fields[1])
    tree, grew = {pid}, True
    while grew:
        new = {p for p, parent in parents.items() if parent in tree and p not in tree}
        tree |= new
        grew = bool(new)
    total = 0
    for p in tree:
        fields = _stat(p)
        if fields is None:
            continue
        # after the ")" : state ppid ... utime(11) stime(12) cutime(13) cstime(14)
        total += int(fields[11]) + int(fields[12])
        if p == pid:
            total += int(fields[13]) + int(fields[14])
    return total / _TICK


def recording_config(
    path: Path, mode: str, main: Path, sub: Path, clips: Path, model: str = "demo"
) -> Path:
    q = json.dumps
    source = main if mode == "reencode_main" else sub
    camera = f'[[cameras]]\nname = "cam"\nsource = {q(str(source))}\nloop = true\n'
    if mode == "copy":
        camera += f"record_source = {q(str(main))}\n"
    clips_on = "true" if mode != "off" else "false"
    path.write_text(
        f'[model]\npath = {q(str(MODELS[model]))}\nbackend = "litert"\n'
        "[mqtt]\nenabled = false\n"
        + (
            "[inference]\nenter_threshold = 0.3\nexit_threshold = 0.05\nmin_windows = 1\n"
            if model == "demo"
            else ""  # the fight model with the daemon's defaults, as installed
        )
        + f"[clips]\nenabled = {clips_on}\npath = {q(str(clips))}\n"
        f"[spool]\npath = {q(str(path.parent / 'state'))}\n"
        '[logging]\nlevel = "warning"\n' + camera
    )
    return path


def run_mode(
    mode: str, main: Path, sub: Path, workdir: Path, args: argparse.Namespace
) -> tuple[float, int]:
    """Percent of one core the daemon and its children used over the measured seconds, and the
    clips saved by the end of the run."""
    clips = workdir / f"clips-{mode}"
    config = recording_config(
        workdir / f"{mode}.toml", mode, main, sub, clips, args.recording_model
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    cmd = [sys.executable, "-m", "har_daemon", "run", "--quiet", "--config", str(config)]
    proc = start_process(cmd, workdir / f"{mode}.log", env=env, stdout=subprocess.DEVNULL)
    try:
        time.sleep(args.warmup + 5.0)  # start-up (imports, model) is not what is measured
        if proc.poll() is not None:
            raise RuntimeError(f"{mode}: the daemon exited with {proc.returncode}")
        cpu0, t0 = tree_cpu_s(proc.pid), time.monotonic()
        time.sleep(args.seconds)
        cpu1, t1 = tree_cpu_s(proc.pid), time.monotonic()
    finally:
        stop_process(proc, 20.0)
    saved = len(list(clips.glob("*.mp4"))) if clips.is_dir() else 0
    return 100.0 * (cpu1 - cpu0) / (t1 - t0), saved


def measure_recording(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The CPU per camera of each mode and the ratios, as `bench --recording` prints them."""
    progress("recording: generating the main and sub streams")
    sizes = {"main": MAIN_SIZE, "sub": SUB_SIZE}
    if args.recording_model == "fight":
        clip = args.recording_clip or PEOPLE_CLIP
        if not clip.is_file():
            raise ConfigError(f"--recording-clip {clip}: no such video file")
        for n, size in sizes.items():
            concat_clips([clip], workdir / f"{n}-raw.mp4", FPS, size)  # scaled
        main, sub = (
            camera_encode(workdir / f"{n}-raw.mp4", workdir / f"{n}.mp4", FPS) for n in sizes
        )
        walking = "a real clip of a person walking"
        scene = f"{clip.name if args.recording_clip else walking}, looped"
    else:
        activities = [(name, args.event_s) for name in ACTIVITIES]
        main, sub = (
            camera_encode(
                write_activity_video(workdir / f"{n}-raw.mp4", activities, FPS, size, seed=7),
                workdir / f"{n}.mp4",
                FPS,
            )
            for n, size in sizes.items()
        )
        scene = f"an event every {args.event_s:g} s"
    runs: dict[str, list[float]] = {m: [] for m in MODES}
    saved: dict[str, int] = dict.fromkeys(MODES, 0)
    load_before = os.getloadavg()[0]
    for n in range(args.recording_rounds):  # alternated: a machine's drift hits every mode
        for mode in MODES:
            progress(f"recording: round {n + 1}, {mode}, {args.seconds:g} s")
            rundir = workdir / f"round{n + 1}"
            rundir.mkdir(exist_ok=True)
            percent, clips = run_mode(mode, main, sub, rundir, args)
            runs[mode].append(round(percent, 1))
            saved[mode] += clips
    cpu = {m: round(statistics.median(v), 1) for m, v in runs.items()}
    off = cpu["off"] or float("nan")
    return {
        "load_average_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "clips_saved": saved,
        "recording_streams": f"main {MAIN_SIZE[0]}x{MAIN_SIZE[1]}, sub {SUB_SIZE[0]}x"
        f"{SUB_SIZE[1]}, {FPS} fps, {STREAM_CODEC}, {scene}",
        "recording_model": args.recording_model,
        "recording_seconds": args.seconds,
        "recording_rounds": args.recording_rounds,
        "cpu_percent_runs": runs,
        "cpu_percent": cpu,
        "cpu_ratio_to_off": {m: round(v / off, 3) for m, v in cpu.items()},
        "copy_vs_reencode": round(cpu["copy"] / (cpu["reencode"] or float("nan")), 3),
        "copy_vs_reencode_main": round(cpu["copy"] / (cpu["reencode_main"] or float("nan")), 3),
    }


def print_recording(result: dict[str, Any]) -> None:
    print(
        f"har-daemon bench --recording: one camera, model {result['recording_model']}, "
        f"{result['recording_streams']}"
    )
    print(
        f"  measured {result['recording_seconds']:g} s per mode and round, "
        f"{result['recording_rounds']} round(s) alternated (median), CPU of the daemon + children"
    )
    before, after = result["load_average_1min"]
    print(f"  load average (1 min) {before} before, {after} after")
    for mode, value in result["cpu_percent"].items():
        ratio = result["cpu_ratio_to_off"][mode]
        saved = result["clips_saved"][mode]
        runs = ", ".join(f"{v:g}" for v in result["cpu_percent_runs"][mode])
        print(
            f"  {mode:<14} {value:6.1f} % of a core ({runs})   x{ratio} of clips off   "
            f"{saved} clips"
        )
    print(f"  copy / reencode (sub-stream clips):  {result['copy_vs_reencode']}")
    print(f"  copy / reencode_main (full-res clips): {result['copy_vs_reencode_main']}")
