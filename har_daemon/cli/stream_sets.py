"""`streams`: every fold's held-out clips joined into a test stream, and what the daemon makes
of it (false alerts per hour of quiet footage, time to alert), per fold and pooled."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from har_daemon.config import DaemonConfig, load_config
from har_daemon.core.errors import DataError
from har_daemon.core.logs import configure_logging
from har_daemon.tools.environment import machine_info
from har_daemon.training.alert_policy import SMOOTHING_WINDOWS, Setting, grid
from har_daemon.training.fold_streams import (
    FoldClips,
    FoldResult,
    build_fold_streams,
    evaluate_folds,
    folds_from_cv,
    folds_from_model,
    pooled,
    record_folds,
    sweep,
)

POLICY_FILE = "policy.json"
RESULTS_FILE = "streams.json"


def _alert(args: argparse.Namespace, config: DaemonConfig) -> str:
    if args.alert_class:
        return str(args.alert_class)
    alerting = config.inference.alert_activities
    if len(alerting) != 1:
        raise DataError("give --alert-class, or a --config whose alert_activities names one class")
    return alerting[0]


def _fold_configs(
    folds: list[FoldClips], base: DaemonConfig, policy: Path | None, pooled: bool = False
) -> list[DaemonConfig]:
    """Each fold's settings: its choice in a sweep's policy.json (or the one choice over all
    folds, `pooled`), else the config's."""
    if policy is None:
        return [base for _ in folds]
    try:
        doc = json.loads(policy.read_text())
        chosen = {k: v["chosen"] for k, v in doc["folds"].items()}
        fallback = doc["pooled"]["chosen"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{policy}: not a streams --sweep policy ({exc})") from None
    out = []
    for f in folds:
        c = fallback if pooled else chosen.get(str(f.fold), fallback)
        s = Setting(
            c["smoothing_window"], c["enter_threshold"], c["min_windows"], c["exit_threshold"]
        )
        out.append(s.config(base))
    return out


def streams(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    config = load_config(args.config)
    if config.model.backend != args.backend and args.backend is not None:
        config = config.model_copy(
            update={"model": config.model.model_copy(update={"backend": args.backend})}
        )
    alert = _alert(args, config)
    if (args.cv is None) == (args.model is None):
        raise DataError("give --cv CV_DIR (every fold) or --model MODEL_DIR (one model)")
    folds = (
        folds_from_cv(args.cv, args.data, args.split)
        if args.cv is not None
        else folds_from_model(args.model, args.data, args.split)
    )
    built = build_fold_streams(
        folds,
        args.out,
        alert,
        join=args.join,
        size=args.size,
        fps=args.fps,
        seed=args.seed,
        log=lambda m: print(m, file=sys.stderr),
    )
    backend = config.model.backend
    if args.sweep:
        recordings = record_folds(folds, built, config, backend, SMOOTHING_WINDOWS)
        doc = sweep(recordings, grid(), config, args.budget)
        (args.out / POLICY_FILE).write_text(json.dumps(doc, indent=2) + "\n")
        print(format_sweep(doc))
    if args.evaluate:
        results = evaluate_folds(
            folds, built, _fold_configs(folds, config, args.policy, args.pooled_policy), backend
        )
        doc = results_doc(results, args)
        (args.out / RESULTS_FILE).write_text(json.dumps(doc, indent=2) + "\n")
        print(json.dumps(doc) if args.json else format_results(doc))
        if not args.json:
            b = doc["incidents_by_windows"]
            print(
                f"incidents with no window inside: {b['none']}, one: {b['one']}, two or more: "
                f"{b['two_or_more']} (a window needs a full ring after each cut)"
            )
    print(f"streams: {args.out}", file=sys.stderr)
    return 0


def _quiet_rate(false_alerts: int, quiet_s: float) -> float | None:
    return round(false_alerts / (quiet_s / 3600.0), 2) if quiet_s > 0 else None


def results_doc(results: list[FoldResult], args: argparse.Namespace) -> dict[str, Any]:
    def figures(f: Any) -> dict[str, Any]:
        o = f.overall
        return {
            **o.as_dict(),
            "false_alerts_per_quiet_hour": _quiet_rate(o.false_alerts, o.quiet_s),
        }

    folds = [
        {
            "fold": r.fold,
            "video": str(r.stream.video),
            "duration_s": round(r.stream.duration_s, 2),
            "clips": len(r.stream.clips),
            "cuts": r.cuts,
            "no_person_windows": r.no_person_windows,
            "quiet_windows": r.quiet_windows,
            "windows_per_incident": r.windows_per_incident,
            "setting": r.setting,
            "figures": figures(r.figures),
            "alerts": [[a.start_s, a.end_s, a.activity] for a in r.run.alerts],
            "truth": [[t.start_s, t.end_s, t.activity] for t in r.run.truth],
        }
        for r in results
    ]
    per_incident = [n for r in results for n in r.windows_per_incident]
    return {
        "split": args.split,
        "incidents_by_windows": {
            "none": sum(n == 0 for n in per_incident),
            "one": sum(n == 1 for n in per_incident),
            "two_or_more": sum(n >= 2 for n in per_incident),
        },
        "join": args.join,
        "size": list(args.size),
        "fps": args.fps,
        "policy": str(args.policy) if args.policy else None,
        "policy_scope": ("pooled" if args.pooled_policy else "per fold") if args.policy else None,
        "folds": folds,
        "pooled": figures(pooled(results)),
        "environment": machine_info(),
    }


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def format_results(doc: dict[str, Any]) -> str:
    """One line per fold and the pooled line: what a guard would have seen."""
    lines = [
        "fold    stream_s  quiet_s  incidents  found  recall  false  FA/quiet_h  TTA p50/p95/max"
    ]
    total = sum(d["duration_s"] for d in doc["folds"])
    rows = [(str(d["fold"]), d["duration_s"], d["figures"]) for d in doc["folds"]]
    for name, duration, f in [*rows, ("pooled", total, doc["pooled"])]:
        lines.append(
            f"{name:<6}  {duration:>8.1f}  {f['quiet_s']:>7.1f}  {f['intervals']:>9}  "
            f"{f['detected']:>5}  {_s(f['recall']):>6}  {f['false_alerts']:>5}  "
            f"{_s(f['false_alerts_per_quiet_hour']):>10}  "
            f"{_s(f['tta_p50_s'])}/{_s(f['tta_p95_s'])}/{_s(f['tta_max_s'])}"
        )
    return "\n".join(lines)


def format_sweep(doc: dict[str, Any]) -> str:
    lines = [f"budget: {doc['budget_false_alerts_per_quiet_hour']} false alerts per quiet hour"]
    for name, c in [*doc["folds"].items(), ("pooled", doc["pooled"])]:
        s = c["chosen"]
        f = s["figures"]
        lines.append(
            f"fold {name}: window {s['smoothing_window']} enter {s['enter_threshold']} "
            f"min_windows {s['min_windows']} -> recall {_s(f['recall'])}, false {f['false_alerts']}"
            f" ({_s(s['false_alerts_per_quiet_hour'])}/quiet h), TTA p95 {_s(f['tta_p95_s'])}"
            + ("" if c["within_budget"] else "  (over budget: fewest false alerts)")
        )
    return "\n".join(lines)
