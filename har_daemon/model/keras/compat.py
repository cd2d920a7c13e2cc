"""What it takes to read Keras 2 models (the widely copied tutorial's `.h5` files).

Importing this module registers the compatibility objects, so a `.keras` file written by
`import-model` loads in safe mode.
"""

from __future__ import annotations

import keras
from keras import layers

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
