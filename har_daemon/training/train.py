"""`har-daemon train`: the paper's training set-up, with a split that does not leak actors.

The paper splits UCF50 clips at random, so clips of one actor and scene (one `gNN` group) land
on both sides and the test score partly measures recognising the scene. Here the test set and
the validation set used for early stopping are whole groups.

Options beyond the paper (all off by default): `augment` (per-clip flips, crops, colour and
frame-timing changes on training batches, see `har_daemon.training.augment`),
`class_weight="balanced"` (each class weighs n / (k * count) in the training loss), and
`alert_class` for two-class alerting models (a probability threshold for that class chosen on
the validation set). `input_region="person"` trains on windows cropped around the people a
detector finds (`training.people` says which windows teach what); its crop rules go into
`model.json`, so serving cuts the same windows. Test figures are per clip for both kinds, on
the Keras model or on its LiteRT export (`eval_backend`), the file the daemon serves.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from har_daemon.core.errors import DataError
from har_daemon.core.logs import get_logger
from har_daemon.model.keras.export import export_tflite
from har_daemon.model.keras.fit import ClipBatches, FitSettings, Prepare, fit, versions
from har_daemon.model.keras.store import save_model_dir
from har_daemon.model.litert import LiteRTBackend
from har_daemon.model.meta import ModelMeta, PersonRegion, read_meta, write_meta
from har_daemon.model.preprocess import to_model_input
from har_daemon.reporting.plots import plot_history
from har_daemon.training.augment import AugmentConfig, augment_batch
from har_daemon.training.dataset import (
    PAPER_CLASSES,
    ClipRecord,
    group_split,
    random_split,
    scan_dataset,
)
from har_daemon.training.evaluate import predict_batches, relative_clip_path, write_evaluation
from har_daemon.training.samples import Predict, load_clip_data
from har_daemon.training.thresholds import _thresholded, choose_alert_threshold

log = get_logger(__name__)


@dataclass
class TrainOptions:
    data_dir: Path
    out_dir: Path
    classes: Sequence[str] | None = PAPER_CLASSES  # None: every class folder found
    architecture: str = "convlstm"
    epochs: int = 50
    batch_size: int = 4
    learning_rate: float = 1e-3
    seed: int = 0
    test_fraction: float = 0.2
    validation_fraction: float = 0.2
    patience: int = 10
    split: Literal["group", "random"] = "group"
    sequence_length: int = 20
    frame_size: int = 64
    interpolation: Literal["area", "linear"] = "area"
    workers: int = 2
    cache_dir: Path | None = None
    name: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    export_tflite: bool = True  # the light LiteRT path the daemon can serve without TensorFlow
    verbose: int | None = None  # Keras fit verbosity; None: bar on a terminal, a line per epoch
    #                             otherwise
    augment: bool = False  # augment training batches (har_daemon.training.augment defaults)
    augment_distant_p: float = 0.0  # with augment: probability of augment.distant_view per clip
    class_weight: Literal["none", "balanced"] = "none"  # balanced: n / (k * count) per class
    alert_class: str | None = None  # two classes only: choose this class's alert threshold
    input_transform: Literal["frames", "frame_diff"] = "frames"  # see preprocess.to_model_input
    input_region: Literal["frame", "person"] = "frame"  # person: crops around people
    person_region: PersonRegion | None = None  # the crop rules (None: the defaults)
    eval_backend: Literal["keras", "litert"] = "keras"  # what scores validation and test clips
    extra_train_dir: Path | None = None  # clips that only train: the split of data_dir unchanged


@dataclass
class TrainResult:
    model_dir: Path
    history: dict[str, list[float]]
    test_report: dict[str, Any] | None
    meta: ModelMeta
    threshold_report: dict[str, Any] | None = None  # test metrics at the alert threshold
    test_probabilities: np.ndarray | None = None  # (n_test, n_classes), rows in test_labels order
    test_labels: list[str] = field(default_factory=list)
    test_clips: list[str] = field(default_factory=list)  # relative to data_dir


def _split(
    records: list[ClipRecord], fraction: float, how: str, seed: int
) -> tuple[list[ClipRecord], list[ClipRecord]]:
    if how == "group":
        return group_split(records, test_fraction=fraction, seed=seed)
    return random_split(records, test_fraction=fraction, seed=seed)


def batch_preparer(
    seed: int,
    color_order: str = "BGR",
    augment: AugmentConfig | None = None,
    transform: str = "frames",
) -> Prepare:
    """uint8 clips -> model input; with `augment`, each batch is augmented with a generator
    seeded by (seed, epoch, batch), so a run is reproducible."""

    def prepare(clips: np.ndarray, epoch: int, batch: int) -> np.ndarray:
        if augment is not None:
            clips = augment_batch(clips, np.random.default_rng([seed, epoch, batch]), augment)
        return to_model_input(clips, color_order, transform=transform)  # type: ignore[arg-type]

    return prepare


def _one_hot(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=np.float32)
    y[np.arange(len(labels)), [index[label] for label in labels]] = 1.0
    return y


def train(
    opts: TrainOptions,
    *,
    train_records: Sequence[ClipRecord] | None = None,
    test_records: Sequence[ClipRecord] | None = None,
) -> TrainResult:
    """Train, evaluate on the held-out groups, and write a complete model directory.

    `train_records` and `test_records` (both or neither; cross-validation passes each fold's
    sides) replace the test split; validation is still held out of `train_records`.
    """
    started = time.monotonic()
    if (train_records is None) != (test_records is None):
        raise ValueError("give both train_records and test_records, or neither")
    if train_records is not None and test_records is not None:
        pool, test = list(train_records), list(test_records)
        shared = {r.path for r in pool} & {r.path for r in test}
        if shared:
            raise ValueError(f"{len(shared)} clip(s) on both sides, e.g. {min(shared)}")
        records = pool + test
    else:
        records = scan_dataset(opts.data_dir, opts.classes)
        pool, test = [], []
    classes = sorted({r.label for r in records}, key=_class_order(opts.classes))
    if len(classes) < 2:
        raise DataError(f"{opts.data_dir}: need at least two classes to train, found {classes}")
    if opts.alert_class is not None and (len(classes) != 2 or opts.alert_class not in classes):
        raise DataError(
            f"alert class {opts.alert_class!r} needs a two-class model with that class; "
            f"classes are {', '.join(classes)}"
        )

    if opts.input_region == "person" and opts.alert_class is None:
        raise DataError(
            "--input-region person needs --alert-class: a clip scores as its most alarming "
            "region, and a clip where nobody is found counts as the other class"
        )
    if train_records is None:
        pool, test = _split(records, opts.test_fraction, opts.split, opts.seed)
    train_recs, val_recs = _split(pool, opts.validation_fraction, opts.split, opts.seed + 1)
    if not val_recs or not train_recs:
        raise DataError(
            f"{opts.data_dir}: too few {'groups' if opts.split == 'group' else 'clips'} to hold "
            f"out validation data ({len(pool)} clips after the test split)"
        )
    extra = _extra_train(opts.extra_train_dir, classes, records)
    train_recs, records = train_recs + extra, records + extra
    log.info(
        "train.split",
        split=opts.split,
        train=len(train_recs),
        validation=len(val_recs),
        test=len(test),
        extra_train=len(extra),
        classes=classes,
    )

    size_hw = (opts.frame_size, opts.frame_size)
    rules = (opts.person_region or PersonRegion()) if opts.input_region == "person" else None
    cut = ModelMeta(
        name="cut",
        classes=classes,
        sequence_length=opts.sequence_length,
        frame_height=opts.frame_size,
        frame_width=opts.frame_size,
        resize_interpolation=opts.interpolation,
        input_region=opts.input_region,
        person_region=rules,
        frame_spacing_s=1.0,  # not known before the clips are read
        architecture=opts.architecture,
    )
    data = load_clip_data(
        records,
        cut,
        alert_class=opts.alert_class,
        workers=opts.workers,
        cache_dir=opts.cache_dir,
    )
    for rec, reason in data.skipped:
        log.warning("train.clip_skipped", clip=str(rec.path), reason=reason)

    x_train, l_train = data.samples(train_recs)
    x_val, l_val = data.samples(val_recs)
    test_clips = data.readable(test)
    val_clips = data.readable(val_recs)
    if len(x_train) == 0 or len(x_val) == 0:
        raise DataError(f"{opts.data_dir}: no readable clips left for training or validation")

    class_weight = _class_weights(l_train, classes) if opts.class_weight == "balanced" else None
    augment = AugmentConfig(distant_p=opts.augment_distant_p) if opts.augment else None

    verbose = opts.verbose if opts.verbose is not None else (1 if sys.stderr.isatty() else 2)
    settings = FitSettings(
        architecture=opts.architecture,
        num_classes=len(classes),
        sequence_length=opts.sequence_length,
        size_hw=size_hw,
        learning_rate=opts.learning_rate,
        epochs=opts.epochs,
        patience=opts.patience,
        seed=opts.seed,
        verbose=verbose,
    )
    model, history = fit(
        settings,
        ClipBatches(
            x_train,
            _one_hot(l_train, classes),
            opts.batch_size,
            batch_preparer(opts.seed, augment=augment, transform=opts.input_transform),
            shuffle=True,
            seed=opts.seed,
        ),
        ClipBatches(
            x_val,
            _one_hot(l_val, classes),
            opts.batch_size,
            batch_preparer(0, transform=opts.input_transform),
        ),
        {i: class_weight[c] for i, c in enumerate(classes)} if class_weight else None,
    )
    epochs_run = len(history.get("loss", []))
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else epochs_run

    samples: dict[str, Any] = {"train": len(x_train), "validation": len(x_val)}
    if rules is not None:
        samples["rule"] = "alert-class clips: the region with the most motion; others: every region"
        samples["per_split"] = {
            "train": data.summary(train_recs),
            "validation": data.summary(val_recs),
            "test": data.summary(test),
        }
    meta = ModelMeta(
        name=opts.name or f"{opts.architecture}-{len(classes)}class",
        classes=classes,
        # An alerting model's other class is its background: what every tool stays quiet on.
        background_classes=[c for c in classes if opts.alert_class not in (None, c)],
        sequence_length=opts.sequence_length,
        frame_height=opts.frame_size,
        frame_width=opts.frame_size,
        color_order="BGR",
        resize_interpolation=opts.interpolation,
        input_transform=opts.input_transform,
        input_region=opts.input_region,
        person_region=rules,
        frame_spacing_s=round(data.spacing_s, 4),
        architecture=opts.architecture,
        training={
            "data_dir": str(opts.data_dir),
            "split": opts.split if train_records is None else "given",
            "seed": opts.seed,
            "test_fraction": opts.test_fraction,
            "validation_fraction": opts.validation_fraction,
            "clips": {
                "train": len(data.readable(train_recs)),
                "validation": len(val_clips),
                "test": len(test_clips),
            },
            "samples": samples,
            "skipped_clips": len(data.skipped),
            "test_groups": sorted({r.group for r in test}),
            **_extra_meta(opts.extra_train_dir, extra),
            "test_clips": sorted(relative_clip_path(r.path, opts.data_dir) for r in test),
            "validation_clips": sorted(relative_clip_path(r.path, opts.data_dir) for r in val_recs),
            "epochs_requested": opts.epochs,
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "batch_size": opts.batch_size,
            "optimizer": "adam",
            "learning_rate": opts.learning_rate,
            "loss": "categorical_crossentropy",
            "early_stopping": {"monitor": "val_loss", "patience": opts.patience},
            "augment": augment.to_dict() if augment else False,
            "class_weight": {"mode": "balanced", "weights": class_weight}
            if class_weight
            else "none",
            "final": {k: v[best_epoch - 1] for k, v in history.items() if len(v) >= best_epoch},
            "seconds": round(time.monotonic() - started, 1),
            **versions(),
            "evaluated_on": opts.eval_backend,
        },
        provenance=dict(opts.provenance),
    )

    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    plot_history(history, out)
    save_model_dir(out, model, meta)
    if opts.export_tflite or opts.eval_backend == "litert":
        export_tflite(out)
        meta = read_meta(out)
    predict = _predictor(model, out, meta, opts.eval_backend)
    l_val_clips = [r.label for r in val_clips]
    l_test = [r.label for r in test_clips]

    alert = None
    if opts.alert_class is not None:
        a = classes.index(opts.alert_class)
        val_probs = data.clip_probs(predict, val_recs)
        alert = choose_alert_threshold(
            val_probs[:, a], np.array([label == opts.alert_class for label in l_val_clips])
        )
        alert = {"class": opts.alert_class, **alert}
        meta.training["alert_threshold"] = alert

    report = None
    thr_report = None
    probs = None
    if test_clips:
        probs = data.clip_probs(predict, test)
        report = write_evaluation(
            out, probs, l_test, classes, title=f"{meta.name}: held-out test set", prefix="test_"
        )
        evaluation: dict[str, Any] = {
            "set": f"held-out test {'groups' if opts.split == 'group' else 'clips'}",
            "n_clips": report["n_samples"],
            "backend": opts.eval_backend,
            "accuracy": report["accuracy"],
            "f1_micro": report["micro"]["f1"],
            "f1_macro": report["macro"]["f1"],
            "recall": {c: report["per_class"][c]["recall"] for c in classes},
        }
        if alert is not None:
            thr_report = write_evaluation(
                out,
                _thresholded(probs, classes.index(alert["class"]), alert["threshold"]),
                l_test,
                classes,
                title=f"{meta.name}: test, {alert['class']} if p >= {alert['threshold']:.3f}",
                prefix="test_threshold_",
            )
            c = alert["class"]
            evaluation["at_alert_threshold"] = {
                "class": c,
                "threshold": alert["threshold"],
                "accuracy": thr_report["accuracy"],
                "f1_macro": thr_report["macro"]["f1"],
                "recall": {k: thr_report["per_class"][k]["recall"] for k in classes},
                "alert_precision": thr_report["per_class"][c]["precision"],
                "alert_f1": thr_report["per_class"][c]["f1"],
            }
        meta = meta.model_copy(update={"evaluation": evaluation})
    meta.training["seconds"] = round(time.monotonic() - started, 1)
    write_meta(out, meta)
    log.info(
        "train.done",
        model_dir=str(out),
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        test_accuracy=report["accuracy"] if report else None,
        seconds=meta.training["seconds"],
    )
    return TrainResult(
        model_dir=out,
        history=history,
        test_report=report,
        meta=meta,
        threshold_report=thr_report,
        test_probabilities=probs,
        test_labels=l_test,
        test_clips=[relative_clip_path(r.path, opts.data_dir) for r in test_clips],
    )


def _extra_train(
    folder: Path | None, classes: Sequence[str], records: Sequence[ClipRecord]
) -> list[ClipRecord]:
    """The --extra-train clips: only the model's classes, no group shared with the split data
    (a group on both sides would leak into validation or test)."""
    if folder is None:
        return []
    extra = scan_dataset(folder, None)
    unknown = sorted({r.label for r in extra} - set(classes))
    if unknown:
        raise DataError(f"{folder}: class folder(s) {', '.join(unknown)} not in {list(classes)}")
    shared = sorted({r.group for r in extra} & {r.group for r in records})
    if shared:
        raise DataError(f"{folder}: group(s) {', '.join(shared)} are also in the split data")
    return extra


def _extra_meta(folder: Path | None, extra: Sequence[ClipRecord]) -> dict[str, Any]:
    if folder is None:
        return {}
    groups = Counter(r.group for r in extra)
    return {"extra_train": {"data_dir": str(folder), "clips": len(extra), "groups": dict(groups)}}


def _predictor(model: Any, out: Path, meta: ModelMeta, backend: str) -> Predict:
    """uint8 windows -> probabilities, on the trained Keras model or its LiteRT export."""
    if backend == "litert":
        served = LiteRTBackend(out)
        return lambda x: predict_batches(served, x, meta)
    return lambda x: predict_batches(model, x, meta)


def _class_weights(labels: Sequence[str], classes: Sequence[str]) -> dict[str, float]:
    """Balanced weights n / (k * count): every class contributes equally to the loss."""
    counts = {c: 0 for c in classes}
    for label in labels:
        counts[label] += 1
    missing = [c for c, n in counts.items() if n == 0]
    if missing:
        raise DataError(f"no training clips of class {', '.join(missing)}: cannot weight classes")
    n, k = len(labels), len(classes)
    return {c: n / (k * counts[c]) for c in classes}


def _class_order(requested: Sequence[str] | None):  # type: ignore[no-untyped-def]
    """Keep the user's class order (it becomes the output order); otherwise alphabetical."""
    if requested is None:
        return lambda c: (0, c)
    order = {c: i for i, c in enumerate(requested)}
    return lambda c: (order.get(c, len(order)), c)
