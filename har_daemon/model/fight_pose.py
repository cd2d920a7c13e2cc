"""The fight's pose model, served with numpy alone: a window's pose features -> P(fight).

Trained offline with scikit-learn (scripts/fight_pose_eval.py) and written to
`models/fight_pose/model.json` as plain numbers, so the daemon needs neither scikit-learn nor
TensorFlow: either a standardised logistic regression (`kind = "logistic"`) or the regression
trees of a gradient-boosted classifier (`kind = "trees"`, binary log-loss: the log-odds are
`init + learning_rate * sum(tree leaves)`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from har_daemon.core.errors import ModelError
from har_daemon.core.paths import bundled
from har_daemon.model.fight_pose_features import FEATURE_NAMES

FIGHT_POSE_DIR = bundled("models/fight_pose")
MODEL_FILE = "model.json"


@dataclass(frozen=True)
class Tree:
    """One regression tree in scikit-learn's array form (a leaf has left == -1)."""

    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    value: np.ndarray

    def leaf(self, x: np.ndarray) -> float:
        node = 0
        while self.left[node] >= 0:
            go_left = x[self.feature[node]] <= self.threshold[node]
            node = int(self.left[node] if go_left else self.right[node])
        return float(self.value[node])


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))


@dataclass(frozen=True)
class FightPoseModel:
    kind: str
    threshold: float
    """P(fight) at which the model's own evaluation called a window a fight."""
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    coef: np.ndarray | None = None
    intercept: float = 0.0
    init: float = 0.0
    learning_rate: float = 0.0
    trees: tuple[Tree, ...] = ()

    def score(self, x: np.ndarray) -> float:
        """P(fight) of one window's `FEATURE_NAMES` vector."""
        x = np.asarray(x, np.float64)
        if self.kind == "logistic":
            assert self.mean is not None and self.scale is not None and self.coef is not None
            return _sigmoid(float(((x - self.mean) / self.scale) @ self.coef) + self.intercept)
        return _sigmoid(self.init + self.learning_rate * sum(t.leaf(x) for t in self.trees))


def _tree(raw: dict[str, Any]) -> Tree:
    t = Tree(
        np.asarray(raw["left"], np.int64),
        np.asarray(raw["right"], np.int64),
        np.asarray(raw["feature"], np.int64),
        np.asarray(raw["threshold"], np.float64),
        np.asarray(raw["value"], np.float64),
    )
    n = len(t.left)
    if not n or any(len(a) != n for a in (t.right, t.feature, t.threshold, t.value)):
        raise ValueError("tree arrays differ in length")
    if t.left.max() >= n or t.right.max() >= n or t.feature.max() >= len(FEATURE_NAMES):
        raise ValueError("tree refers past its arrays or the features")
    return t


def load(model_dir: Path | str = FIGHT_POSE_DIR) -> FightPoseModel:
    """The model in `model_dir/model.json`; a bad or mismatched file is a ModelError naming it."""
    path = Path(model_dir) / MODEL_FILE
    try:
        raw = json.loads(path.read_text())
        if tuple(raw["features"]) != FEATURE_NAMES:
            raise ValueError("its features are not model.fight_pose_features.FEATURE_NAMES")
        kind, threshold = str(raw["kind"]), float(raw["threshold"])
        if kind == "logistic":
            arrays = [np.asarray(raw[k], np.float64) for k in ("mean", "scale", "coef")]
            if any(a.shape != (len(FEATURE_NAMES),) for a in arrays):
                raise ValueError("mean, scale and coef need one number per feature")
            return FightPoseModel(kind, threshold, *arrays, intercept=float(raw["intercept"]))
        if kind == "trees":
            trees = tuple(_tree(t) for t in raw["trees"])
            return FightPoseModel(
                kind,
                threshold,
                init=float(raw["init"]),
                learning_rate=float(raw["learning_rate"]),
                trees=trees,
            )
        raise ValueError(f"unknown kind {kind!r}")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ModelError(f"cannot read fight pose model {path}: {exc}") from None
