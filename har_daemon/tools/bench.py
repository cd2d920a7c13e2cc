"""`har-daemon bench`: the speed figures of issue 5, measured in one run on this machine.

Inference is timed in this process (`tools.inference`); streams are measured on the real
daemon with generated real-time camera files and a real broker (`tools.streams`). This module
holds the command: its arguments, the machine's description, and the JSON or table it prints.

Nothing here is a test: the figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from har_daemon.model.backends import default_threads
from har_daemon.model.meta import read_meta
from har_daemon.tools.environment import machine_info
from har_daemon.tools.inference import measure_inference
from har_daemon.tools.people import measure_people, stage_ms
from har_daemon.tools.recognisers import measure_recognisers
from har_daemon.tools.recording import measure_recording, print_recording
from har_daemon.tools.streams import measure_streams

__all__ = ["print_table", "run"]


def run(args: argparse.Namespace) -> int:
    """Measure everything, print one JSON object (--json) or a table; 0 when it completed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.recording:
        return _recording(args)
    model_dir = Path(args.model).expanduser().resolve()
    args.model = model_dir
    meta = read_meta(model_dir)
    threads = args.threads if args.threads is not None else default_threads()
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
            result.update(measure_people(args, workdir, threads))
        else:
            with tempfile.TemporaryDirectory(prefix="har-bench-") as tmp:
                result.update(measure_streams(args, meta, Path(tmp)))
                result.update(measure_people(args, Path(tmp), threads))
    else:
        result.update(stage_ms(args.runs, threads))
    result.update(measure_recognisers(args))
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return 0


def _recording(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="har-bench-") as tmp:
        workdir = Path(args.workdir or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = {**machine_info(), **measure_recording(args, workdir)}
    if args.json:
        print(json.dumps(result))
    else:
        print_recording(result)
    return 0


def print_table(result: dict[str, Any]) -> None:
    """The figures for people: one line each, then one line per stream step."""
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
        ("person detection, one 640x480 frame", result.get("detect_ms"), "ms"),
        ("pose (MoveNet Lightning), per person", result.get("pose_ms_per_person"), "ms"),
        ("... streams with the person stage on", result.get("streams_realtime_people"), ""),
        (f"... streams with the fight pose stage on ({result.get('pose_model')})",
         result.get("streams_realtime_pose"), ""),
        (f"... streams with the pretrained fusion on ({result.get('pretrained_model')})",
         result.get("streams_realtime_pretrained"), ""),
        (f"{result.get('recognisers_model')}, one camera, CPU per s of video",
         result.get("fight_cpu_ms_per_s"), "ms"),
        ("... with the fall recogniser too", result.get("fight_fall_cpu_ms_per_s"), "ms"),
        ("... fight + fall / fight alone", result.get("fight_fall_ratio"), "x"),
        ("... with the fall's looks shared", result.get("fight_fall_shared_cpu_ms_per_s"), "ms"),
        ("... fight + fall (shared) / fight alone", result.get("fight_fall_shared_ratio"), "x"),
        ("... with the fall's looks tracked", result.get("fight_fall_tracked_cpu_ms_per_s"), "ms"),
        ("... fight + fall (tracked) / fight alone", result.get("fight_fall_tracked_ratio"), "x"),
        ("... with the fall's looks adaptive", result.get("fight_fall_adaptive_cpu_ms_per_s"),
         "ms"),
        ("... fight + fall (adaptive) / fight alone", result.get("fight_fall_adaptive_ratio"), "x"),
        ("... fight with the pretrained fusion on", result.get("fight_pretrained_cpu_ms_per_s"),
         "ms"),
        ("... fight + pretrained / fight alone", result.get("fight_pretrained_ratio"), "x"),
        (f"latency p95 at {result.get('latency_streams')} streams", result.get("latency_p95_ms"),
         "ms"),
        (f"daemon RSS at {result.get('latency_streams')} streams", result.get("rss_mb"), "MB"),
        ("... with the person stage on", result.get("rss_mb_people"), "MB"),
        ("... and its latency p95", result.get("latency_p95_ms_people"), "ms"),
        ("... with the fight pose stage on", result.get("rss_mb_pose"), "MB"),
        ("... and its latency p95", result.get("latency_p95_ms_pose"), "ms"),
        ("... with the pretrained fusion on", result.get("rss_mb_pretrained"), "MB"),
        ("... and its latency p95", result.get("latency_p95_ms_pretrained"), "ms"),
    ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    print(f"har-daemon bench: {result['model_name']} on {result['machine']}")
    print(f"{result['cpu_count']} CPUs, {result.get('inference_threads')} inference threads")
    if result.get("keras_baseline", "measured") != "measured":
        print(
            f"  Keras baseline (model.predict, keras backend, speedup) {result['keras_baseline']}"
        )
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
