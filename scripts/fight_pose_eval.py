"""The fight's body-pose signal, evaluated offline: pose window features, two classifiers,
folds grouped by source (fight set) and by scene (quiet corpus).

    nice -n 10 python scripts/fight_pose_eval.py [--data ../shared/data] [--folds 5]
        [--write models/fight_pose]

Runs the person detector and MoveNet on every 0.2 s sample of the 242 surveillance-fight clips
and the quiet corpus (cached per clip by scripts/fall_data.py under /tmp, never in the
repository: a rerun reads the cache and takes seconds), replays them through the daemon's own
person tracks (runtime.poses), and takes one window per fight-set clip (its last `WINDOW_S`)
and one window a second over the quiet clips. A gradient-boosted tree and a logistic
regression are trained on the same folds: the fight set's grouped folds of `har-daemon cv`
(scan_dataset + grouped_kfold), each quiet scene assigned whole to one fold. Prints one JSON
object: per model, per fold and per source accuracy, fight recall, noFight recall, the quiet
windows' false-positive rate per scene, and the same on the windows where pose is reliable
(the fusion's condition). `--write DIR` trains the better model on everything and writes its
numpy-only form (model.fight_pose) with these figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fall_data import DATA, Clip, Seen, clips, extract_all

from har_daemon.config import InferenceConfig
from har_daemon.core.paths import bundled
from har_daemon.model.fight_pose import MODEL_FILE, load
from har_daemon.model.fight_pose_features import (
    FEATURE_NAMES,
    WINDOW_S,
    near_pairs,
    reliable,
    window_features,
)
from har_daemon.model.meta import read_meta
from har_daemon.runtime.fight_pose import window_tracks
from har_daemon.runtime.poses import PoseTracks
from har_daemon.training.dataset import grouped_kfold, scan_dataset

CLASSES = ["fight", "noFight"]
QUIET_STEP_S = 1.0
"""A quiet clip gives a window every second (the fight set one per clip)."""
_DEFAULTS = InferenceConfig()
MIN_HEIGHT_PX = _DEFAULTS.pose_min_height_px
MIN_COVERAGE = _DEFAULTS.pose_min_coverage
_RULES = read_meta(bundled("models/fight")).person_region
assert _RULES is not None
MIN_PERSON_SCORE = _RULES.min_score
"""The fight model's person stage keeps boxes from this score: the pose stage does too."""


def fight_clips(data: Path) -> list[Clip]:
    out = []
    with (data / "surveillance-fight" / "sources.csv").open() as f:
        for row in csv.DictReader(f):
            sub = data / "surveillance-fight" / row["label"]
            out.append(Clip(next(sub.glob(row["clip"] + ".*")), row["label"], row["source"], None))
    return out


Pairs = list[tuple[np.ndarray, bool]]
"""One window's near pairs: (feature vector, both people reliable)."""


def windows(seen: Seen, ends: list[float] | None) -> list[Pairs]:
    """The near pairs of each window ending at `ends` (None: the clip's last sample),
    replaying the clip through the daemon's person tracks."""
    tracks = PoseTracks()
    out: list[Pairs] = []
    ends = list(ends) if ends is not None else [float(seen.times[-1])] if len(seen.times) else []
    for t, boxes, kps in seen.frames():
        keep = boxes[:, 4] >= MIN_PERSON_SCORE
        kept = [k for k, m in zip(kps, keep, strict=True) if m]
        tracks.update(t, boxes[keep], kept, seen.frame_hw)
        while ends and t >= ends[0] - 1e-6:
            w = window_tracks(tracks.tracks, t)
            out.append([
                (window_features(pair),
                 all(reliable(seq, MIN_HEIGHT_PX, MIN_COVERAGE) for seq in pair))
                for pair in near_pairs(w)
            ])  # fmt: skip
            ends.pop(0)
    return out


def window_scores(proba: np.ndarray, owner: np.ndarray, trusted: np.ndarray, n: int):
    """Per window: the most alarming pair's P(fight) (0 without a pair), and the same over
    its reliable pairs (nan without one: pose does not speak there)."""
    p_all, p_rel = np.zeros(n), np.full(n, np.nan)
    np.maximum.at(p_all, owner, proba)
    for i in np.flatnonzero(trusted):
        w = owner[i]
        p_rel[w] = proba[i] if np.isnan(p_rel[w]) else max(p_rel[w], proba[i])
    return p_all, p_rel


def _rates(p: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, Any]:
    pred = p >= threshold
    r: dict[str, Any] = {
        "n": len(y),
        "accuracy": round(float(np.mean(pred == (y == 1))), 3) if len(y) else None,
    }
    if (y == 1).any():
        r["fight_recall"] = round(float(pred[y == 1].mean()), 3)
    if (y == 0).any():
        r["nofight_recall"] = round(float(1 - pred[y == 0].mean()), 3)
    return r


def _models() -> dict[str, Any]:
    return {
        "gradient_boosting": lambda: GradientBoostingClassifier(
            n_estimators=150, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=0
        ),
        "logistic_regression": lambda: make_pipeline(
            StandardScaler(), LogisticRegression(C=0.3, max_iter=3000, class_weight="balanced")
        ),
    }


def _report(p, y, fold, group, quiet, k, threshold, only=None) -> dict[str, Any]:
    """Figures over the windows of `only` (default: all), windows not in it left out."""
    sel = np.ones(len(y), bool) if only is None else only
    fs, quiet = ~quiet & sel, quiet & sel
    out: dict[str, Any] = {
        "fight_set": _rates(p[fs], y[fs], threshold),
        "quiet_windows": int(quiet.sum()),
        "quiet_window_fp": round(float((p[quiet] >= threshold).mean()), 3) if quiet.any() else None,
    }
    out["per_fold"] = [
        {**_rates(p[fs & (fold == i)], y[fs & (fold == i)], threshold),
         "quiet_fp": round(float((p[quiet & (fold == i)] >= threshold).mean()), 3)
         if (quiet & (fold == i)).any() else None}
        for i in range(k)
    ]  # fmt: skip
    acc = [f["accuracy"] for f in out["per_fold"] if f["accuracy"] is not None]
    out["fold_accuracy_mean"] = round(float(np.mean(acc)), 3)
    out["per_source"] = {
        g: [_rates(p[fs & (group == g)], y[fs & (group == g)], threshold)["accuracy"],
            int((fs & (group == g)).sum())]
        for g in sorted(set(group[fs]))
    }  # fmt: skip
    out["quiet_fp_per_scene"] = {
        g: [round(float((p[quiet & (group == g)] >= threshold).mean()), 3),
            int((quiet & (group == g)).sum())]
        for g in sorted(set(group[quiet]))
    }  # fmt: skip
    return out


def export(model: Any, threshold: float) -> dict[str, Any]:
    """The numpy-only form of a fitted model (model.fight_pose reads it)."""
    base = {"features": list(FEATURE_NAMES), "threshold": threshold}
    if isinstance(model, GradientBoostingClassifier):
        prior = float(model.init_.class_prior_[1])
        trees = []
        for (est,) in model.estimators_:
            t = est.tree_
            trees.append({
                "left": t.children_left.tolist(), "right": t.children_right.tolist(),
                "feature": t.feature.tolist(), "threshold": t.threshold.tolist(),
                "value": t.value[:, 0, 0].tolist(),
            })  # fmt: skip
        init = float(np.log(prior / (1 - prior)))
        return {**base, "kind": "trees", "init": init,
                "learning_rate": float(model.learning_rate), "trees": trees}  # fmt: skip
    scaler, lr = model.steps[0][1], model.steps[-1][1]
    return {**base, "kind": "logistic", "mean": scaler.mean_.tolist(),
            "scale": scaler.scale_.tolist(), "coef": lr.coef_[0].tolist(),
            "intercept": float(lr.intercept_[0])}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--write", type=Path, default=None, help="write the better model here")
    ap.add_argument(
        "--heldout-write",
        type=Path,
        default=None,
        help="also write the better model trained without the quiet corpus and without the "
        "clips of --exclude: for measuring it on the quiet corpus and on those streams",
    )
    ap.add_argument(
        "--exclude",
        type=Path,
        nargs="*",
        default=[],
        help="clips.csv files of `har-daemon streams` (their clips are held out)",
    )
    ap.add_argument(
        "--positives",
        choices=("all", "closest"),
        default="all",
        help="which pairs of a fight clip train as fights: all its near pairs, or the closest",
    )
    args = ap.parse_args()
    fights = fight_clips(args.data)
    quiet = [c for c in clips(args.data) if c.kind == "quiet"]
    seen = extract_all(fights + quiet, threads=1, progress=lambda s: print(s, file=sys.stderr))

    records = scan_dataset(args.data / "surveillance-fight", CLASSES)
    fold_of = {
        r.path.stem: i
        for i, (_, test) in enumerate(grouped_kfold(records, args.folds, args.seed))
        for r in test
    }
    scenes = sorted({c.group for c in quiet})
    excluded = {
        Path(row["clip"]).stem for path in args.exclude for row in csv.DictReader(path.open())
    }
    wins: list[tuple[Pairs, int, int, str, bool, bool]] = []  # pairs, y, fold, group, quiet, held
    for c in fights:
        for pairs in windows(seen[c.path], None):
            y = int(c.kind == "fight")
            wins.append((pairs, y, fold_of[c.path.stem], c.group, False, c.path.stem in excluded))
    for c in quiet:
        s = seen[c.path]
        ends = list(np.arange(WINDOW_S, float(s.times[-1]) + 1e-6, QUIET_STEP_S))
        for pairs in windows(s, ends):
            wins.append((pairs, 0, scenes.index(c.group) % args.folds, c.group, True, False))
    n = len(wins)
    y = np.array([w[1] for w in wins])
    fold = np.array([w[2] for w in wins])
    group = np.array([w[3] for w in wins])
    is_quiet = np.array([w[4] for w in wins])
    held_out = np.array([w[5] for w in wins])
    owner = np.array([i for i, w in enumerate(wins) for _ in w[0]], int)
    x = np.stack([v for w in wins for v, _ in w[0]])
    trusted = np.array([r for w in wins for _, r in w[0]], bool)
    reliable = np.zeros(n, bool)
    reliable[owner[trusted]] = True

    def share(sel: np.ndarray) -> float:
        return round(float(reliable[sel].mean()), 3)

    result: dict[str, Any] = {
        "windows": {"fight_set": int((~is_quiet).sum()), "quiet": int(is_quiet.sum())},
        "pairs": {"all": len(x), "reliable": int(trusted.sum())},
        "window_s": WINDOW_S,
        "sample_spacing_s": 0.2,
        "reliable": {"min_height_px": MIN_HEIGHT_PX, "min_coverage": MIN_COVERAGE,
                     "fight_set_share": share(~is_quiet),
                     "fight_share": share(~is_quiet & (y == 1)),
                     "quiet_share": share(is_quiet)},
        "features": list(FEATURE_NAMES),
    }  # fmt: skip
    usable = np.ones(len(x), bool)
    if args.positives == "closest":  # a fight clip's fight is between its closest pair
        dist = x[:, FEATURE_NAMES.index("pair_distance_min")]
        for w in np.unique(owner[y[owner] == 1]):
            mine = np.flatnonzero(owner == w)
            usable[mine] = False
            usable[mine[np.argmin(dist[mine])]] = True
    result["positives"] = args.positives
    for name, make in _models().items():
        proba = np.zeros(len(x))
        for i in range(args.folds):
            train, test = (fold[owner] != i) & usable, fold[owner] == i
            proba[test] = make().fit(x[train], y[owner][train]).predict_proba(x[test])[:, 1]
        p_all, p_rel = window_scores(proba, owner, trusted, n)
        result[name] = {
            "all_windows": _report(p_all, y, fold, group, is_quiet, args.folds, args.threshold),
            "reliable_windows": _report(
                np.nan_to_num(p_rel), y, fold, group, is_quiet, args.folds, args.threshold, reliable
            ),
        }
    best = max(_models(), key=lambda m: result[m]["reliable_windows"]["fight_set"]["accuracy"] or 0)
    result["better"] = best
    if args.write is not None:
        model = _models()[best]().fit(x[usable], y[owner][usable])
        doc = export(model, args.threshold)
        doc["evaluation"] = {k: v for k, v in result.items() if k != "features"}
        args.write.mkdir(parents=True, exist_ok=True)
        (args.write / MODEL_FILE).write_text(json.dumps(doc) + "\n")
        served = load(args.write)
        ours = np.array([served.score(v) for v in x])
        gap = float(np.max(np.abs(ours - model.predict_proba(x)[:, 1])))
        result["written"] = {"path": str(args.write / MODEL_FILE), "max_abs_diff_vs_sklearn": gap}
    if args.heldout_write is not None:
        keep = ~is_quiet[owner] & ~held_out[owner] & usable
        model = _models()[best]().fit(x[keep], y[owner][keep])
        doc = export(model, args.threshold)
        doc["evaluation"] = {
            "trained_on": f"{int(keep.sum())} pairs of fight-set windows: no quiet footage, "
            f"none of the {int(held_out.sum())} clips of {[str(p) for p in args.exclude]}"
        }
        args.heldout_write.mkdir(parents=True, exist_ok=True)
        (args.heldout_write / MODEL_FILE).write_text(json.dumps(doc) + "\n")
        result["heldout_written"] = {
            "path": str(args.heldout_write / MODEL_FILE),
            "pairs": int(keep.sum()),
            "excluded_clips": len(excluded),
        }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
