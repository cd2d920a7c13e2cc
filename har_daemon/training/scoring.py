"""Classification metrics for single-label multiclass predictions (pure numpy, no I/O).

Conventions, stated once for every function here:

* Labels are integer class indices ``0 .. n_classes - 1``; class names are looked up by index.
* Confusion matrices have rows = true class, columns = predicted class.
* Any ratio whose denominator is zero (a class never predicted has no precision, a class absent
  from ``y_true`` has no recall, and F1 of a class with precision + recall == 0) is **0.0**, the
  same as scikit-learn's ``zero_division=0``.
* ``micro`` averages pool TP/FP/FN over all classes. In single-label multiclass every wrong
  prediction is one FP (for the predicted class) and one FN (for the true class), so micro
  precision == micro recall == micro F1 == accuracy.
* ``macro`` is the unweighted mean over **all** classes in ``class_names``, including classes with
  no support (they contribute 0.0 recall/F1, exactly like scikit-learn with explicit ``labels``).
* ``weighted`` is the mean weighted by each class's support (number of true samples).
* F1 is computed per class from that class's precision and recall; macro/weighted F1 are the
  mean of per-class F1 values (not the F1 of mean precision and mean recall).

Everything returned by `classification_report` and `summarize_folds` is made of plain Python
``int``/``float``/``str``/``list``/``dict``, so ``json.dumps`` works on it directly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["classification_report", "confusion_matrix", "summarize_folds"]


def _as_labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must contain integer class indices")
        if not np.all(arr == np.round(arr)):
            raise ValueError(f"{name} must contain integer class indices, got non-integers")
    return arr.astype(np.int64)


def _validate(y_true: Any, y_pred: Any, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(n_classes, bool) or not isinstance(n_classes, int | np.integer):
        raise ValueError(f"n_classes must be an int, got {n_classes!r}")
    if n_classes < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and y_pred differ in length: {t.shape[0]} != {p.shape[0]}")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            bad = arr[(arr < 0) | (arr >= n_classes)][0]
            raise ValueError(f"{name} contains label {int(bad)} outside 0..{n_classes - 1}")
    return t, p


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Count matrix of shape (n_classes, n_classes), int64; ``cm[i, j]`` = true i predicted j.

    Raises ValueError if the lengths differ, labels are not integers, or any label is outside
    ``0 .. n_classes - 1``.
    """
    t, p = _validate(y_true, y_pred, n_classes)
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _div(num: float, den: float) -> float:
    """num / den, or 0.0 when den == 0 (zero_division=0)."""
    return float(num) / float(den) if den else 0.0


def _f1(precision: float, recall: float) -> float:
    return _div(2.0 * precision * recall, precision + recall)


def classification_report(y_true: Any, y_pred: Any, class_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, micro/macro/weighted precision-recall-F1, per-class counts, confusion matrix.

    Returns a JSON-serialisable dict::

        {
          "accuracy": float, "n_samples": int,
          "micro":    {"precision", "recall", "f1"},
          "macro":    {"precision", "recall", "f1"},
          "weighted": {"precision", "recall", "f1"},
          "per_class": {name: {"precision", "recall", "f1", "support", "tp", "fp", "fn", "tn"}},
          "confusion_matrix": [[int, ...], ...],   # rows = true, cols = predicted
          "class_names": [str, ...],
        }

    Zero division gives 0.0 (see the module docstring); with no samples at all every metric is
    0.0. For each class ``tp + fp + fn + tn == n_samples``. Raises ValueError on mismatched
    lengths, out-of-range labels, or duplicate/empty ``class_names``.
    """
    names = [str(n) for n in class_names]
    if not names:
        raise ValueError("class_names must not be empty")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names contains duplicates: {names}")
    k = len(names)
    cm = confusion_matrix(y_true, y_pred, k)
    n = int(cm.sum())

    tp = np.diag(cm).astype(np.int64)
    fp = cm.sum(axis=0) - tp  # predicted as c but not c
    fn = cm.sum(axis=1) - tp  # truly c but predicted otherwise
    tn = n - tp - fp - fn
    support = cm.sum(axis=1)

    per_class: dict[str, dict[str, float | int]] = {}
    precisions, recalls, f1s = [], [], []
    for i, name in enumerate(names):
        p = _div(tp[i], tp[i] + fp[i])
        r = _div(tp[i], tp[i] + fn[i])
        f = _f1(p, r)
        precisions.append(p)
        recalls.append(r)
        f1s.append(f)
        per_class[name] = {
            "precision": p,
            "recall": r,
            "f1": f,
            "support": int(support[i]),
            "tp": int(tp[i]),
            "fp": int(fp[i]),
            "fn": int(fn[i]),
            "tn": int(tn[i]),
        }

    tp_all, fp_all, fn_all = int(tp.sum()), int(fp.sum()), int(fn.sum())
    micro_p = _div(tp_all, tp_all + fp_all)
    micro_r = _div(tp_all, tp_all + fn_all)

    def _weighted(values: list[float]) -> float:
        return _div(float(np.dot(values, support)), n)

    return {
        "accuracy": _div(tp_all, n),
        "n_samples": n,
        "micro": {"precision": micro_p, "recall": micro_r, "f1": _f1(micro_p, micro_r)},
        "macro": {
            "precision": float(np.mean(precisions)),
            "recall": float(np.mean(recalls)),
            "f1": float(np.mean(f1s)),
        },
        "weighted": {
            "precision": _weighted(precisions),
            "recall": _weighted(recalls),
            "f1": _weighted(f1s),
        },
        "per_class": per_class,
        "confusion_matrix": cm.tolist(),
        "class_names": names,
    }


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(np.mean(arr)), "std": std}


def summarize_folds(reports: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean and spread of `classification_report` results over cross-validation folds.

    ``std`` is the **sample** standard deviation (ddof=1) across folds; with a single fold it is
    0.0. Returns a JSON-serialisable dict::

        {
          "n_folds": int,
          "class_names": [str, ...],
          "std_ddof": 1,
          "accuracy":  {"mean": float, "std": float, "per_fold": [float, ...]},
          "macro_f1":  {"mean": float, "std": float, "per_fold": [float, ...]},
          "per_class_recall": {name: {"mean": float, "std": float, "per_fold": [float, ...]}},
        }

    A class with no support in some fold has recall 0.0 there (zero_division=0) and that 0.0 is
    averaged in like any other fold; use ``per_fold`` and each report's ``support`` to spot it.
    Raises ValueError if ``reports`` is empty or the folds disagree on ``class_names``.
    """
    if not reports:
        raise ValueError("summarize_folds needs at least one report")
    names = list(reports[0]["class_names"])
    for i, rep in enumerate(reports[1:], start=1):
        if list(rep["class_names"]) != names:
            raise ValueError(f"fold {i} has class_names {rep['class_names']}, fold 0 has {names}")

    def _entry(values: list[float]) -> dict[str, Any]:
        vals = [float(v) for v in values]
        if not all(math.isfinite(v) for v in vals):
            raise ValueError(f"non-finite metric in folds: {vals}")
        return {**_mean_std(vals), "per_fold": vals}

    return {
        "n_folds": len(reports),
        "class_names": names,
        "std_ddof": 1,
        "accuracy": _entry([r["accuracy"] for r in reports]),
        "macro_f1": _entry([r["macro"]["f1"] for r in reports]),
        "per_class_recall": {
            name: _entry([r["per_class"][name]["recall"] for r in reports]) for name in names
        },
    }
