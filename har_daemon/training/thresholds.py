"""The alert class's probability threshold, chosen on validation clips (never test clips).

A two-class alerting model's argmax treats a missed fight and a false alarm alike; the threshold
chosen here on the validation set weighs them by the alert class's F1. It is a clip-level
choice; the daemon's event thresholds (smoothing, enter threshold, min_windows) are chosen for a
false-alert budget at the event level by `training.alert_policy`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from har_daemon.training.scoring import classification_report

__all__ = ["choose_alert_threshold"]


def _thresholded(probs: np.ndarray, alert: int, threshold: float) -> np.ndarray:
    """One-hot predictions of a two-class model: `alert` when its probability >= threshold."""
    pred = np.where(probs[:, alert] >= threshold, alert, 1 - alert)
    out = np.zeros_like(probs)
    out[np.arange(len(pred)), pred] = 1.0
    return out


def choose_alert_threshold(scores: np.ndarray, positive: np.ndarray) -> dict[str, Any]:
    """The probability threshold for the alert class that maximises its F1 on these clips.

    Meant for the validation set only (the test set must not choose it). Candidates are the
    distinct scores (alert when score >= candidate); ties in F1 go to the higher recall (a
    missed fight costs more than a second look). The threshold returned lies midway between
    the chosen score and the next lower one, so the clips here get the same predictions but
    the boundary is not on a single clip's score. With no clip of one side it falls back to
    0.5 (argmax) and says why.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    pos = np.asarray(positive, dtype=bool).ravel()
    if s.shape != pos.shape:
        raise ValueError(f"scores and positive differ in length: {s.shape} != {pos.shape}")
    rule = "max F1 of the alert class on the validation set, ties -> higher recall"
    if not pos.any() or pos.all():
        return {
            "threshold": 0.5,
            "rule": rule,
            "fallback": "validation set lacks "
            + ("alert-class clips" if not pos.any() else "other-class clips")
            + ": argmax threshold",
            "validation": _binary_counts(s >= 0.5, pos),
        }
    candidates = np.unique(s)
    best_i, best_key = 0, (-1.0, -1.0)
    for i, t in enumerate(candidates):
        c = _binary_counts(s >= t, pos)
        key = (c["f1"], c["recall"])
        if key > best_key:
            best_i, best_key = i, key
    lower = candidates[best_i - 1] if best_i > 0 else 0.0
    threshold = float((candidates[best_i] + lower) / 2.0)
    return {
        "threshold": threshold,
        "rule": rule,
        "validation": _binary_counts(s >= threshold, pos),
        "validation_at_argmax": _binary_counts(s >= 0.5, pos),
    }


def _binary_counts(pred: np.ndarray, pos: np.ndarray) -> dict[str, Any]:
    report = classification_report(pos.astype(int), pred.astype(int), ["other", "alert"])
    a = report["per_class"]["alert"]
    return {
        "n_clips": len(pos),
        "precision": a["precision"],
        "recall": a["recall"],
        "f1": a["f1"],
        "tp": a["tp"],
        "fp": a["fp"],
        "fn": a["fn"],
        "tn": a["tn"],
    }
