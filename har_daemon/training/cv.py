"""`har-daemon cv`: grouped k-fold cross-validation, one full training per fold.

With 242 clips from 38 source videos, one held-out split of ~50 clips gives an accuracy whose
uncertainty is as large as the differences being compared (augmentation, class weights, LRCN
against ConvLSTM). k folds test every clip exactly once, always by a model that saw no clip of
its source video, and the spread across folds says how much a single figure can be trusted.

Each fold runs `training.train` unchanged on that fold's sides (validation for early stopping
is again held out by group, inside the training side) and keeps its model directory under
`<report>/fold_<i>/`; `<report>/cv.json` holds every fold's report, mean +- std over folds
(`metrics.summarize_folds`) and the report of all out-of-fold predictions pooled.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from har_daemon.core.errors import DataError
from har_daemon.core.logs import get_logger
from har_daemon.training.dataset import grouped_kfold, scan_dataset
from har_daemon.training.scoring import classification_report, summarize_folds
from har_daemon.training.train import TrainOptions, TrainResult, _class_order, train

__all__ = ["CV_FILE", "cross_validate", "format_table"]

CV_FILE = "cv.json"

log = get_logger(__name__)


def _mean_std(values: list[float]) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "per_fold": [float(v) for v in values]}


def _pooled(results: list[TrainResult], classes: list[str], probs_of: str) -> dict[str, Any]:
    index = {c: i for i, c in enumerate(classes)}
    y_true = [index[label] for r in results for label in r.test_labels]
    y_pred: list[int] = []
    for r in results:
        p = r.test_probabilities
        if p is None:
            continue
        if probs_of == "threshold":
            thr = r.meta.training["alert_threshold"]
            a = index[thr["class"]]
            y_pred += [a if v >= thr["threshold"] else 1 - a for v in p[:, a]]
        else:
            y_pred += [int(i) for i in p.argmax(axis=1)]
    return classification_report(y_true, y_pred, classes)


def cross_validate(opts: TrainOptions, folds: int = 5) -> dict[str, Any]:
    """Train and test once per grouped fold; write `cv.json` under `opts.out_dir` and return it.

    `opts` is used for every fold (seed included, which also seeds the fold assignment); the
    test split options are ignored, the validation split is always by group, and a LiteRT
    file is exported only when the folds are scored on it (`eval_backend="litert"`).
    """
    started = time.monotonic()
    report_dir = Path(opts.out_dir)
    records = scan_dataset(opts.data_dir, opts.classes)
    classes = sorted({r.label for r in records}, key=_class_order(opts.classes))
    splits = grouped_kfold(records, k=folds, seed=opts.seed)
    for i, (train_side, _) in enumerate(splits, start=1):
        missing = sorted(set(classes) - {r.label for r in train_side})
        if missing:
            raise DataError(
                f"fold {i} of {folds} has no training clips of {', '.join(missing)}: too few "
                "groups of that class for this many folds"
            )

    base_name = opts.name or f"{opts.architecture}-{len(classes)}class"
    results: list[TrainResult] = []
    fold_docs: list[dict[str, Any]] = []
    for i, (train_side, test_side) in enumerate(splits, start=1):
        log.info("cv.fold", fold=i, of=folds, train=len(train_side), test=len(test_side))
        result = train(
            replace(
                opts,
                out_dir=report_dir / f"fold_{i}",
                split="group",
                export_tflite=False,
                name=f"{base_name}-cv{i}of{folds}",
            ),
            train_records=train_side,
            test_records=test_side,
        )
        if result.test_report is None:
            raise DataError(f"fold {i}: none of its {len(test_side)} test clips could be read")
        results.append(result)
        t = result.meta.training
        doc: dict[str, Any] = {
            "fold": i,
            "model_dir": f"fold_{i}",
            "train_groups": sorted({r.group for r in train_side}),
            "test_groups": sorted({r.group for r in test_side}),
            "test_clips": result.test_clips,
            "validation_clips": t["validation_clips"],
            "clips": t["clips"],
            "epochs_run": t["epochs_run"],
            "best_epoch": t["best_epoch"],
            "seconds": t["seconds"],
            "report": result.test_report,
        }
        if result.threshold_report is not None:
            doc["alert_threshold"] = t["alert_threshold"]
            doc["threshold_report"] = result.threshold_report
        fold_docs.append(doc)

    reports = [r.test_report for r in results if r.test_report is not None]
    cv: dict[str, Any] = {
        "data_dir": str(opts.data_dir),
        "classes": classes,
        "architecture": opts.architecture,
        "k": folds,
        "grouping": "source video / group (dataset.grouped_kfold)",
        "options": {
            "seed": opts.seed,
            "epochs": opts.epochs,
            "batch_size": opts.batch_size,
            "learning_rate": opts.learning_rate,
            "patience": opts.patience,
            "validation_fraction": opts.validation_fraction,
            "augment": opts.augment,
            "augment_distant_p": opts.augment_distant_p,
            "class_weight": opts.class_weight,
            "alert_class": opts.alert_class,
            "sequence_length": opts.sequence_length,
            "frame_size": opts.frame_size,
            "interpolation": opts.interpolation,
            "input_transform": opts.input_transform,
            "input_region": opts.input_region,
            "backend": opts.eval_backend,
        },
        "n_clips": int(sum(r["n_samples"] for r in reports)),
        "summary": summarize_folds(reports),
        "pooled": _pooled(results, classes, "argmax"),
        "folds": fold_docs,
    }
    if opts.alert_class is not None:
        thr_reports = [r.threshold_report for r in results if r.threshold_report is not None]
        cv["at_alert_threshold"] = {
            "class": opts.alert_class,
            "threshold": _mean_std([d["alert_threshold"]["threshold"] for d in fold_docs]),
            "summary": summarize_folds(thr_reports),
            "alert_precision": _mean_std(
                [r["per_class"][opts.alert_class]["precision"] for r in thr_reports]
            ),
            "pooled": _pooled(results, classes, "threshold"),
        }
    cv["seconds"] = round(time.monotonic() - started, 1)

    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / CV_FILE).write_text(json.dumps(cv, indent=2) + "\n")
    _write_predictions(report_dir / "predictions.csv", results, classes)
    log.info(
        "cv.done",
        report=str(report_dir / CV_FILE),
        accuracy=cv["summary"]["accuracy"]["mean"],
        seconds=cv["seconds"],
    )
    return cv


def _write_predictions(path: Path, results: list[TrainResult], classes: list[str]) -> None:
    """Every out-of-fold prediction, one row per clip: what people sort to find failures."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip", "fold", "true", "predicted", *classes])
        for i, r in enumerate(results, start=1):
            if r.test_probabilities is None:
                continue
            for clip, label, p in zip(
                r.test_clips, r.test_labels, r.test_probabilities, strict=True
            ):
                predicted = classes[int(np.argmax(p))]
                writer.writerow([clip, i, label, predicted, *(f"{v:.4f}" for v in p)])


def format_table(cv: dict[str, Any]) -> str:
    """Per-fold accuracy, macro F1 and per-class recall (and the same at the alert threshold),
    then mean +- sample std over folds and the pooled out-of-fold figures."""
    classes: list[str] = cv["classes"]
    alert = cv.get("at_alert_threshold")
    a = alert["class"] if alert else ""

    def pm(e: dict[str, Any]) -> str:
        return f"{e['mean']:.3f}+-{e['std']:.3f}"

    def cells(r: dict[str, Any]) -> list[str]:
        return [f"{r['accuracy']:.3f}", f"{r['macro']['f1']:.3f}"] + [
            f"{r['per_class'][c]['recall']:.3f}" for c in classes
        ]

    def thr_cells(r: dict[str, Any], threshold: str) -> list[str]:
        pc = r["per_class"][a]
        return [threshold, f"{r['accuracy']:.3f}", f"{pc['recall']:.3f}", f"{pc['precision']:.3f}"]

    head = ["fold", "clips", "accuracy", "F1 macro"] + [f"recall {c}" for c in classes]
    if alert:
        head += [f"thr {a}", "acc@thr", "recall@thr", "prec@thr"]
    rows = [head]
    for d in cv["folds"]:
        row = [str(d["fold"]), str(d["report"]["n_samples"]), *cells(d["report"])]
        if alert:
            row += thr_cells(d["threshold_report"], f"{d['alert_threshold']['threshold']:.3f}")
        rows.append(row)
    s = cv["summary"]
    row = ["mean+-sd", str(cv["n_clips"]), pm(s["accuracy"]), pm(s["macro_f1"])]
    row += [pm(s["per_class_recall"][c]) for c in classes]
    if alert:
        t = alert["summary"]
        row += [pm(alert["threshold"]), pm(t["accuracy"])]
        row += [pm(t["per_class_recall"][a]), pm(alert["alert_precision"])]
    rows.append(row)
    p = cv["pooled"]
    row = ["pooled", str(p["n_samples"]), *cells(p)]
    if alert:
        row += thr_cells(alert["pooled"], "")
    rows.append(row)

    widths = [max(len(r[j]) for r in rows) for j in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.ljust(widths[j]) if j == 0 else cell.rjust(widths[j]) for j, cell in enumerate(r)
        ).rstrip()
        for r in rows
    )
