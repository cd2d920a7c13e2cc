"""`har-daemon evaluate`: score a model on labelled clips and write the figures people read."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from har_daemon.core.errors import DataError
from har_daemon.core.logs import get_logger
from har_daemon.model.backends import BackendKind
from har_daemon.model.keras.store import compiled_predictor
from har_daemon.model.meta import ModelMeta
from har_daemon.model.preprocess import to_model_input
from har_daemon.model.registry import create_backend
from har_daemon.reporting.plots import plot_confusion_matrix, plot_prediction_strip
from har_daemon.training.dataset import ClipRecord, scan_dataset
from har_daemon.training.samples import load_clip_data
from har_daemon.training.scoring import classification_report

log = get_logger(__name__)


def predict_batches(
    model_or_fn: object, x_uint8: np.ndarray, meta: ModelMeta, batch_size: int = 8
) -> np.ndarray:
    """Probabilities for uint8 clips, converted to model input one batch at a time."""
    if hasattr(model_or_fn, "predict") and hasattr(model_or_fn, "meta"):
        fn: Callable[[np.ndarray], np.ndarray] = model_or_fn.predict  # type: ignore[attr-defined]
    else:
        fn = compiled_predictor(model_or_fn, meta.input_shape)
    out = []
    for i in range(0, len(x_uint8), batch_size):
        batch = to_model_input(
            x_uint8[i : i + batch_size], meta.color_order, meta.input_scale, meta.input_transform
        )
        out.append(fn(batch))
    if not out:
        return np.zeros((0, len(meta.classes)), dtype=np.float32)
    return np.concatenate(out)


def write_evaluation(
    out_dir: Path,
    probs: np.ndarray,
    true_labels: Sequence[str],
    classes: Sequence[str],
    *,
    title: str,
    prefix: str = "",
) -> dict[str, Any]:
    """Write `<prefix>metrics.json` and `<prefix>confusion_matrix.png`; return the metrics."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {c: i for i, c in enumerate(classes)}
    y_true = np.array([index[label] for label in true_labels], dtype=int)
    y_pred = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=int)
    report = classification_report(y_true, y_pred, list(classes))
    (out_dir / f"{prefix}metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    plot_confusion_matrix(
        np.asarray(report["confusion_matrix"]),
        list(classes),
        out_dir / f"{prefix}confusion_matrix.png",
        title=title,
    )
    return report


def evaluate(
    model_dir: Path,
    data_dir: Path,
    report_dir: Path,
    *,
    split: Literal["all", "test", "validation"] = "all",
    workers: int = 2,
    cache_dir: Path | None = None,
    backend: BackendKind = "auto",
) -> dict[str, Any]:
    """Score every clip under `data_dir` whose folder is one of the model's classes, on the
    backend the daemon would use (`auto`) or the one named.

    With split="test", only the clips the model's training held out (listed in its
    `model.json`), so the figure is comparable with the one printed at training time;
    split="validation", those it held out to choose its epoch and thresholds (where settings
    are chosen, so the test clips stay unseen).
    """
    loaded = create_backend(backend, model_dir)
    meta = loaded.meta
    data_dir = Path(data_dir)
    found = scan_dataset(data_dir, None)
    records = [r for r in found if r.label in meta.classes]
    ignored = sorted({r.label for r in found} - set(meta.classes))
    if ignored:
        log.warning("evaluate.classes_ignored", classes=ignored, reason="not in the model")
    if split != "all":
        records = held_out_records(records, meta, split, data_dir, model_dir)
    if not records:
        raise DataError(f"{data_dir}: no clips of the model's classes {meta.classes} to score")

    alert = (meta.training.get("alert_threshold") or {}).get("class")
    if meta.person_region is not None and alert is None:
        raise DataError(f"{model_dir}: a person-centric model.json must name its alert class")
    data = load_clip_data(records, meta, alert_class=alert, workers=workers, cache_dir=cache_dir)
    scored = data.readable(records)
    labels = [r.label for r in scored]
    probs = data.clip_probs(lambda x: predict_batches(loaded, x, meta), records)
    report = write_evaluation(
        report_dir,
        probs,
        labels,
        meta.classes,
        title=f"{meta.name} on {data_dir.name}"
        + (f" (held-out {split})" if split != "all" else ""),
    )
    report["model"] = str(model_dir)
    report["backend"] = loaded.name
    report["data"] = str(data_dir)
    report["split"] = split
    report["input_region"] = meta.input_region
    report["skipped"] = [{"clip": str(r.path), "reason": why} for r, why in data.skipped]
    report_dir = Path(report_dir)
    (report_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")

    with (report_dir / "predictions.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip", "true", "predicted", "confidence", *meta.classes])
        for rec, label, p in zip(scored, labels, probs, strict=True):
            clip = relative_clip_path(rec.path, data_dir)
            predicted = meta.classes[int(p.argmax())]
            writer.writerow([clip, label, predicted, f"{p.max():.4f}", *(f"{v:.4f}" for v in p)])
    items = []
    for i in _strip_sample(labels, probs, meta.classes):
        picture = data.picture(scored[i])
        if picture is None:
            continue  # nobody found in the clip: no window, no picture
        items.append(
            {
                "frame": picture,
                "true": labels[i],
                "pred": meta.classes[int(probs[i].argmax())],
                "confidence": float(probs[i].max()),
            }
        )
    plot_prediction_strip(items, report_dir / "predictions.png")
    return report


def held_out_records(
    records: Sequence[ClipRecord],
    meta: ModelMeta,
    split: Literal["test", "validation"],
    data_dir: Path,
    model_dir: Path,
) -> list[ClipRecord]:
    """The records among `records` that the model's `model.json` lists as held out for `split`."""
    held_out = set(meta.training.get(f"{split}_clips", []))
    if not held_out:
        raise DataError(f"{model_dir}: model.json lists no held-out {split} clips")
    return [r for r in records if _names(r.path, data_dir) & held_out]


def _strip_sample(labels: Sequence[str], probs: np.ndarray, classes: Sequence[str]) -> list[int]:
    """Up to two clips per class, a mistake first where there is one: what people look for."""
    chosen: list[int] = []
    for c in classes:
        idx = [i for i, label in enumerate(labels) if label == c]
        wrong = [i for i in idx if classes[int(probs[i].argmax())] != c]
        right = [i for i in idx if i not in wrong]
        chosen += (wrong[:1] + right)[:2]
    return chosen[:8]


def _names(path: Path, root: Path) -> set[str]:
    """How a model.json may name a clip: relative to the data, or (linked clips, older runs)
    by its path."""
    return {relative_clip_path(path, root), str(path), os.path.abspath(path)}


def relative_clip_path(path: Path | str, root: Path) -> str:
    """Clip paths relative to the data root, so a held-out list survives moving the data.

    Symbolic links are not followed: an assembled folder links to clips elsewhere, and a
    clip is named by where it lies in the folder trained on."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return str(path)
