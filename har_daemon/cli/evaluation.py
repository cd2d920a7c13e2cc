"""`evaluate`: clip-level metrics on labelled clips."""

from __future__ import annotations

import argparse
import json

from har_daemon.training.evaluate import evaluate as evaluate_model


def evaluate(args: argparse.Namespace) -> int:
    report = evaluate_model(
        args.model,
        args.data,
        args.report,
        split=args.split,
        workers=args.workers,
        cache_dir=args.cache_dir,
        backend=args.backend,
    )
    if args.json:
        print(json.dumps(report))
        return 0
    print(
        f"accuracy {report['accuracy']:.3f}  precision/recall/F1 micro "
        f"{report['micro']['precision']:.3f}/{report['micro']['recall']:.3f}/"
        f"{report['micro']['f1']:.3f}  macro {report['macro']['precision']:.3f}/"
        f"{report['macro']['recall']:.3f}/{report['macro']['f1']:.3f}  "
        f"on {report['n_samples']} clips"
    )
    print(f"{'class':<20}{'TP':>5}{'FP':>5}{'FN':>5}{'TN':>5}{'prec':>7}{'recall':>7}{'F1':>7}")
    for name, c in report["per_class"].items():
        print(
            f"{name:<20}{c['tp']:>5}{c['fp']:>5}{c['fn']:>5}{c['tn']:>5}"
            f"{c['precision']:>7.3f}{c['recall']:>7.3f}{c['f1']:>7.3f}"
        )
    if report["skipped"]:
        print(f"skipped {len(report['skipped'])} unreadable clips (see metrics.json)")
    print(f"report: {args.report}")
    return 0
