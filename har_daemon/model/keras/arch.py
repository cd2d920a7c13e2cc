"""The paper's ConvLSTM, the LRCN baseline, and what it takes to read Keras 2 models.

Importing this module registers the Keras 2 compatibility objects, so a `.keras` file written by
`import-model` loads in safe mode.
"""

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


# --- Keras 2 compatibility -------------------------------------------------------------------
# Keras 3 reuses Keras 2's names for things it computes differently. `hard_sigmoid` is the one
# that silently changes a model's outputs: Keras 2 computed clip(0.2x + 0.5, 0, 1), Keras 3
# computes relu6(x + 3) / 6. The tutorial's ConvLSTM2D gates all use it.


@keras.saving.register_keras_serializable(package="har_daemon")
def keras2_hard_sigmoid(x):  # type: ignore[no-untyped-def]
    """Keras 2's hard sigmoid, exactly: clip(0.2 * x + 0.5, 0, 1)."""
    return keras.ops.clip(0.2 * x + 0.5, 0.0, 1.0)


_KERAS2_ONLY_ARGS = ("time_major",)


def _drop_keras2_args(kwargs: dict) -> dict:
    for name in _KERAS2_ONLY_ARGS:
        kwargs.pop(name, None)
    return kwargs


@keras.saving.register_keras_serializable(package="har_daemon")
class Keras2ConvLSTM2D(layers.ConvLSTM2D):
    """ConvLSTM2D that accepts the Keras 2 config keys Keras 3 rejects."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **_drop_keras2_args(kwargs))


@keras.saving.register_keras_serializable(package="har_daemon")
class Keras2LSTM(layers.LSTM):
    """LSTM that accepts the Keras 2 config keys Keras 3 rejects."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **_drop_keras2_args(kwargs))


@keras.saving.register_keras_serializable(package="har_daemon")
class Keras2GRU(layers.GRU):
    """GRU that accepts the Keras 2 config keys Keras 3 rejects."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **_drop_keras2_args(kwargs))


@keras.saving.register_keras_serializable(package="har_daemon")
class Keras2SimpleRNN(layers.SimpleRNN):
    """SimpleRNN that accepts the Keras 2 config keys Keras 3 rejects."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **_drop_keras2_args(kwargs))


KERAS2_CUSTOM_OBJECTS: dict[str, object] = {
    "hard_sigmoid": keras2_hard_sigmoid,
    "ConvLSTM2D": Keras2ConvLSTM2D,
    "LSTM": Keras2LSTM,
    "GRU": Keras2GRU,
    "SimpleRNN": Keras2SimpleRNN,
}
"""Passed to Keras 3's legacy `.h5` loader so a Keras 2 file computes what Keras 2 computed."""
