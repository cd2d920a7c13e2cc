"""Write cross-validation figures and data provenance into a trained model's model.json.

    .venv/bin/python scripts/model_card.py MODEL_DIR --cv REPORT/cv.json \\
        --provenance provenance.json [--name NAME]

`har-daemon train` records the training run and its held-out test figures; the figures a
shipped model is judged by come from `har-daemon cv` with the same options, run separately.
This copies their summary (mean, sample std and every fold, at argmax and at the alert
threshold) into `evaluation.cross_validation`, and the provenance (data source, licence,
citation, the exact commands) into `provenance`, checking that the CV run used the same
classes, architecture and input as the model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir", type=Path)
    p.add_argument("--cv", type=Path, required=True, help="cv.json of `har-daemon cv`")
    p.add_argument("--provenance", type=Path, required=True, help="JSON object to store")
    p.add_argument("--name", help="rename the model")
    args = p.parse_args(argv)
    meta = read_meta(args.model_dir)
    cv = json.loads(args.cv.read_text())
    opts = cv["options"]
    checks = {
        "classes": (cv["classes"], meta.classes),
        "architecture": (cv["architecture"], meta.architecture),
        "input_transform": (opts.get("input_transform", "frames"), meta.input_transform),
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
    meta.provenance = json.loads(args.provenance.read_text())
    if args.name:
        meta.name = args.name
    write_meta(args.model_dir, meta)
    print(f"{args.model_dir / 'model.json'}: cross-validation and provenance written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
