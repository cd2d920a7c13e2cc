"""The pretrained appearance head for fights, served with numpy alone: the frozen MobileNetV2
embeddings (model.appearance) of a region's 1.5x context square over a window -> P(fight).

Trained offline with scikit-learn (scripts/pretrained_head_write.py: standardiser, PCA and a
logistic regression, docs/calibration.md section 8). All three are linear up to the sigmoid,
so `model.json` holds their product: one weight per window feature and a bias, which is exactly
the pipeline's `predict_proba` (tests/model/test_pretrained_head.py) without scikit-learn in
the daemon. It also records `input_side`, the encoder's input size its embeddings were
computed at: the daemon runs the encoder at that size (model.appearance serves any multiple of
32 from the one file). The window features and the context square live here, written once for
the evaluation scripts and the daemon alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from har_daemon.core.errors import ModelError
from har_daemon.core.paths import bundled
from har_daemon.model.appearance import EMBED_DIM, check_side
from har_daemon.model.meta import PersonRegion
from har_daemon.model.regions import Region, square_region

PRETRAINED_DIR = bundled("models/fight_pretrained")
MODEL_FILE = "model.json"
CONTEXT = 1.5
"""The context crop: the region's square grown to this many times its side (shifted into the
frame, at most its shorter side: regions.square_region)."""
FEATURES = 3 * EMBED_DIM
"""Window features: mean, standard deviation and mean absolute change of each embedding."""


def window_features(emb: np.ndarray) -> np.ndarray:
    """(..., T, D) per-frame embeddings -> (..., 3D): their mean, their standard deviation and
    the mean absolute frame-to-frame change (motion in feature space)."""
    e = np.asarray(emb, np.float32)
    if e.shape[-2] < 2:
        raise ValueError(f"a window needs at least 2 frames, got {e.shape[-2]}")
    step = np.abs(np.diff(e, axis=-2)).mean(axis=-2)
    return np.concatenate([e.mean(axis=-2), e.std(axis=-2), step], axis=-1)


def context_box(region: Region, frame_hw: tuple[int, int], rules: PersonRegion) -> Region:
    """`region` grown to `CONTEXT` times its side around its centre, inside the frame (the
    person-region `rules` give the square's rounding; their pad and least side do not apply)."""
    wider = rules.model_copy(update={"pad": (CONTEXT - 1) / 2, "min_side": 1})
    return square_region(np.asarray(region, float), frame_hw, wider)


def _sigmoid(z: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(z, -50.0, 50.0))))


@dataclass(frozen=True)
class PretrainedHead:
    coef: np.ndarray
    """One weight per window feature (`FEATURES`), float64."""
    intercept: float
    input_side: int
    """The encoder's input side (px) the head was trained at, and must be served at."""

    def logit(self, features: np.ndarray) -> np.ndarray:
        """The log-odds of (..., FEATURES) window features."""
        return np.asarray(features, np.float64) @ self.coef + self.intercept

    def score(self, embeddings: np.ndarray) -> float:
        """P(fight) of one window's (T, 1280) context embeddings."""
        return _sigmoid(float(self.logit(window_features(embeddings))))


def load(model_dir: Path | str = PRETRAINED_DIR) -> PretrainedHead:
    """The head in `model_dir/model.json`; a bad or mismatched file is a ModelError naming it."""
    path = Path(model_dir) / MODEL_FILE
    try:
        raw = json.loads(path.read_text())
        if raw.get("kind") != "linear" or raw.get("input") != "context_window_features":
            raise ValueError("not a pretrained appearance head (kind 'linear' over context "
                             "window features)")  # fmt: skip
        coef = np.asarray(raw["coef"], np.float64)
        if coef.shape != (FEATURES,) or not np.isfinite(coef).all():
            raise ValueError(f"coef needs {FEATURES} finite numbers, got shape {coef.shape}")
        intercept = float(raw["intercept"])
        if not np.isfinite(intercept):
            raise ValueError("intercept is not finite")
        return PretrainedHead(coef, intercept, check_side(raw["input_side"]))
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelError(f"cannot read pretrained fight model {path}: {exc}") from None
