"""`quiet-eval` and `calibrate`: false alerts per camera-hour on quiet footage, per scene, and
each camera's threshold for a false-alert budget."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from har_daemon.cli.offline import load
from har_daemon.config import DaemonConfig
from har_daemon.core.errors import DataError
from har_daemon.model.backends import Backend
from har_daemon.model.meta import ModelMeta
from har_daemon.offline.quiet import (
    QuietRun,
    format_scenes,
    read_quiet,
    replay_quiet,
    scene_figures,
)
from har_daemon.offline.replay import replay, replay_activities
from har_daemon.offline.stream_eval import check_activities, decision_settings, read_truth
from har_daemon.runtime.calibration import calibration_path, write_calibration
from har_daemon.runtime.cameras import window_seconds
from har_daemon.tools.calibrate import calibrate_camera, recall_at, split_check
from har_daemon.tools.environment import machine_info
from har_daemon.training.alert_policy import Recording, record


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def with_gate(config: DaemonConfig, distance: float | None) -> DaemonConfig:
    """`config` with the interaction gate off (None) or at `distance` body heights."""
    update: dict[str, Any] = {"interaction_gate": distance is not None}
    if distance is not None:
        update["interaction_distance"] = distance
    inference = config.inference.model_copy(update=update)
    return config.model_copy(update={"inference": inference})


def gate_name(config: DaemonConfig) -> str:
    inf = config.inference
    return f"<= {inf.interaction_distance:g} body heights" if inf.interaction_gate else "off"


def _streams(
    videos: list[Path], config: DaemonConfig, meta: ModelMeta, backend: Backend
) -> list[Recording]:
    out = []
    for video in videos:
        truth_file = video.parent / "TRUTH.csv"
        truth = read_truth(truth_file)
        check_activities(truth, replay_activities(config, meta), truth_file)
        out.append(record(replay(video, config, meta, backend), truth))
    return out


def _stream_line(name: str, doc: dict[str, Any]) -> str:
    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    return (
        f"{name}: {doc['intervals']} incidents, found {doc['detected']} (recall "
        f"{s(doc['recall'])}), false alerts {doc['false_alerts']} in {doc['quiet_s']:.1f} s "
        f"quiet, time to alert p50/p95 {s(doc['tta_p50_s'])}/{s(doc['tta_p95_s'])} s"
    )


def quiet_eval(args: argparse.Namespace) -> int:
    config, meta, backend = load(args)
    clips = read_quiet(args.data)
    settings = [config] + [with_gate(config, d) for d in args.gate or []]
    doc: dict[str, Any] = {
        "data": str(args.data),
        "model": meta.name,
        "environment": machine_info(),
        "variants": [],
    }
    first_runs: list[QuietRun] = []
    first_streams: list[Recording] = []
    for cfg in settings:
        runs = replay_quiet(clips, cfg, meta, backend, log=_log)
        streams = _streams(args.stream or [], cfg, meta, backend)
        rows = scene_figures(runs)
        variant: dict[str, Any] = {
            "interaction_gate": gate_name(cfg),
            "settings": decision_settings(cfg),
            "scenes": [r.as_dict() for r in rows],
        }
        print(f"\ninteraction gate {gate_name(cfg)}, enter {cfg.inference.enter_threshold}:")
        print(format_scenes(rows))
        if streams:
            t = cfg.inference.enter_threshold
            each = [recall_at([s], cfg, t).overall.as_dict() for s in streams]
            variant["streams"] = recall_at(streams, cfg, t).overall.as_dict()
            variant["each_stream"] = each
            for video, figures in zip(args.stream, each, strict=True):
                print(_stream_line(f"{video}", figures))
            if len(streams) > 1:
                print(_stream_line("pooled", variant["streams"]))
        doc["variants"].append(variant)
        if not first_runs:
            first_runs, first_streams = runs, streams
    if args.budget is not None:
        doc["calibration"] = _calibration_check(args, config, meta, first_runs, first_streams)
    if args.json:
        print(json.dumps(doc))
    return 0


def _calibration_check(
    args: argparse.Namespace,
    config: DaemonConfig,
    meta: ModelMeta,
    runs: list[QuietRun],
    streams: list[Recording],
) -> list[dict[str, Any]]:
    checks = split_check(
        runs, config, args.budget, args.calibrate_fraction, window_seconds(config, meta)
    )
    print(
        f"\ncalibration for {args.budget:g} false alerts per day, on the first "
        f"{args.calibrate_fraction:g} of each scene, measured on the rest "
        f"(interaction gate {gate_name(config)}):"
    )
    print("scene: calibrated_on_s threshold | measured_on_s false before -> after (per hour)")
    out = []
    for c in checks:
        d = c.as_dict()
        line = (
            f"{d['scene']}: {d['calibrated_on_s']:.1f} s -> {d['enter_threshold']:.2f}"
            f"{'' if d['within_budget'] else ' (over budget)'} | {d['measured_on_s']:.1f} s "
            f"{d['false_alerts_before']} -> {d['false_alerts_after']} "
            f"({d['per_hour_before']} -> {d['per_hour_after']})"
        )
        if streams:
            f = recall_at(streams, config, c.calibration.enter_threshold).overall
            d["streams_at_threshold"] = f.as_dict()
            line += f" | fight streams found {f.detected}/{f.intervals}"
        print(line)
        out.append(d)
    return out


def calibrate(args: argparse.Namespace) -> int:
    config, meta, backend = load(args)
    camera = next((c for c in config.cameras if c.name == args.camera), None)
    if camera is None:
        names = ", ".join(c.name for c in config.cameras) or "none"
        raise DataError(f"camera {args.camera!r} is not in the config (cameras: {names})")
    videos = list(args.source or [])
    if not videos:
        if camera.source_kind != "file":
            raise DataError(
                f"camera {camera.name} is not a file: give --source recordings of its normal "
                "footage"
            )
        videos = [Path(str(camera.source))]
    cal = calibrate_camera(videos, config, meta, backend, args.budget)
    path = args.out or calibration_path(config)
    if not args.dry_run:
        write_calibration(path, camera.name, cal)
    if args.json:
        print(json.dumps({"camera": camera.name, "file": str(path), **cal.as_dict()}))
    else:
        print(
            f"{camera.name}: enter threshold {cal.enter_threshold:.2f} "
            f"({config.inference.enter_threshold} configured) on {cal.footage_s:.1f} s of footage: "
            f"{cal.alerts_before} false alert(s) at the configured threshold, "
            f"{cal.alerts_on_footage} at the calibrated one"
            + ("" if cal.within_budget else " (over budget even at 1.0)")
        )
        if camera.enter_threshold is not None:
            print(
                f"note: the config's enter_threshold {camera.enter_threshold} for this camera wins"
            )
        print(f"{'would write' if args.dry_run else 'written'}: {path}")
    return 0
