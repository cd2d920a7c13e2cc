"""`har-daemon train`: the paper's training set-up, with a split that does not leak actors.

The paper splits UCF50 clips at random, so clips of one actor and scene (one `gNN` group) land
on both sides and the test score partly measures recognising the scene. Here the test set and
the validation set used for early stopping are whole groups.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from har_daemon.dataset import (
    ClipArrays,
    ClipRecord,
    build_arrays,
    group_split,
    median_spacing_s,
    random_split,
    scan_dataset,
)
from har_daemon.errors import DataError
from har_daemon.evaluation import predict_batches, relative_clip_path, write_evaluation
from har_daemon.logs import get_logger
from har_daemon.model_meta import ModelMeta, read_meta
from har_daemon.preprocess import to_model_input

PAPER_CLASSES: tuple[str, ...] = ("HorseRace", "Biking", "Swing", "PizzaTossing")

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


@dataclass
class TrainResult:
    model_dir: Path
    history: dict[str, list[float]]
    test_report: dict[str, Any] | None
    meta: ModelMeta


def _split(
    records: list[ClipRecord], fraction: float, how: str, seed: int
) -> tuple[list[ClipRecord], list[ClipRecord]]:
    if how == "group":
        return group_split(records, test_fraction=fraction, seed=seed)
    return random_split(records, test_fraction=fraction, seed=seed)


def _batches(
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    shuffle: bool,
    seed: int,
    color_order: str = "BGR",
):  # type: ignore[no-untyped-def]
    """A Keras data source that converts uint8 clips to float per batch.

    Holding the whole set as float32 would take 4x the memory (about 1 MB per clip).
    """
    import keras

    class ClipBatches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = np.arange(len(x))
            if shuffle:
                self.rng.shuffle(self.order)

        def __len__(self) -> int:
            return int(np.ceil(len(x) / batch_size))

        def __getitem__(self, i: int):  # type: ignore[no-untyped-def]
            idx = np.sort(self.order[i * batch_size : (i + 1) * batch_size])
            return to_model_input(x[idx], color_order), y[idx]  # type: ignore[arg-type]

        def on_epoch_end(self) -> None:
            if shuffle:
                self.rng.shuffle(self.order)

    return ClipBatches()


def _one_hot(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(labels), len(classes)), dtype=np.float32)
    y[np.arange(len(labels)), [index[label] for label in labels]] = 1.0
    return y


def _subset(arrays: ClipArrays, wanted: list[ClipRecord]) -> tuple[np.ndarray, list[str]]:
    keep = {r.path for r in wanted}
    idx = [i for i, r in enumerate(arrays.records) if r.path in keep]
    return arrays.x[idx], [arrays.labels[i] for i in idx]


def train(opts: TrainOptions) -> TrainResult:
    """Train, evaluate on the held-out groups, and write a complete model directory."""
    import keras
    import tensorflow as tf

    from har_daemon.model import build_model
    from har_daemon.model_store import save_model_dir
    from har_daemon.plots import plot_history

    started = time.monotonic()
    records = scan_dataset(opts.data_dir, opts.classes)
    classes = sorted({r.label for r in records}, key=_class_order(opts.classes))
    if len(classes) < 2:
        raise DataError(f"{opts.data_dir}: need at least two classes to train, found {classes}")

    pool, test = _split(records, opts.test_fraction, opts.split, opts.seed)
    train_recs, val_recs = _split(pool, opts.validation_fraction, opts.split, opts.seed + 1)
    if not val_recs or not train_recs:
        raise DataError(
            f"{opts.data_dir}: too few {'groups' if opts.split == 'group' else 'clips'} to hold "
            f"out validation data ({len(pool)} clips after the test split)"
        )
    log.info(
        "train.split",
        split=opts.split,
        train=len(train_recs),
        validation=len(val_recs),
        test=len(test),
        classes=classes,
    )

    size_hw = (opts.frame_size, opts.frame_size)
    arrays = build_arrays(
        records,
        seq_len=opts.sequence_length,
        size_hw=size_hw,
        interpolation=opts.interpolation,
        workers=opts.workers,
        cache_dir=opts.cache_dir,
    )
    for rec, reason in arrays.skipped:
        log.warning("train.clip_skipped", clip=str(rec.path), reason=reason)
    spacing = median_spacing_s(arrays)

    x_train, l_train = _subset(arrays, train_recs)
    x_val, l_val = _subset(arrays, val_recs)
    x_test, l_test = _subset(arrays, test)
    if len(x_train) == 0 or len(x_val) == 0:
        raise DataError(f"{opts.data_dir}: no readable clips left for training or validation")

    keras.utils.set_random_seed(opts.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(opts.architecture, len(classes), opts.sequence_length, size_hw)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=opts.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=opts.patience, restore_best_weights=True, mode="min"
    )
    verbose = opts.verbose if opts.verbose is not None else (1 if sys.stderr.isatty() else 2)
    fit = model.fit(
        _batches(x_train, _one_hot(l_train, classes), opts.batch_size, True, opts.seed),
        validation_data=_batches(x_val, _one_hot(l_val, classes), opts.batch_size, False, 0),
        epochs=opts.epochs,
        callbacks=[stopper],
        verbose=verbose,
    )
    history = {k: [float(v) for v in vs] for k, vs in fit.history.items()}
    epochs_run = len(history.get("loss", []))
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else epochs_run

    meta = ModelMeta(
        name=opts.name or f"{opts.architecture}-{len(classes)}class",
        classes=classes,
        sequence_length=opts.sequence_length,
        frame_height=opts.frame_size,
        frame_width=opts.frame_size,
        color_order="BGR",
        resize_interpolation=opts.interpolation,
        frame_spacing_s=round(spacing, 4),
        architecture=opts.architecture,
        training={
            "data_dir": str(opts.data_dir),
            "split": opts.split,
            "seed": opts.seed,
            "test_fraction": opts.test_fraction,
            "validation_fraction": opts.validation_fraction,
            "clips": {"train": len(x_train), "validation": len(x_val), "test": len(x_test)},
            "skipped_clips": len(arrays.skipped),
            "test_groups": sorted({r.group for r in test}),
            "test_clips": sorted(relative_clip_path(r.path, opts.data_dir) for r in test),
            "epochs_requested": opts.epochs,
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "batch_size": opts.batch_size,
            "optimizer": "adam",
            "learning_rate": opts.learning_rate,
            "loss": "categorical_crossentropy",
            "early_stopping": {"monitor": "val_loss", "patience": opts.patience},
            "final": {k: v[best_epoch - 1] for k, v in history.items() if len(v) >= best_epoch},
            "seconds": round(time.monotonic() - started, 1),
            "keras_version": keras.__version__,
            "tensorflow_version": tf.__version__,
        },
        provenance=dict(opts.provenance),
    )

    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.json").write_text(json.dumps(history, indent=2) + "\n")
    plot_history(history, out)

    report = None
    if len(x_test):
        probs = predict_batches(model, x_test, meta)
        report = write_evaluation(
            out, probs, l_test, classes, title=f"{meta.name}: held-out test set", prefix="test_"
        )
        meta = meta.model_copy(
            update={
                "evaluation": {
                    "set": f"held-out test {'groups' if opts.split == 'group' else 'clips'}",
                    "n_clips": report["n_samples"],
                    "accuracy": report["accuracy"],
                    "f1_micro": report["micro"]["f1"],
                    "f1_macro": report["macro"]["f1"],
                    "recall": {c: report["per_class"][c]["recall"] for c in classes},
                }
            }
        )
    save_model_dir(out, model, meta)
    if opts.export_tflite:
        from har_daemon.export import export_tflite

        export_tflite(out)
        meta = read_meta(out)
    log.info(
        "train.done",
        model_dir=str(out),
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        test_accuracy=report["accuracy"] if report else None,
        seconds=meta.training["seconds"],
    )
    return TrainResult(model_dir=out, history=history, test_report=report, meta=meta)


def _class_order(requested: Sequence[str] | None):  # type: ignore[no-untyped-def]
    """Keep the user's class order (it becomes the output order); otherwise alphabetical."""
    if requested is None:
        return lambda c: (0, c)
    order = {c: i for i, c in enumerate(requested)}
    return lambda c: (order.get(c, len(order)), c)
