"""Grouped cross-validation, class weights, and the validation-chosen alert threshold."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from har_daemon.core.errors import DataError
from har_daemon.model.keras.fit import ClipBatches
from har_daemon.training.augment import AugmentConfig
from har_daemon.training.dataset import scan_dataset
from har_daemon.training.train import (
    TrainOptions,
    TrainResult,
    _class_weights,
    batch_preparer,
    choose_alert_threshold,
    train,
)

CLASSES = ("HorseRace", "Biking")
FOLDS = 3


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from har_daemon.training.synth import generate_dataset

    data = tmp_path_factory.mktemp("cv") / "data"
    generate_dataset(data, classes=CLASSES, groups=5, clips_per_group=2, seed=3, cue="color")
    return data


@pytest.fixture(scope="module")
def cv_run(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One `har-daemon cv` run with every option on: 3 folds x 1 epoch on 20 tiny clips."""
    report = tmp_path_factory.mktemp("cv") / "report"
    cache = report.parent / "cache"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HAR_LOG_LEVEL": "warning"}
    args = [
        "cv", "--data", str(synth), "--folds", str(FOLDS), "--classes", ",".join(CLASSES),
        "--arch", "convlstm", "--epochs", "1", "--augment", "--class-weight", "balanced",
        "--alert-class", "HorseRace", "--report", str(report), "--cache-dir", str(cache),
        "--workers", "1",
    ]  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-m", "har_daemon", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return report, result.stdout


def _group_of(clip: str) -> str:
    return Path(clip).stem.split("_")[2]  # v_<Class>_gNN_cNN


def test_every_clip_is_tested_exactly_once_and_groups_never_straddle(
    synth: Path, cv_run: tuple[Path, str]
) -> None:
    report, _ = cv_run
    cv = json.loads((report / "cv.json").read_text())
    all_clips = sorted(p.relative_to(synth).as_posix() for p in synth.rglob("*.avi"))
    tested = [c for fold in cv["folds"] for c in fold["test_clips"]]
    assert sorted(tested) == all_clips  # each exactly once
    all_groups = {_group_of(c) for c in all_clips}
    for fold in cv["folds"]:
        test_groups = {_group_of(c) for c in fold["test_clips"]}
        assert test_groups == set(fold["test_groups"])
        assert not test_groups & set(fold["train_groups"])
        assert test_groups | set(fold["train_groups"]) == all_groups
        assert fold["clips"]["test"] == len(fold["test_clips"])
        assert fold["clips"]["train"] + fold["clips"]["validation"] == 20 - len(fold["test_clips"])


def test_cv_json_holds_per_fold_reports_mean_std_and_pooled(cv_run: tuple[Path, str]) -> None:
    report, stdout = cv_run
    cv = json.loads((report / "cv.json").read_text())
    assert cv["k"] == FOLDS and cv["classes"] == list(CLASSES)
    assert cv["options"]["augment"] is True and cv["options"]["class_weight"] == "balanced"
    assert len(cv["folds"]) == FOLDS and cv["n_clips"] == 20
    s = cv["summary"]
    assert s["n_folds"] == FOLDS and s["class_names"] == list(CLASSES)
    accs = [f["report"]["accuracy"] for f in cv["folds"]]
    assert s["accuracy"]["per_fold"] == accs
    assert s["accuracy"]["mean"] == pytest.approx(np.mean(accs))
    assert s["accuracy"]["std"] == pytest.approx(np.std(accs, ddof=1))
    assert s["macro_f1"]["per_fold"] == [f["report"]["macro"]["f1"] for f in cv["folds"]]
    for c in CLASSES:
        per_fold = [f["report"]["per_class"][c]["recall"] for f in cv["folds"]]
        assert s["per_class_recall"][c]["per_fold"] == per_fold
    pooled = cv["pooled"]
    assert pooled["n_samples"] == 20
    assert np.sum(pooled["confusion_matrix"]) == 20
    assert np.array_equal(
        pooled["confusion_matrix"],
        np.sum([f["report"]["confusion_matrix"] for f in cv["folds"]], 0),
    )
    alert = cv["at_alert_threshold"]
    assert alert["class"] == "HorseRace" and len(alert["threshold"]["per_fold"]) == FOLDS
    assert alert["summary"]["n_folds"] == FOLDS and alert["pooled"]["n_samples"] == 20

    with (report / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and {r["fold"] for r in rows} == {"1", "2", "3"}

    lines = stdout.splitlines()  # Keras's per-epoch lines come first
    head = next(i for i, line in enumerate(lines) if line.startswith("fold "))
    assert lines[head].split()[:4] == ["fold", "clips", "accuracy", "F1"]
    assert [line.split()[0] for line in lines[head + 1 : head + 1 + FOLDS]] == ["1", "2", "3"]
    assert any(line.startswith("mean+-sd") for line in lines)
    assert any(line.startswith("pooled") for line in lines)
    assert "cv.json" in lines[-1]


def test_fold_models_record_augmentation_class_weights_and_threshold(
    cv_run: tuple[Path, str],
) -> None:
    report, _ = cv_run
    for i in range(1, FOLDS + 1):
        fold = report / f"fold_{i}"
        assert (fold / "model.keras").is_file() and not (fold / "model.tflite").exists()
        meta = json.loads((fold / "model.json").read_text())
        t = meta["training"]
        assert t["split"] == "given"
        assert t["augment"]["crop_scale"] == [0.8, 1.0]
        weights = t["class_weight"]["weights"]
        # balanced: w_c = n / (k * count_c), so the implied counts are whole and sum to n.
        counts = [t["clips"]["train"] / (2 * weights[c]) for c in CLASSES]
        assert counts == pytest.approx(np.round(counts)) and sum(counts) == pytest.approx(
            t["clips"]["train"]
        )
        thr = t["alert_threshold"]
        assert thr["class"] == "HorseRace" and 0.0 < thr["threshold"] <= 1.0
        # An alerting model's other class is its background: no tool alerts on it by default.
        assert meta["background_classes"] == [c for c in CLASSES if c != "HorseRace"]
        assert thr["validation"]["n_clips"] == t["clips"]["validation"]
        at = meta["evaluation"]["at_alert_threshold"]
        assert at["threshold"] == thr["threshold"]
        assert (fold / "test_metrics.json").is_file()
        assert (fold / "test_threshold_metrics.json").is_file()
        assert (fold / "test_threshold_confusion_matrix.png").is_file()


# --- threshold choice, class weights, argument checks (no training) ---------------------------


def test_threshold_maximises_f1_on_the_given_scores() -> None:
    scores = np.array([0.9, 0.8, 0.45, 0.3, 0.2, 0.1])
    positive = np.array([True, True, True, False, False, False])
    got = choose_alert_threshold(scores, positive)
    # Alerting from 0.45 up catches all three positives with no false alarm; argmax misses one.
    assert 0.3 < got["threshold"] <= 0.45
    assert got["threshold"] == pytest.approx((0.45 + 0.3) / 2)
    assert got["validation"]["f1"] == 1.0 and got["validation"]["fp"] == 0
    assert got["validation_at_argmax"]["recall"] == pytest.approx(2 / 3)


def test_threshold_ties_in_f1_go_to_higher_recall() -> None:
    # Cut at 0.7: tp 1, fp 0, fn 1 -> F1 2/3, recall 0.5.
    # Cut at 0.4: tp 2, fp 2, fn 0 -> F1 2/3, recall 1.0. Same F1: take the higher recall.
    scores = np.array([0.7, 0.6, 0.5, 0.4])
    positive = np.array([True, False, False, True])
    got = choose_alert_threshold(scores, positive)
    assert got["validation"]["recall"] == 1.0
    assert got["validation"]["f1"] == pytest.approx(2 / 3)
    assert got["threshold"] <= 0.4


def test_threshold_falls_back_to_argmax_without_both_kinds_of_clip() -> None:
    got = choose_alert_threshold(np.array([0.2, 0.7]), np.array([False, False]))
    assert got["threshold"] == 0.5 and "alert-class" in got["fallback"]
    got = choose_alert_threshold(np.array([0.2, 0.7]), np.array([True, True]))
    assert got["threshold"] == 0.5 and "other-class" in got["fallback"]
    with pytest.raises(ValueError):
        choose_alert_threshold(np.array([0.1]), np.array([True, False]))


def test_balanced_class_weights() -> None:
    w = _class_weights(["a"] * 6 + ["b"] * 2, ["a", "b"])
    assert w == {"a": 8 / (2 * 6), "b": 8 / (2 * 2)}
    with pytest.raises(DataError, match="no training clips of class c"):
        _class_weights(["a", "b"], ["a", "b", "c"])


def test_train_checks_explicit_records_and_alert_class(synth: Path, tmp_path: Path) -> None:
    records = scan_dataset(synth, CLASSES)
    opts = TrainOptions(data_dir=synth, out_dir=tmp_path / "m", classes=CLASSES, epochs=1)
    with pytest.raises(ValueError, match="both"):
        train(opts, train_records=records)
    with pytest.raises(ValueError, match="both sides"):
        train(opts, train_records=records, test_records=records[:1])
    bad = TrainOptions(data_dir=synth, out_dir=tmp_path / "m", classes=CLASSES, alert_class="x")
    with pytest.raises(DataError, match="two-class model with that class"):
        train(bad)
    people = TrainOptions(
        data_dir=synth, out_dir=tmp_path / "m", classes=CLASSES, input_region="person"
    )
    with pytest.raises(DataError, match="needs --alert-class"):
        train(people)
    assert not (tmp_path / "m").exists()


def _seeded_options(data: Path, out: Path, seed: int, backend: str = "keras") -> TrainOptions:
    return TrainOptions(
        data_dir=data,
        out_dir=out,
        classes=CLASSES,
        architecture="lrcn",
        epochs=1,
        seed=seed,
        alert_class="HorseRace",
        export_tflite=False,
        eval_backend=backend,  # type: ignore[arg-type]
        verbose=0,
        workers=0,
        sequence_length=6,  # small windows: neither the seeding nor the export's fidelity
        frame_size=32,  # depends on their size
    )


@pytest.fixture(scope="module")
def seeded_pair(synth: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, TrainResult]:
    """Two trainings from one seed on the same clips and group split, one scored by Keras and
    one by its LiteRT export (the backend only scores after training): the LiteRT test compares
    their figures, the seed test their weights. Trained once for both: each training is mostly
    TensorFlow tracing its graphs, whatever the size of the data. LRCN: its export's figures
    stay further from the Keras ones when the LiteRT path is wrong than ConvLSTM's after one
    epoch; the seeding does not depend on the architecture."""
    root = tmp_path_factory.mktemp("seeded")
    return {b: train(_seeded_options(synth, root / b, 7, b)) for b in ("keras", "litert")}


def test_folds_scored_on_the_litert_export_get_the_keras_figures(
    seeded_pair: dict[str, TrainResult],
) -> None:
    """`cv --backend litert` scores each fold on the file the daemon serves: same weights
    (same seed, deterministic ops), the same per-clip verdicts and figures as Keras."""
    keras_run, litert_run = seeded_pair["keras"], seeded_pair["litert"]
    assert (litert_run.model_dir / "model.tflite").is_file()
    assert not (keras_run.model_dir / "model.tflite").exists()
    assert litert_run.meta.evaluation["backend"] == "litert"
    assert keras_run.test_probabilities is not None and litert_run.test_probabilities is not None
    assert np.allclose(keras_run.test_probabilities, litert_run.test_probabilities, atol=1e-4)
    assert litert_run.test_report == keras_run.test_report
    assert litert_run.threshold_report == keras_run.threshold_report


def test_training_is_reproducible_with_a_seed(
    seeded_pair: dict[str, TrainResult], synth: Path, tmp_path: Path
) -> None:
    import keras

    def weights(model_dir: Path) -> list[np.ndarray]:
        return keras.models.load_model(model_dir / "model.keras").get_weights()

    first, again = (weights(seeded_pair[b].model_dir) for b in ("keras", "litert"))
    other = weights(train(_seeded_options(synth, tmp_path / "other", 8)).model_dir)
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(first, other, strict=True))


def test_augmented_batches_are_seeded_by_epoch_and_batch() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(6, 20, 16, 16, 3), dtype=np.uint8)
    y = np.eye(2, dtype=np.float32)[[0, 1, 0, 1, 0, 1]]
    cfg = AugmentConfig(flip_p=1.0, crop_p=1.0, color_p=1.0, temporal_p=1.0)
    a, b = (ClipBatches(x, y, 3, batch_preparer(7, augment=cfg), shuffle=True, seed=7)
            for _ in range(2))  # fmt: skip
    plain = ClipBatches(x, y, 3, batch_preparer(7), shuffle=True, seed=7)
    assert np.array_equal(a[1][0], b[1][0])  # same seed, epoch, batch: same clips
    assert np.array_equal(a[1][1], plain[1][1])  # labels untouched
    assert not np.array_equal(a[1][0], plain[1][0])
    assert a[1][0].shape == plain[1][0].shape and a[1][0].dtype == np.float32
    first = a[0][0]
    a.on_epoch_end()
    b.on_epoch_end()
    assert np.array_equal(a[0][0], b[0][0])
    assert not np.array_equal(a[0][0], first)  # a new epoch draws new augmentations
