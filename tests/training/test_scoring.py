"""training.scoring against hand-computed values and against scikit-learn as an oracle."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from har_daemon.training.scoring import classification_report, confusion_matrix, summarize_folds

# ---------------------------------------------------------------------------- worked example
#
# Classes A=0, B=1, C=2; ten samples.
#   y_true = A A A A B B B C C C
#   y_pred = A A B C B B A C C B
#
# Confusion matrix (rows true, cols predicted):
#          A  B  C   | support
#     A  [ 2, 1, 1 ] | 4
#     B  [ 1, 2, 0 ] | 3
#     C  [ 0, 1, 2 ] | 3
#   col:   3  4  3
#
# Correct = 2 + 2 + 2 = 6  ->  accuracy = 6/10 = 0.6
#
#   A: TP=2  FP=3-2=1  FN=4-2=2  TN=10-2-1-2=5   P=2/3  R=2/4=1/2  F1=2·(1/3)/(7/6)=4/7
#   B: TP=2  FP=4-2=2  FN=3-2=1  TN=10-2-2-1=5   P=2/4  R=2/3      F1=4/7
#   C: TP=2  FP=3-2=1  FN=3-2=1  TN=10-2-1-1=6   P=2/3  R=2/3      F1=2/3
#
#   micro: TP=6, FP=4, FN=4 -> P = R = F1 = 6/10 = 0.6 (= accuracy)
#   macro P  = (2/3 + 1/2 + 2/3)/3 = 11/18 ≈ 0.6111
#   macro R  = (1/2 + 2/3 + 2/3)/3 = 11/18
#   macro F1 = (4/7 + 4/7 + 2/3)/3 = 38/63 ≈ 0.6032
#   weighted P  = (4·2/3 + 3·1/2 + 3·2/3)/10 = (37/6)/10 = 37/60 ≈ 0.6167
#   weighted R  = (4·1/2 + 3·2/3 + 3·2/3)/10 = 6/10 = 0.6
#   weighted F1 = (4·4/7 + 3·4/7 + 3·2/3)/10 = (4 + 2)/10 = 0.6

NAMES = ["A", "B", "C"]
Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
Y_PRED = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1]


def test_confusion_matrix_worked_example() -> None:
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    assert cm.tolist() == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]
    assert cm.dtype == np.int64


def test_report_worked_example() -> None:
    r = classification_report(Y_TRUE, Y_PRED, NAMES)
    assert r["n_samples"] == 10
    assert r["accuracy"] == pytest.approx(0.6)
    assert r["class_names"] == NAMES
    assert r["confusion_matrix"] == [[2, 1, 1], [1, 2, 0], [0, 1, 2]]

    expected = {
        "A": dict(tp=2, fp=1, fn=2, tn=5, support=4, precision=2 / 3, recall=1 / 2, f1=4 / 7),
        "B": dict(tp=2, fp=2, fn=1, tn=5, support=3, precision=1 / 2, recall=2 / 3, f1=4 / 7),
        "C": dict(tp=2, fp=1, fn=1, tn=6, support=3, precision=2 / 3, recall=2 / 3, f1=2 / 3),
    }
    for name, exp in expected.items():
        got = r["per_class"][name]
        for key in ("tp", "fp", "fn", "tn", "support"):
            assert got[key] == exp[key], (name, key)
            assert type(got[key]) is int
        for key in ("precision", "recall", "f1"):
            assert got[key] == pytest.approx(exp[key]), (name, key)

    for key in ("precision", "recall", "f1"):
        assert r["micro"][key] == pytest.approx(0.6)
    assert r["macro"]["precision"] == pytest.approx(11 / 18)
    assert r["macro"]["recall"] == pytest.approx(11 / 18)
    assert r["macro"]["f1"] == pytest.approx(38 / 63)
    assert r["weighted"]["precision"] == pytest.approx(37 / 60)
    assert r["weighted"]["recall"] == pytest.approx(0.6)
    assert r["weighted"]["f1"] == pytest.approx(0.6)


def test_report_is_json_serialisable_plain_types() -> None:
    r = classification_report(np.array(Y_TRUE), np.array(Y_PRED), NAMES)
    assert json.loads(json.dumps(r)) == r

    def walk(x: object) -> None:
        if isinstance(x, dict):
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
        else:
            assert type(x) in (int, float, str), type(x)

    walk(r)


def test_zero_division_gives_zero() -> None:
    # D (index 3) is neither in y_true nor predicted; C is never predicted; B never true.
    #   y_true = A A C C ; y_pred = A B A A
    #   A: TP=1 FP=2 FN=1 -> P=1/3 R=1/2 F1=2·(1/6)/(5/6)=2/5
    #   B: TP=0 FP=1 FN=0 -> P=0 R=0/0->0 F1=0
    #   C: TP=0 FP=0 FN=2 -> P=0/0->0 R=0 F1=0
    #   D: all zero -> 0, 0, 0, TN=4
    r = classification_report([0, 0, 2, 2], [0, 1, 0, 0], ["A", "B", "C", "D"])
    pc = r["per_class"]
    assert pc["A"]["precision"] == pytest.approx(1 / 3)
    assert pc["A"]["recall"] == pytest.approx(1 / 2)
    assert pc["A"]["f1"] == pytest.approx(2 / 5)
    for name in ("B", "C", "D"):
        assert (pc[name]["precision"], pc[name]["recall"], pc[name]["f1"]) == (0.0, 0.0, 0.0)
    assert pc["D"] == dict(precision=0.0, recall=0.0, f1=0.0, support=0, tp=0, fp=0, fn=0, tn=4)
    assert r["macro"]["f1"] == pytest.approx((2 / 5) / 4)
    assert r["accuracy"] == pytest.approx(0.25)


def test_empty_input_is_all_zero() -> None:
    r = classification_report([], [], ["A", "B"])
    assert r["n_samples"] == 0
    assert r["accuracy"] == 0.0
    assert r["micro"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert r["confusion_matrix"] == [[0, 0], [0, 0]]


def test_perfect_predictions() -> None:
    y = [0, 1, 2, 1, 0]
    r = classification_report(y, y, NAMES)
    assert r["accuracy"] == 1.0
    assert r["macro"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("y_true", "y_pred", "message"),
    [
        ([0, 1], [0], "length"),
        ([0, 3], [0, 1], "outside"),
        ([0, 1], [0, -1], "outside"),
        ([0.5, 1], [0, 1], "integer"),
        ([[0, 1]], [[0, 1]], "one-dimensional"),
        (["a", "b"], [0, 1], "integer"),
    ],
)
def test_invalid_labels_raise(y_true: object, y_pred: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_report(y_true, y_pred, NAMES)
    with pytest.raises(ValueError, match=message):
        confusion_matrix(y_true, y_pred, 3)


def test_float_labels_that_are_integers_are_accepted() -> None:
    assert confusion_matrix([0.0, 1.0], [1.0, 1.0], 2).tolist() == [[0, 1], [0, 1]]


def test_invalid_class_names_raise() -> None:
    with pytest.raises(ValueError, match="duplicates"):
        classification_report([0], [0], ["A", "A"])
    with pytest.raises(ValueError, match="empty"):
        classification_report([], [], [])
    with pytest.raises(ValueError):
        confusion_matrix([0], [0], 0)


# ---------------------------------------------------------------------------- sklearn oracle


def _random_case(seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 8))
    n = int(rng.integers(1, 80))
    # Restrict each side to a random subset of classes so that some classes are never
    # predicted and some never occur in y_true.
    true_classes = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)
    pred_classes = rng.choice(k, size=int(rng.integers(1, k + 1)), replace=False)
    y_true = rng.choice(true_classes, size=n)
    y_pred = rng.choice(pred_classes, size=n)
    # Make predictions partly right so the numbers are not all near zero.
    keep = rng.random(n) < rng.random()
    y_pred = np.where(keep, y_true, y_pred)
    return y_true, y_pred, k


@pytest.mark.parametrize("seed", range(300))
def test_against_sklearn(seed: int) -> None:
    skm = pytest.importorskip("sklearn.metrics")
    y_true, y_pred, k = _random_case(seed)
    labels = list(range(k))
    names = [f"c{i}" for i in labels]
    r = classification_report(y_true, y_pred, names)

    np.testing.assert_array_equal(
        r["confusion_matrix"], skm.confusion_matrix(y_true, y_pred, labels=labels)
    )
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))

    for avg in ("micro", "macro", "weighted"):
        p, rec, f, _ = skm.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0
        )
        assert r[avg]["precision"] == pytest.approx(p, abs=1e-12), avg
        assert r[avg]["recall"] == pytest.approx(rec, abs=1e-12), avg
        assert r[avg]["f1"] == pytest.approx(f, abs=1e-12), avg

    p, rec, f, s = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=0
    )
    mcm = skm.multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    n = len(y_true)
    for i, name in enumerate(names):
        pc = r["per_class"][name]
        assert pc["precision"] == pytest.approx(p[i], abs=1e-12)
        assert pc["recall"] == pytest.approx(rec[i], abs=1e-12)
        assert pc["f1"] == pytest.approx(f[i], abs=1e-12)
        assert pc["support"] == s[i]
        (tn, fp), (fn, tp) = mcm[i]
        assert (pc["tn"], pc["fp"], pc["fn"], pc["tp"]) == (tn, fp, fn, tp)
        # The four cells partition the samples for every class.
        assert pc["tp"] + pc["fp"] + pc["fn"] + pc["tn"] == n

    # Single-label multiclass: micro P = micro R = micro F1 = accuracy.
    assert r["micro"]["f1"] == pytest.approx(r["accuracy"], abs=1e-12)
    assert r["micro"]["precision"] == pytest.approx(r["accuracy"], abs=1e-12)
    assert r["micro"]["recall"] == pytest.approx(r["accuracy"], abs=1e-12)
    # Weighted recall is also accuracy (a consistency check the founding paper fails).
    assert r["weighted"]["recall"] == pytest.approx(r["accuracy"], abs=1e-12)


def test_oracle_cases_include_absent_and_never_predicted_classes() -> None:
    """Guard that the random cases above really exercise both zero-division paths."""
    absent_true = never_pred = 0
    for seed in range(300):
        y_true, y_pred, k = _random_case(seed)
        absent_true += len(set(range(k)) - set(y_true.tolist())) > 0
        never_pred += len(set(range(k)) - set(y_pred.tolist())) > 0
    assert absent_true > 50
    assert never_pred > 50


# ---------------------------------------------------------------------------- folds


def test_summarize_folds() -> None:
    folds = [
        classification_report(Y_TRUE, Y_PRED, NAMES),  # acc 0.6, recall A=1/2 B=2/3 C=2/3
        classification_report([0, 1, 2], [0, 1, 2], NAMES),  # acc 1.0, recalls 1
        classification_report([0, 1, 2, 2], [0, 0, 2, 1], NAMES),  # acc 0.5, recalls 1, 0, 1/2
    ]
    s = summarize_folds(folds)
    assert s["n_folds"] == 3
    assert s["class_names"] == NAMES
    assert s["std_ddof"] == 1
    accs = [0.6, 1.0, 0.5]
    assert s["accuracy"]["per_fold"] == pytest.approx(accs)
    assert s["accuracy"]["mean"] == pytest.approx(0.7)
    # sample std: deviations -0.1, 0.3, -0.2 -> squares .01 + .09 + .04 = .14; /2 -> .07
    assert s["accuracy"]["std"] == pytest.approx(math.sqrt(0.07))
    assert s["macro_f1"]["per_fold"] == pytest.approx([f["macro"]["f1"] for f in folds])
    assert s["macro_f1"]["std"] == pytest.approx(np.std([f["macro"]["f1"] for f in folds], ddof=1))
    assert s["per_class_recall"]["A"]["per_fold"] == pytest.approx([0.5, 1.0, 1.0])
    assert s["per_class_recall"]["B"]["per_fold"] == pytest.approx([2 / 3, 1.0, 0.0])
    assert s["per_class_recall"]["C"]["mean"] == pytest.approx((2 / 3 + 1.0 + 0.5) / 3)
    assert json.loads(json.dumps(s)) == s


def test_summarize_single_fold_std_is_zero() -> None:
    s = summarize_folds([classification_report(Y_TRUE, Y_PRED, NAMES)])
    assert s["accuracy"] == {"mean": pytest.approx(0.6), "std": 0.0, "per_fold": [0.6]}


def test_summarize_folds_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        summarize_folds([])
    a = classification_report([0, 1], [0, 1], ["A", "B"])
    b = classification_report([0, 1], [0, 1], ["B", "A"])
    with pytest.raises(ValueError, match="class_names"):
        summarize_folds([a, b])
