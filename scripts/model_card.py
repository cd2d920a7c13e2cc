"""Write cross-validation figures, event-level figures and data provenance into a model.json.

    .venv/bin/python scripts/model_card.py MODEL_DIR --cv REPORT/cv.json \\
        --provenance provenance.json [--name NAME] [--compare LABEL=OTHER/cv.json ...] \\
        [--policy VAL_STREAMS/policy.json] [--streams TEST_STREAMS/streams.json] \\
        [--held-out-stream MODEL_TEST_STREAMS/streams.json] [--stream-variant LABEL=streams.json]

`har-daemon train` records the training run and its held-out test figures; the figures a
shipped model is judged by come from `har-daemon cv` with the same options, run separately.
This copies their summary (mean, sample std and every fold, at argmax and at the alert
threshold, and split by data origin) into `evaluation.cross_validation`, the summaries of other
runs on the same folds (`--compare`: another architecture, the whole-frame baseline) into
`evaluation.compared`, the event-level figures of `har-daemon streams` (each fold's held-out
stream scored by its own fold model, `--streams`; the model's own held-out stream,
`--held-out-stream`) into `evaluation.event_level`, the alert settings chosen on validation
streams (`--policy`) into `training.alert_policy`, and the provenance (data source, licence,
citation, the exact commands) into `provenance`, checking that the CV run used the same classes,
architecture and input as the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cv_by_origin import summary as by_origin

from har_daemon.model.meta import read_meta, write_meta


def _fold_figures(cv: dict) -> dict:
    s = cv["summary"]
    out = {
        "folds": cv["k"],
        "grouped_by": "source video",
        "n_clips": cv["n_clips"],
        "accuracy": s["accuracy"],
        "macro_f1": s["macro_f1"],
        "per_class_recall": s["per_class_recall"],
        "options": cv["options"],
    }
    alert = cv.get("at_alert_threshold")
    if alert:
        out["at_alert_threshold"] = {
            "class": alert["class"],
            "threshold": alert["threshold"],
            "accuracy": alert["summary"]["accuracy"],
            "macro_f1": alert["summary"]["macro_f1"],
            "per_class_recall": alert["summary"]["per_class_recall"],
            "alert_precision": alert["alert_precision"],
        }
    return out


def _policy(doc: dict) -> dict:
    """The settings chosen per fold and over all folds, without every candidate's figures."""
    keep = ("chosen", "within_budget")
    return {
        "rule": "within the false-alert budget on validation streams: most incidents found, "
        "then lowest time-to-alert p95, then the most cautious setting",
        "budget_false_alerts_per_quiet_hour": doc["budget_false_alerts_per_quiet_hour"],
        "per_fold": {k: {x: v[x] for x in keep} for k, v in doc["folds"].items()},
        "pooled": {x: doc["pooled"][x] for x in keep},
        "candidates": len(doc["pooled"]["settings"]),
    }


def _streams(doc: dict) -> dict:
    """Per-fold and pooled event figures of `har-daemon streams --evaluate`."""
    keep = ("duration_s", "clips", "cuts", "quiet_windows", "windows_per_incident", "setting")
    return {
        "split": doc["split"],
        "join": doc["join"],
        "settings_from": doc.get("policy_scope") or "config.example.toml",
        "stream": {"size": doc["size"], "fps": doc["fps"]},
        "incidents_by_windows": doc.get("incidents_by_windows"),
        "per_fold": [
            {"fold": d["fold"], **{k: d[k] for k in keep if k in d}, **d["figures"]}
            for d in doc["folds"]
        ],
        "pooled": doc["pooled"],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--cv", type=Path, required=True, help="cv.json of `har-daemon cv`")
    p.add_argument("--provenance", type=Path, required=True, help="JSON object to store")
    p.add_argument("--name", help="rename the model")
    p.add_argument("--compare", action="append", default=[], help="LABEL=cv.json, same folds")
    p.add_argument("--policy", type=Path, help="policy.json of `streams --sweep` on --cv folds")
    p.add_argument(
        "--model-policy",
        type=Path,
        help="policy.json of `streams --sweep` on the model's own "
        "validation split: its choice is the setting config.example.toml carries",
    )
    p.add_argument("--streams", type=Path, help="streams.json of `streams --evaluate` on --cv")
    p.add_argument("--held-out-stream", type=Path, help="streams.json of the model's test split")
    p.add_argument(
        "--stream-variant",
        action="append",
        default=[],
        help="LABEL=streams.json: the same folds' streams under other settings or models",
    )
    args = p.parse_args(argv)
    meta = read_meta(args.model_dir)
    cv = json.loads(args.cv.read_text())
    opts = cv["options"]
    checks = {
        "classes": (cv["classes"], meta.classes),
        "architecture": (cv["architecture"], meta.architecture),
        "input_transform": (opts.get("input_transform", "frames"), meta.input_transform),
        "input_region": (opts.get("input_region", "frame"), meta.input_region),
        "sequence_length": (opts["sequence_length"], meta.sequence_length),
        "frame_size": (opts["frame_size"], meta.frame_height),
    }
    for what, (theirs, ours) in checks.items():
        if theirs != ours:
            print(
                f"error: cv.json {what} {theirs!r} differs from the model's {ours!r}",
                file=sys.stderr,
            )
            return 2
    meta.evaluation["cross_validation"] = _fold_figures(cv)
    report = args.cv.parent
    if (report / "predictions.csv").is_file():
        meta.evaluation["cross_validation"]["by_origin"] = {
            "argmax": by_origin(report),
            "at_alert_threshold": by_origin(report, threshold=True),
        }
    if args.compare:
        meta.evaluation["compared"] = {}
        for item in args.compare:
            label, _, path = item.partition("=")
            other = json.loads(Path(path).read_text())
            doc = _fold_figures(other)
            doc["architecture"] = other["architecture"]
            if (Path(path).parent / "predictions.csv").is_file():
                doc["by_origin"] = by_origin(Path(path).parent, threshold=True)
            meta.evaluation["compared"][label] = doc
    if args.policy or args.model_policy:
        policy = meta.training["alert_policy"] = {}
        if args.policy:
            policy.update(_policy(json.loads(args.policy.read_text())))
        if args.model_policy:
            own = json.loads(args.model_policy.read_text())["pooled"]
            policy["config"] = {k: v for k, v in own["chosen"].items() if k not in ("figures",)} | {
                "validation_figures": own["chosen"]["figures"]
            }
            policy["config_within_budget"] = own["within_budget"]
    event: dict = {}
    if args.streams:
        event["cross_validation"] = _streams(json.loads(args.streams.read_text()))
    if args.held_out_stream:
        event["held_out_stream"] = _streams(json.loads(args.held_out_stream.read_text()))
    for item in args.stream_variant:
        label, _, path = item.partition("=")
        event.setdefault("variants", {})[label] = _streams(json.loads(Path(path).read_text()))
    if event:
        meta.evaluation["event_level"] = event
    meta.provenance = json.loads(args.provenance.read_text())
    if args.name:
        meta.name = args.name
    write_meta(args.model_dir, meta)
    print(f"{args.model_dir / 'model.json'}: cross-validation and provenance written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
