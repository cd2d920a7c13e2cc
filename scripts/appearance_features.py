"""The pure half of scripts/appearance_eval.py: window features, folds, classifiers, figures.

No video and no model here (the evaluation's cached embeddings come in as arrays), so every
rule is unit-tested on small synthetic arrays (tests/training/test_appearance_eval.py).

Vocabulary: a *unit* is what gets one score and one truth: a fight-set clip, or one quiet
window (20 sampled frames, every second of a quiet clip). A unit's *samples* are its feature
vectors for one signal: one for the whole frame, one per region of people for the crops (none
when nobody was found). A unit scores as its most alarming sample, as in the daemon.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from har_daemon.model.pretrained_head import FEATURES, window_features
from har_daemon.training.dataset import ClipRecord, grouped_kfold

MAX_QUIET_FP = 0.05
"""The tuned threshold lets at most this share of the training folds' quiet windows alert."""
PCA_DIMS = 64
"""Window features (3 x 1280) are reduced to this many components, fitted on the training
folds only (inside each model's pipeline)."""


def quiet_site(scene: str) -> str:
    """The place a quiet scene was filmed: the unit kept whole in one fold. The corpus's two
    Lisbon cameras film the same moments and its `people_detection` preview shows the office
    of `one_by_one` (quiet/README.md), so each pair is one place."""
    if "(Lisbon)" in scene:
        return "shopping centre (Lisbon)"
    if "same room as one_by_one" in scene:
        return "indoor office/room"
    return scene


def quiet_folds(windows_per_site: dict[str, int], k: int) -> dict[str, int]:
    """Each site whole in one of `k` folds: largest first, each to the fold with the fewest
    quiet windows so far (ties: the lower fold), so the folds' quiet footage is balanced."""
    load = np.zeros(k, int)
    out: dict[str, int] = {}
    for site in sorted(windows_per_site, key=lambda s: (-windows_per_site[s], s)):
        f = int(np.argmin(load))
        out[site] = f
        load[f] += windows_per_site[site]
    return out


def fight_folds(records: Sequence[ClipRecord], k: int, seed: int) -> dict[Path, int]:
    """Each fight-set clip's fold: `har-daemon cv`'s folds (grouped_kfold, by source)."""
    return {r.path: i for i, (_, test) in enumerate(grouped_kfold(records, k, seed)) for r in test}


@dataclass(frozen=True)
class Units:
    """What each unit is: truth (1 fight), fold, source group or scene, quiet or fight set."""

    y: np.ndarray
    fold: np.ndarray
    group: np.ndarray
    quiet: np.ndarray


@dataclass(frozen=True)
class Samples:
    """One signal's feature vectors: `x[m]` belongs to unit `owner[m]`; `teach[m]` says whether
    it may train (a fight clip teaches with its region of most motion only,
    training.people.training_indices)."""

    x: np.ndarray
    owner: np.ndarray
    teach: np.ndarray


def unit_max(proba: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Per unit, its most alarming sample's score; NaN for a unit with no sample."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, owner, proba)
    out[np.isneginf(out)] = np.nan
    return out


def balanced_weights(y: np.ndarray) -> np.ndarray:
    """Sample weights that give each class the same total weight."""
    w = np.zeros(len(y))
    for c in np.unique(y):
        w[y == c] = len(y) / (2.0 * (y == c).sum())
    return w


__all__ = ["window_features"]  # written once in model.pretrained_head, imported from here too

Maker = Callable[[], Any]


def models(pca_dims: int = PCA_DIMS, seed: int = 0) -> dict[str, Maker]:
    """The two classifiers, each with its own scaling and PCA fitted on its training data."""
    return {
        "logistic_regression": lambda: make_pipeline(
            StandardScaler(),
            PCA(pca_dims, random_state=seed),
            LogisticRegression(C=0.1, max_iter=3000),
        ),
        "gradient_boosting": lambda: make_pipeline(
            StandardScaler(),
            PCA(min(pca_dims, 32), random_state=seed),
            GradientBoostingClassifier(
                n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed
            ),
        ),
    }


def _fit(make: Maker, x: np.ndarray, y: np.ndarray) -> Any:
    model = make()
    pca = getattr(model, "named_steps", {}).get("pca")
    if pca is not None:  # no more components than the training data holds
        pca.n_components = min(pca.n_components, len(x) - 1, x.shape[1])
    last = model.steps[-1][0] if hasattr(model, "steps") else None
    key = f"{last}__sample_weight" if last else "sample_weight"
    return model.fit(x, y, **{key: balanced_weights(y)})


def fold_scores(
    make: Maker, s: Samples, u: Units, k: int, quiet_negatives: bool = True
) -> np.ndarray:
    """(k, units) scores: row i holds, for each unit of fold j, its score by a model trained
    on neither fold i nor fold j. Row i at fold i's units is the usual out-of-fold score; its
    other entries are what the training folds of fold i score out-of-fold (nested), where fold
    i's threshold is chosen without ever seeing fold i. One model per pair of folds serves both
    (k + k(k-1)/2 fits). Without `quiet_negatives` no quiet unit trains. NaN: no sample."""
    n = len(u.y)
    out = np.full((k, n), np.nan)
    y_s = u.y[s.owner]
    fold_s = u.fold[s.owner]
    may = s.teach & (quiet_negatives | ~u.quiet[s.owner])
    for i in range(k):
        for j in range(i, k):
            train = may & (fold_s != i) & (fold_s != j)
            if len(np.unique(y_s[train])) < 2:
                continue
            model = _fit(make, s.x[train], y_s[train])
            test = (fold_s == i) | (fold_s == j)
            p = unit_max(model.predict_proba(s.x[test])[:, 1], s.owner[test], n)
            for a, b in ((i, j), (j, i)):
                mine = u.fold == b
                out[a, mine] = p[mine]
    return out


def out_of_fold(scores: np.ndarray, u: Units) -> np.ndarray:
    """Each unit's score by the model that held its fold out (row fold(u) of `fold_scores`)."""
    return scores[u.fold, np.arange(len(u.y))]


def fp_threshold(p_quiet: np.ndarray, max_fp: float = MAX_QUIET_FP) -> float | None:
    """The lowest threshold at which at most `max_fp` of these quiet scores reach it (a score
    alerts at >= threshold); None without quiet scores."""
    p = np.sort(np.asarray(p_quiet, float))[::-1]
    if len(p) == 0:
        return None
    allowed = int(np.floor(max_fp * len(p) + 1e-9))
    if allowed >= len(p):
        return 0.0
    return float(np.nextafter(p[allowed], np.inf))


def fold_thresholds(scores: np.ndarray, u: Units, k: int, max_fp: float = MAX_QUIET_FP):
    """Fold i's threshold: `fp_threshold` over the quiet units of the other folds, scored by
    row i of `fold_scores` (models that never saw fold i)."""
    out = []
    for i in range(k):
        sel = u.quiet & (u.fold != i)
        out.append(fp_threshold(np.nan_to_num(scores[i, sel]), max_fp))
    return out


def _r(v: float) -> float:
    return round(float(v), 3)


def rates(p: np.ndarray, y: np.ndarray, thr: np.ndarray | float) -> dict[str, Any]:
    """Accuracy and both recalls of calling a unit a fight at p >= thr."""
    pred = p >= thr
    out: dict[str, Any] = {"n": len(y)}
    if len(y):
        out["accuracy"] = _r(np.mean(pred == (y == 1)))
    if (y == 1).any():
        out["fight_recall"] = _r(pred[y == 1].mean())
    if (y == 0).any():
        out["nofight_recall"] = _r(1 - pred[y == 0].mean())
    return out


def _mean_std(rows: Sequence[dict[str, Any]], key: str) -> list[float] | None:
    v = [r[key] for r in rows if key in r]
    return [_r(np.mean(v)), _r(np.std(v))] if v else None


def mixed_sources(u: Units) -> np.ndarray:
    """The fight-set units whose source group holds both labels: where the place cannot give
    the label away."""
    fs = ~u.quiet
    both = {g for g in set(u.group[fs]) if len(set(u.y[fs & (u.group == g)])) == 2}
    return fs & np.isin(u.group, sorted(both))


def report(p: np.ndarray, u: Units, k: int, thr: Sequence[float | None] | float) -> dict[str, Any]:
    """The figures of unit scores `p` (NaN counts as 0: nobody found, nothing raised) at one
    threshold or one per fold: over the fight set per fold (mean, std), per source group
    (right, clips), and the quiet windows alerted, in all and per scene."""
    p = np.nan_to_num(p)
    per = [thr] * k if np.isscalar(thr) else list(thr)
    t = np.array([np.inf if v is None else v for v in per])[u.fold]
    fs = ~u.quiet
    folds = []
    for i in range(k):
        m = fs & (u.fold == i)
        q = u.quiet & (u.fold == i)
        row = rates(p[m], u.y[m], t[m])
        row["quiet_alerted"] = [int((p[q] >= t[q]).sum()), int(q.sum())]
        if not np.isscalar(thr):
            row["threshold"] = None if per[i] is None else _r(per[i])
        folds.append(row)
    right = (p >= t) == (u.y == 1)
    q = u.quiet
    mixed = mixed_sources(u)
    return {
        "threshold": _r(thr) if np.isscalar(thr) else "per fold, <= 5 % of training quiet",
        "accuracy": _mean_std(folds, "accuracy"),
        "fight_recall": _mean_std(folds, "fight_recall"),
        "nofight_recall": _mean_std(folds, "nofight_recall"),
        "pooled": rates(p[fs], u.y[fs], t[fs]),
        "quiet_windows_alerted": [int((p[q] >= t[q]).sum()), int(q.sum())],
        "quiet_alerted_fraction": _r((p[q] >= t[q]).mean()) if q.any() else None,
        "sources_with_both_labels": rates(p[mixed], u.y[mixed], t[mixed]),
        "one_label_sources": rates(p[fs & ~mixed], u.y[fs & ~mixed], t[fs & ~mixed]),
        "per_fold": folds,
        "per_source": {
            g: [int(right[fs & (u.group == g)].sum()), int((fs & (u.group == g)).sum())]
            for g in sorted(set(u.group[fs]))
        },
        "quiet_per_scene": {
            g: [int((p[m] >= t[m]).sum()), int(m.sum()), _r((p[m] >= t[m]).mean())]
            for g in sorted(set(u.group[q]))
            for m in [q & (u.group == g)]
        },
    }


def fuse(a: np.ndarray, b: np.ndarray, how: str) -> np.ndarray:
    """Two signals' scores of the same units: their max or mean; where one is NaN (no region
    of people) the other speaks alone."""
    if how == "max":
        return np.fmax(a, b)
    if how == "mean":
        both = np.stack([a, b])
        seen = (~np.isnan(both)).sum(axis=0)
        total = np.nansum(both, axis=0)
        return np.where(seen > 0, total / np.maximum(seen, 1), np.nan)
    raise ValueError(f"unknown fusion {how!r}")


def export_linear(pipeline: Any) -> dict[str, Any]:
    """`models()["logistic_regression"]` fitted, as model.pretrained_head's arrays: scaling,
    PCA (not whitened) and the logistic regression are linear, so their product is one weight
    per window feature and a bias (what the daemon serves with numpy alone)."""
    scaler, pca, lr = (
        pipeline.named_steps[k] for k in ("standardscaler", "pca", "logisticregression")
    )
    if getattr(pca, "whiten", False) or pca.n_features_in_ != FEATURES:
        raise ValueError("expected an unwhitened PCA over the context window features")
    w = lr.coef_[0] @ pca.components_  # over the standardised features
    coef = w / scaler.scale_
    intercept = float(lr.intercept_[0] - w @ pca.mean_ - coef @ scaler.mean_)
    return {"coef": [float(v) for v in coef], "intercept": intercept}
