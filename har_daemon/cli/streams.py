"""`evaluate-stream`: the daemon's alerts on a recording against its annotated incidents."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from har_daemon.cli.offline import load
from har_daemon.config import DaemonConfig
from har_daemon.model.meta import ModelMeta
from har_daemon.offline.replay import replay_activities
from har_daemon.offline.stream_eval import (
    StreamEvaluation,
    check_activities,
    check_truth_span,
    decision_settings,
    read_truth,
)
from har_daemon.offline.stream_eval import evaluate_stream as evaluate_recording
from har_daemon.reporting.plots import plot_stream_timeline
from har_daemon.runtime.policy import DecisionPolicy
from har_daemon.tools.environment import machine_info
from har_daemon.video.frames import probe_video


def evaluate_stream(args: argparse.Namespace) -> int:
    truth = read_truth(args.truth)
    config, meta, backend = load(args)
    check_activities(truth, replay_activities(config, meta), args.truth)
    check_truth_span(truth, probe_video(args.video).duration_s, args.truth, args.video)
    result = evaluate_recording(args.video, truth, config, meta, backend)
    doc = {
        "video": str(args.video),
        "truth": str(args.truth),
        "model": meta.name,
        "settings": decision_settings(config),
        "figures": result.figures.as_dict(),
        "cuts": result.run.cuts,
        "events": result.run.events(),
        "environment": machine_info(),
    }
    if args.report is not None:
        write_stream_report(args.report, doc, result, config, meta)
    if args.json:
        print(json.dumps(doc))
    else:
        print(format_figures(doc))
    return 0


def format_figures(doc: dict[str, Any]) -> str:
    f = doc["figures"]["overall"]

    def s(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        f"{doc['video']}: {doc['figures']['duration_s']:.1f} s, model {doc['model']}",
        f"  incidents {f['intervals']}, detected {f['detected']} (recall {ratio(f['recall'])})",
        f"  alerts {f['events']}, false {f['false_alerts']} "
        f"({f['false_alerts_per_hour']:.1f} per hour), duplicates {f['duplicate_alerts']}, "
        f"precision {ratio(f['precision'])}",
        f"  time to alert p50 {s(f['tta_p50_s'])}, p95 {s(f['tta_p95_s'])}, "
        f"max {s(f['tta_max_s'])}",
        f"  quiet time in alert {ratio(f['quiet_alert_fraction'])}",
    ]
    return "\n".join(lines)


def write_stream_report(
    folder: Path,
    doc: dict[str, Any],
    result: StreamEvaluation,
    config: DaemonConfig,
    meta: ModelMeta,
) -> None:
    """stream.json and timeline.png, which `har-daemon report` shows."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "stream.json").write_text(json.dumps(doc, indent=2) + "\n")
    alerting = DecisionPolicy.for_model(config.inference, meta).alerting(meta.classes)
    windows = result.run.windows
    plot_stream_timeline(
        folder / "timeline.png",
        duration_s=result.stream.duration_s,
        truth=[(iv.start_s, iv.end_s, iv.activity) for iv in result.stream.truth],
        alerts=[
            (a.start_s, a.end_s if a.end_s is not None else result.stream.duration_s, a.activity)
            for a in result.stream.alerts
        ],
        times_s=[w.window_end for w in windows],
        smoothed={c: [float(w.smoothed[meta.classes.index(c)]) for w in windows] for c in alerting},
        enter_threshold=config.inference.enter_threshold,
        exit_threshold=config.inference.exit_threshold,
        title=f"{doc['video']} ({meta.name})",
    )
    print(f"report: {folder}", file=sys.stderr)
