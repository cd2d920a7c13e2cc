"""The paper's ConvLSTM and the LRCN baseline."""

from __future__ import annotations

from typing import Literal

import keras
from keras import layers

Architecture = Literal["convlstm", "lrcn"]
ARCHITECTURES: tuple[str, ...] = ("convlstm", "lrcn")


def build_convlstm(
    num_classes: int, sequence_length: int = 20, size_hw: tuple[int, int] = (64, 64)
) -> keras.Model:
    """The founding paper's ConvLSTM (44,524 parameters for 4 classes at 20x64x64x3).

    The paper writes "tanh" for the output layer but reports class probabilities: softmax.
    """
    h, w = size_hw
    inputs = keras.Input(shape=(sequence_length, h, w, 3), name="frames")
    x = inputs
    for i, filters in enumerate((4, 8, 14, 16)):
        x = layers.ConvLSTM2D(
            filters,
            kernel_size=(3, 3),
            activation="tanh",
            data_format="channels_last",
            recurrent_dropout=0.2,
            return_sequences=True,
            name=f"conv_lstm2d_{i}",
        )(x)
        x = layers.MaxPooling3D(pool_size=(1, 2, 2), padding="same", name=f"pool_{i}")(x)
        if i < 3:
            x = layers.TimeDistributed(layers.Dropout(0.2), name=f"dropout_{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="convlstm")


def build_lrcn(
    num_classes: int, sequence_length: int = 20, size_hw: tuple[int, int] = (64, 64)
) -> keras.Model:
    """The usual stronger baseline: per-frame CNN features fed to an LSTM."""
    h, w = size_hw
    inputs = keras.Input(shape=(sequence_length, h, w, 3), name="frames")
    x = inputs
    for i, (filters, pool) in enumerate(((16, 4), (32, 4), (64, 2), (64, 2))):
        x = layers.TimeDistributed(
            layers.Conv2D(filters, (3, 3), padding="same", activation="relu"), name=f"conv_{i}"
        )(x)
        x = layers.TimeDistributed(
            layers.MaxPooling2D((pool, pool), padding="same"), name=f"pool_{i}"
        )(x)
        if i < 3:
            x = layers.TimeDistributed(layers.Dropout(0.25), name=f"dropout_{i}")(x)
    x = layers.TimeDistributed(layers.Flatten(), name="flatten")(x)
    x = layers.LSTM(32, name="lstm")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="lrcn")


def build_model(
    architecture: str,
    num_classes: int,
    sequence_length: int = 20,
    size_hw: tuple[int, int] = (64, 64),
) -> keras.Model:
    if architecture == "convlstm":
        return build_convlstm(num_classes, sequence_length, size_hw)
    if architecture == "lrcn":
        return build_lrcn(num_classes, sequence_length, size_hw)
    raise ValueError(f"unknown architecture {architecture!r}; choose from {ARCHITECTURES}")
