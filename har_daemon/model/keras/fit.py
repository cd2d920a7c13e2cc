"""Fitting a Keras model: the one place training touches Keras and TensorFlow directly.

`training.train` decides what to learn from (splits, crops, augmentation, class weights); this
module turns that into a seeded, deterministic `model.fit` with Adam and early stopping on the
validation loss, reading uint8 clips batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from har_daemon.model.keras.arch import build_model

# clips (uint8), epoch, batch index -> the model's float input for that batch
Prepare = Callable[[np.ndarray, int, int], np.ndarray]


class ClipBatches(keras.utils.PyDataset):
    """uint8 clips converted to float per batch.

    Holding the whole set as float32 would take 4x the memory (about 1 MB per clip). `prepare`
    gets the epoch and batch index, so a seeded augmentation is reproducible whatever order
    batches are asked for in.
    """

    def __init__(
        self,
        x: np.ndarray,
        y: np.ndarray,
        batch_size: int,
        prepare: Prepare,
        *,
        shuffle: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.x, self.y, self.batch_size = x, y, batch_size
        self.prepare, self.shuffle = prepare, shuffle
        self.rng = np.random.default_rng(seed)
        self.epoch = 0
        self.order = np.arange(len(x))
        if shuffle:
            self.rng.shuffle(self.order)

    def __len__(self) -> int:
        return int(np.ceil(len(self.x) / self.batch_size))

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(self.order[i * self.batch_size : (i + 1) * self.batch_size])
        return self.prepare(self.x[idx], self.epoch, i), self.y[idx]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.shuffle:
            self.rng.shuffle(self.order)


@dataclass(frozen=True)
class FitSettings:
    architecture: str
    num_classes: int
    sequence_length: int
    size_hw: tuple[int, int]
    learning_rate: float
    epochs: int
    patience: int
    seed: int
    verbose: int


def fit(
    settings: FitSettings,
    train: ClipBatches,
    validation: ClipBatches,
    class_weight: Mapping[int, float] | None = None,
) -> tuple[keras.Model, dict[str, list[float]]]:
    """A model trained from a fixed seed with deterministic ops; the best epoch's weights by
    validation loss, and the per-epoch history."""
    keras.utils.set_random_seed(settings.seed)
    tf.config.experimental.enable_op_determinism()
    model = build_model(
        settings.architecture, settings.num_classes, settings.sequence_length, settings.size_hw
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=settings.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    stopper = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=settings.patience, restore_best_weights=True, mode="min"
    )
    run = model.fit(
        train,
        validation_data=validation,
        epochs=settings.epochs,
        callbacks=[stopper],
        verbose=settings.verbose,
        class_weight=dict(class_weight) if class_weight else None,
    )
    return model, {k: [float(v) for v in vs] for k, vs in run.history.items()}


def versions() -> dict[str, Any]:
    """The library versions a model was trained with, for its model.json."""
    return {"keras_version": keras.__version__, "tensorflow_version": tf.__version__}
