"""scripts/appearance_features.py: the appearance evaluation's window features, folds,
out-of-fold scores, thresholds and figures, on small synthetic arrays."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from har_daemon.training.dataset import ClipRecord
from tests.shared_data import load_script

af = load_script("appearance_features")
RNG = np.random.default_rng(0)


# -- window features ------------------------------------------------------------------------


def test_window_features_are_mean_std_and_motion_of_the_embeddings() -> None:
    emb = RNG.normal(size=(20, 6)).astype(np.float32)
    f = af.window_features(emb)
    assert f.shape == (18,)
    np.testing.assert_allclose(f[:6], emb.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f[6:12], emb.std(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(f[12:], np.abs(np.diff(emb, axis=0)).mean(0), rtol=1e-5)


def test_a_still_window_has_no_spread_and_no_motion() -> None:
    f = af.window_features(np.tile(np.arange(4.0), (20, 1)))
    np.testing.assert_allclose(f[:4], np.arange(4.0))
    assert not f[4:].any()


def test_motion_follows_frame_order_while_mean_and_std_do_not() -> None:
    a, b = np.zeros(3), np.ones(3)
    flicker = np.stack([a, b] * 10)  # changes every frame
    once = np.stack([a] * 10 + [b] * 10)  # changes once
    f, g = af.window_features(flicker), af.window_features(once)
    np.testing.assert_allclose(f[:6], g[:6])
    assert (f[6:] > 5 * g[6:]).all()


def test_window_features_keep_leading_axes_and_need_two_frames() -> None:
    assert af.window_features(np.zeros((4, 3, 20, 5))).shape == (4, 3, 15)
    assert af.window_features(np.zeros((0, 20, 5))).shape == (0, 15)
    with pytest.raises(ValueError, match="2 frames"):
        af.window_features(np.zeros((1, 5)))


# -- folds -----------------------------------------------------------------------------------


def test_two_views_of_one_place_are_one_site_and_other_scenes_their_own() -> None:
    corridor = af.quiet_site("shopping-centre corridor (Lisbon)")
    front = af.quiet_site("shopping-centre shop front (Lisbon)")
    assert corridor == front
    office = af.quiet_site("indoor office/room")
    assert af.quiet_site("indoor room (same room as one_by_one)") == office
    others = {af.quiet_site(s) for s in ("warehouse floor", "shop/store aisle", "indoor corridor")}
    assert len(others | {corridor, office}) == 5


def test_quiet_sites_are_whole_in_one_fold_and_the_folds_balanced() -> None:
    load = {"a": 400, "b": 150, "c": 140, "d": 130, "e": 20, "f": 10, "g": 5}
    folds = af.quiet_folds(load, 3)
    assert set(folds) == set(load)
    assert set(folds.values()) == {0, 1, 2}
    per = np.bincount([folds[s] for s in load], weights=[load[s] for s in load], minlength=3)
    assert per.max() - per.min() <= max(load.values())
    assert per.max() == 400  # the largest site alone in its fold: nothing joins it


def test_with_more_folds_than_sites_every_site_has_its_own_fold() -> None:
    folds = af.quiet_folds({"a": 3, "b": 3, "c": 1}, 5)
    assert len(set(folds.values())) == 3


def test_fight_folds_never_split_a_source_and_hold_every_clip_once(tmp_path: Path) -> None:
    records = [
        ClipRecord(tmp_path / f"{label}{g}_{i}.mp4", label, f"src{g}")
        for g in range(9)
        for label in ("fight", "noFight")
        for i in range(1 + g % 3)
    ]
    folds = af.fight_folds(records, 4, seed=0)
    assert set(folds) == {r.path for r in records}
    for g in {r.group for r in records}:
        assert len({folds[r.path] for r in records if r.group == g}) == 1
    assert set(folds.values()) == set(range(4))


# -- out-of-fold scores ---------------------------------------------------------------------


def _units(k: int = 4, per_fold: int = 6, quiet_per_fold: int = 5):
    """k folds of fight-set units (alternating labels) then quiet units; one sample each,
    a second sample for every third fight-set unit, none for the last quiet unit of a fold."""
    y, fold, group, quiet = [], [], [], []
    for f in range(k):
        for i in range(per_fold):
            y.append(i % 2)
            fold.append(f)
            group.append(f"src{f}")
            quiet.append(False)
    for f in range(k):
        for _ in range(quiet_per_fold):
            y.append(0)
            fold.append(f)
            group.append(f"scene{f}")
            quiet.append(True)
    u = af.Units(np.array(y), np.array(fold), np.array(group), np.array(quiet))
    owner = [i for i in range(len(y)) if not (quiet[i] and (i + 1) % quiet_per_fold == 0)]
    owner += [i for i in range(len(y)) if not quiet[i] and i % 3 == 0]
    owner = np.array(sorted(owner))
    x = np.stack([[float(o), float(u.y[o])] for o in owner]) + RNG.normal(0, 0.01, (len(owner), 2))
    return u, af.Samples(x, owner, np.ones(len(owner), bool))


class Memorise:
    """A stand-in classifier: P(fight) 1 for a row it was trained on, else 0.25; it records
    which rows it saw."""

    seen: ClassVar[list[set[float]]] = []

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: np.ndarray) -> Memorise:
        assert len(sample_weight) == len(y)
        self.rows = {float(v) for v in x[:, 0]}
        Memorise.seen.append(self.rows)
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = np.array([1.0 if float(v) in self.rows else 0.25 for v in x[:, 0]])
        return np.stack([1 - p, p], axis=1)


def test_no_unit_is_scored_by_a_model_that_trained_on_it_nested_or_not() -> None:
    u, s = _units()
    scores = af.fold_scores(Memorise, s, u, 4)
    has = np.isin(np.arange(len(u.y)), s.owner)
    assert np.all(scores[:, has] == 0.25)
    assert np.isnan(scores[:, ~has]).all()
    np.testing.assert_array_equal(af.out_of_fold(scores, u)[has], 0.25)


def test_each_pair_of_folds_trains_once_on_the_other_folds() -> None:
    u, s = _units()
    Memorise.seen = []
    af.fold_scores(Memorise, s, u, 4)
    assert len(Memorise.seen) == 4 + 6
    for rows in Memorise.seen:
        held = {int(u.fold[round(r)]) for r in rows}
        assert 2 <= len(held) <= 3


def test_without_quiet_negatives_no_quiet_unit_trains() -> None:
    u, s = _units()
    Memorise.seen = []
    af.fold_scores(Memorise, s, u, 4, quiet_negatives=False)
    trained = {round(r) for rows in Memorise.seen for r in rows}
    assert trained and not u.quiet[list(trained)].any()
    Memorise.seen = []
    af.fold_scores(Memorise, s, u, 4, quiet_negatives=True)
    trained = {round(r) for rows in Memorise.seen for r in rows}
    assert u.quiet[list(trained)].any()


def test_only_teaching_samples_train() -> None:
    u, s = _units()
    teach = s.teach.copy()
    teach[::2] = False
    Memorise.seen = []
    af.fold_scores(Memorise, af.Samples(s.x, s.owner, teach), u, 4)
    trained = {round(r, 1) for rows in Memorise.seen for r in rows}
    assert trained <= {round(float(v), 1) for v in s.x[teach, 0]}


def test_a_unit_scores_as_its_most_alarming_sample() -> None:
    p = af.unit_max(np.array([0.2, 0.9, 0.4, 0.1]), np.array([0, 0, 2, 2]), 4)
    np.testing.assert_allclose(p[[0, 2]], [0.9, 0.4])
    assert np.isnan(p[[1, 3]]).all()


def test_the_real_classifiers_learn_a_separable_signal_out_of_fold() -> None:
    n, d = 240, 12
    y = np.arange(n) % 2
    x = RNG.normal(size=(n, d)) + 1.5 * y[:, None]
    fold = np.arange(n) % 4
    u = af.Units(y, fold, np.array(["g"] * n), np.zeros(n, bool))
    s = af.Samples(x, np.arange(n), np.ones(n, bool))
    for make in af.models(pca_dims=6).values():
        p = af.out_of_fold(af.fold_scores(make, s, u, 4), u)
        assert np.mean((p >= 0.5) == (y == 1)) > 0.9


# -- thresholds and figures -----------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 20, 101])
def test_the_fp_threshold_lets_at_most_the_budget_through_and_no_lower_one_would(n: int) -> None:
    p = RNG.uniform(size=n)
    t = af.fp_threshold(p, 0.1)
    assert t is not None
    assert np.mean(p >= t) <= 0.1
    lower = p[p < t].max()
    assert np.mean(p >= lower) > 0.1


def test_the_fp_threshold_with_ties_and_without_quiet_scores() -> None:
    t = af.fp_threshold(np.full(10, 0.7), 0.05)
    assert t is not None and t > 0.7
    assert af.fp_threshold(np.array([]), 0.05) is None


def test_a_folds_threshold_ignores_its_own_quiet_windows() -> None:
    u, _ = _units()
    scores = np.tile(RNG.uniform(0, 0.5, len(u.y)), (4, 1))
    before = af.fold_thresholds(scores, u, 4)
    scores[0, u.quiet & (u.fold == 0)] = 0.99
    after = af.fold_thresholds(scores, u, 4)
    assert after[0] == before[0]
    scores[0, u.quiet & (u.fold == 1)] = 0.99
    assert af.fold_thresholds(scores, u, 4)[0] > before[0]


def test_report_counts_every_unit_once_and_nobody_found_raises_nothing() -> None:
    u, _ = _units(k=2, per_fold=4, quiet_per_fold=3)
    p = np.where(u.y == 1, 0.8, 0.3)
    p[0] = 0.9  # a noFight clip called a fight
    p[np.flatnonzero(~u.quiet & (u.y == 1))[0]] = np.nan  # a fight nobody was found in
    p[np.flatnonzero(u.quiet)[0]] = 0.6  # one quiet false alert
    r = af.report(p, u, 2, 0.5)
    assert sum(c for _, c in r["per_source"].values()) == int((~u.quiet).sum())
    assert sum(right for right, _ in r["per_source"].values()) == 8 - 2
    assert r["pooled"]["fight_recall"] == 0.75 and r["pooled"]["nofight_recall"] == 0.75
    assert r["quiet_windows_alerted"] == [1, 6]
    assert sum(v[1] for v in r["quiet_per_scene"].values()) == 6
    assert [f["quiet_alerted"] for f in r["per_fold"]] == [[1, 3], [0, 3]]
    acc = [f["accuracy"] for f in r["per_fold"]]
    assert r["accuracy"] == [round(np.mean(acc), 3), round(np.std(acc), 3)]


def test_report_at_per_fold_thresholds_applies_each_to_its_own_fold() -> None:
    u, _ = _units(k=2, per_fold=4, quiet_per_fold=3)
    p = np.full(len(u.y), 0.6)
    r = af.report(p, u, 2, [0.5, 0.7])
    assert r["per_fold"][0]["quiet_alerted"] == [3, 3]
    assert r["per_fold"][1]["quiet_alerted"] == [0, 3]
    none = af.report(p, u, 2, [None, 0.5])  # a fold without a threshold raises nothing
    assert none["per_fold"][0]["quiet_alerted"] == [0, 3]


def test_fusion_lets_one_signal_speak_where_the_other_found_nobody() -> None:
    a = np.array([0.2, 0.8, np.nan, np.nan])
    b = np.array([0.6, np.nan, 0.4, np.nan])
    np.testing.assert_allclose(af.fuse(a, b, "max")[:3], [0.6, 0.8, 0.4])
    np.testing.assert_allclose(af.fuse(a, b, "mean")[:3], [0.4, 0.8, 0.4])
    assert np.isnan(af.fuse(a, b, "max")[3]) and np.isnan(af.fuse(a, b, "mean")[3])
    with pytest.raises(ValueError):
        af.fuse(a, b, "product")


def test_balanced_weights_give_each_class_the_same_total() -> None:
    y = np.array([1, 0, 0, 0, 0, 0])
    w = af.balanced_weights(y)
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())


def test_sources_holding_both_labels_are_reported_apart_from_one_label_sources() -> None:
    u = af.Units(
        np.array([1, 0, 0, 0, 1, 0]),
        np.zeros(6, int),
        np.array(["mixed", "mixed", "quiet_src", "quiet_src", "scene", "scene"]),
        np.array([False, False, False, False, True, True]),
    )
    assert af.mixed_sources(u).tolist() == [True, True, False, False, False, False]
    r = af.report(np.array([0.9, 0.8, 0.1, 0.2, 0.0, 0.0]), u, 1, 0.5)
    assert r["sources_with_both_labels"] == {
        "n": 2,
        "accuracy": 0.5,
        "fight_recall": 1.0,
        "nofight_recall": 0.0,
    }
    assert r["one_label_sources"] == {"n": 2, "accuracy": 1.0, "nofight_recall": 1.0}
