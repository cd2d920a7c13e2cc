"""LiteRT export: a fused, unrolled inference twin of a Keras video model, converted to builtins.

Keras's ConvLSTM2D runs a symbolic while-loop whose cell issues eight small convolutions per
step; TFLite has no builtin for that loop nor for MaxPooling3D. The twin computes the same
function with what LiteRT's XNNPACK delegate runs fast:

* the input convolution of every frame at once (it does not depend on the recurrence), all
  four gates in one convolution;
* one recurrent convolution per step for all four gates ('same' padding, as in Keras), none at
  the first step (the state is zero there);
* the time loop unrolled in Python for the model's fixed sequence length;
* MaxPooling3D with a pool of one frame as per-frame 2-D pooling; dropout removed.

Every shape in the graph is static except the batch axis, so one exported file serves batches
of any size (the interpreter's input is resized at run time).
"""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from har_daemon.core.errors import ModelError
from har_daemon.core.logs import get_logger
from har_daemon.model.keras.compat import keras2_hard_sigmoid
from har_daemon.model.keras.store import load_model_dir
from har_daemon.model.meta import read_meta, write_meta

log = get_logger(__name__)

TFLITE_FILE = "model.tflite"
EXPORT_ATOL = 1e-4
"""Largest difference in probability between the export and the Keras model we accept."""


def _affine_clip(fn: Any) -> tuple[float, float] | None:
    """(slope, offset) if `fn` is clip(slope * x + offset, 0, 1), the two hard sigmoids."""
    if fn is keras2_hard_sigmoid:
        return 0.2, 0.5
    if fn is keras.activations.hard_sigmoid:
        return 1.0 / 6.0, 0.5
    return None


def _clip01(x: Any) -> Any:
    return keras.ops.clip(x, 0.0, 1.0)


def _gate_weights(layer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, Any, int]:
    """Kernel, recurrent kernel, bias and gate activation of an LSTM-type layer, refolded.

    The four gates' output channels stay in Keras's order [i f c o] (regrouping them as
    [i f o | c] for one activation call measured slower: SPLIT_V plus SPLIT cost more than
    two extra activation calls). A hard sigmoid's affine part is folded into the i, f and o
    weights, leaving a bare clip to [0, 1].
    """
    cell = layer.cell
    units = int(getattr(cell, "filters", None) or cell.units)
    kernel = np.asarray(cell.kernel, dtype=np.float32)
    rkernel = np.asarray(cell.recurrent_kernel, dtype=np.float32)
    if cell.use_bias:
        bias = np.asarray(cell.bias, dtype=np.float32)
    else:
        bias = np.zeros(4 * units, np.float32)
    kernel, rkernel, bias = kernel.copy(), rkernel.copy(), bias.copy()
    gate_activation = cell.recurrent_activation
    folded = _affine_clip(gate_activation)
    if folded is not None:
        slope, offset = folded
        for gate in (0, 1, 3):  # i, f, o
            sig = slice(gate * units, (gate + 1) * units)
            kernel[..., sig] *= slope
            rkernel[..., sig] *= slope
            bias[sig] = bias[sig] * slope + offset
        gate_activation = _clip01
    return kernel, rkernel, bias, gate_activation, units


def _make_stage_classes() -> dict[str, type]:
    """Keras layer classes for the twin (built once, on first use)."""
    ops = keras.ops

    class _Recurrent(keras.layers.Layer):
        """Shared by the unrolled ConvLSTM2D and LSTM: folded weights and the gate step."""

        def __init__(self, source: Any, name: str, **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.return_sequences = bool(source.return_sequences)
            self.activation = source.activation
            kernel, rkernel, bias, self.gate_activation, self.units = _gate_weights(source)
            # Plain constants: frozen into the graph as they are.
            self.kernel = ops.convert_to_tensor(kernel)
            self.rkernel = ops.convert_to_tensor(rkernel)
            self.bias = ops.convert_to_tensor(bias)

        def step(self, z: Any, c: Any) -> tuple[Any, Any]:
            """One LSTM update from the summed gate pre-activations, channels [i f c o]."""
            zi, zf, zc, zo = ops.split(z, 4, axis=-1)
            i = self.gate_activation(zi)
            g = self.activation(zc)
            # The state starts at zero: the first step needs no forget gate.
            c = i * g if c is None else self.gate_activation(zf) * c + i * g
            return self.gate_activation(zo) * self.activation(c), c

    class FusedConvLSTM2D(_Recurrent):
        """A ConvLSTM2D as one batched input conv + one recurrent conv per step, unrolled."""

        def __init__(self, source: Any, in_shape: tuple[int, ...], **kwargs: Any) -> None:
            super().__init__(source, name=f"fused_{source.name}", **kwargs)
            _, seq, h, w, c = in_shape
            self.seq, self.frame_shape = int(seq), (int(h), int(w), int(c))
            self.strides = tuple(source.strides)
            self.padding = str(source.padding)
            self.dilation = tuple(source.dilation_rate)

        def call(self, x: Any) -> Any:
            frames = ops.reshape(x, (-1, *self.frame_shape))
            xc = ops.conv(
                frames,
                self.kernel,
                strides=self.strides,
                padding=self.padding,
                dilation_rate=self.dilation,
            )
            xc = xc + self.bias
            xc = ops.reshape(xc, (-1, self.seq, *(int(d) for d in xc.shape[1:])))
            h = c = None
            outs = []
            # UNPACK is a copy; a 5-D STRIDED_SLICE per step runs LiteRT's slow generic kernel
            # (it cost more than the whole first layer's arithmetic).
            for t, z in enumerate(ops.unstack(xc, axis=1)):
                if t:
                    z = z + ops.conv(h, self.rkernel, strides=1, padding="same")
                h, c = self.step(z, c)
                outs.append(h)
            return ops.stack(outs, axis=1) if self.return_sequences else h

    class UnrolledLSTM(_Recurrent):
        """An LSTM as one input matmul for all steps + one recurrent matmul per step."""

        def __init__(self, source: Any, in_shape: tuple[int, ...], **kwargs: Any) -> None:
            super().__init__(source, name=f"unrolled_{source.name}", **kwargs)
            _, seq, dim = in_shape
            self.seq, self.dim = int(seq), int(dim)

        def call(self, x: Any) -> Any:
            xw = ops.matmul(ops.reshape(x, (-1, self.dim)), self.kernel) + self.bias
            xw = ops.reshape(xw, (-1, self.seq, 4 * self.units))
            h = c = None
            outs = []
            for t, z in enumerate(ops.unstack(xw, axis=1)):
                if t:
                    z = z + ops.matmul(h, self.rkernel)
                h, c = self.step(z, c)
                outs.append(h)
            return ops.stack(outs, axis=1) if self.return_sequences else h

    class Framewise(keras.layers.Layer):
        """Per-frame layers run on all frames at once: (N, T, ...) -> (N*T, ...) and back."""

        def __init__(
            self, inner: list[Any], in_shape: tuple[int, ...], name: str, **kwargs: Any
        ) -> None:
            super().__init__(name=name, **kwargs)
            self.inner = inner
            self.seq = int(in_shape[1])
            self.frame_shape = tuple(int(d) for d in in_shape[2:])

        def call(self, x: Any) -> Any:
            y = ops.reshape(x, (-1, *self.frame_shape))
            for op in self.inner:
                y = op(y)
            return ops.reshape(y, (-1, self.seq, *(int(d) for d in y.shape[1:])))

    class Flat(keras.layers.Layer):
        """Flatten with a constant target shape (no Shape/Pack ops for the batch size)."""

        def __init__(self, in_shape: tuple[int, ...], name: str, **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.size = math.prod(int(d) for d in in_shape[1:])

        def call(self, x: Any) -> Any:
            return ops.reshape(x, (-1, self.size))

    class Apply(keras.layers.Layer):
        """Any other layer, called as-is in inference mode."""

        def __init__(self, source: Any, **kwargs: Any) -> None:
            super().__init__(name=f"apply_{source.name}", **kwargs)
            self.source = source

        def call(self, x: Any) -> Any:
            return self.source(x, training=False)

    class InferenceTwin(keras.Model):
        """The stages in order; inference only (no dropout, no training behaviour)."""

        def __init__(self, stages: list[Any], name: str, **kwargs: Any) -> None:
            super().__init__(name=name, **kwargs)
            self.stages = stages

        def call(self, x: Any, training: bool = False) -> Any:
            for stage in self.stages:
                x = stage(x)
            return x

    return {
        "FusedConvLSTM2D": FusedConvLSTM2D,
        "UnrolledLSTM": UnrolledLSTM,
        "Framewise": Framewise,
        "Flat": Flat,
        "Apply": Apply,
        "InferenceTwin": InferenceTwin,
    }


_STAGES: dict[str, type] | None = None


def _stages() -> dict[str, type]:
    global _STAGES
    if _STAGES is None:
        _STAGES = _make_stage_classes()
    return _STAGES


def _chain(model: Any) -> list[tuple[Any, tuple[Any, ...]]]:
    """The model's layers in order with their input shapes; refuses anything but a chain.

    Walked back from the output through each tensor's producing call: a Sequential model
    loaded from `.h5` carries several call nodes per layer, only one of them the model's.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"cannot export {model.name}: only single-input, single-output models")
    chain: list[tuple[Any, tuple[Any, ...]]] = []
    tensor, start = model.outputs[0], model.inputs[0]
    while tensor is not start:
        history = getattr(tensor, "_keras_history", None)
        if history is None:
            raise ModelError(f"cannot export {model.name}: cannot trace its layers")
        layer = history.operation
        node = layer._inbound_nodes[history.node_index]
        if len(node.input_tensors) != 1 or len(chain) > 10_000:
            raise ModelError(
                f"cannot export {model.name}: layer {layer.name} has {len(node.input_tensors)} "
                "inputs (only straight chains of layers are supported)"
            )
        tensor = node.input_tensors[0]
        chain.append((layer, tuple(tensor.shape)))
    chain.reverse()
    return chain


def _is_dropout(layer: Any) -> bool:
    layers = keras.layers
    return isinstance(
        layer,
        layers.Dropout
        | layers.GaussianDropout
        | layers.GaussianNoise
        | layers.AlphaDropout
        | layers.SpatialDropout1D
        | layers.SpatialDropout2D
        | layers.SpatialDropout3D,
    )


def _frame_pool(layer: Any) -> Any | None:
    """A per-frame 2-D pooling layer equal to this 3-D one, or None if it pools over time."""
    layers = keras.layers
    if layer.data_format != "channels_last":
        return None
    if layer.pool_size[0] != 1 or layer.strides[0] != 1:
        return None
    cls = layers.MaxPooling2D if isinstance(layer, layers.MaxPooling3D) else layers.AveragePooling2D
    return cls(
        pool_size=tuple(layer.pool_size)[1:],
        strides=tuple(layer.strides)[1:],
        padding=layer.padding,
        name=f"frame_{layer.name}",
    )


def _check_recurrent(layer: Any) -> None:
    """Refuse the recurrent-layer options the unrolled twin does not reproduce."""
    problems = [
        opt for opt in ("go_backwards", "stateful", "return_state") if getattr(layer, opt, False)
    ]
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        problems.append("channels_first")
    if problems:
        raise ModelError(f"cannot export layer {layer.name}: unsupported {', '.join(problems)}")


def build_inference_twin(model: Any) -> Any:
    """A Keras model computing `model`'s inference function with LiteRT-friendly ops.

    Supports straight chains of ConvLSTM2D, LSTM, MaxPooling3D/AveragePooling3D (pool of one
    frame), TimeDistributed(any layer), dropout-like layers, Flatten and any other layer that is
    used as-is (Dense, Activation, ...).
    """
    layers = keras.layers
    window = tuple(model.input_shape)[1:]
    if len(window) != 4 or any(d is None for d in window):
        raise ModelError(
            f"cannot export {model.name}: input shape {tuple(model.input_shape)} must fix "
            "frames, height, width and channels"
        )
    s = _stages()
    stages: list[Any] = []
    framewise: list[Any] = []
    fw_shape: tuple[int, ...] | None = None

    def flush() -> None:
        nonlocal framewise, fw_shape
        if framewise:
            assert fw_shape is not None
            stages.append(s["Framewise"](framewise, fw_shape, name=f"framewise_{len(stages)}"))
        framewise, fw_shape = [], None

    def add_framewise(op: Any, in_shape: tuple[int, ...]) -> None:
        nonlocal fw_shape
        if not framewise:
            fw_shape = in_shape
        framewise.append(op)

    for layer, in_shape in _chain(model):
        if _is_dropout(layer):
            continue
        if isinstance(layer, layers.ConvLSTM2D):
            _check_recurrent(layer)
            flush()
            stages.append(s["FusedConvLSTM2D"](layer, in_shape))
        elif isinstance(layer, layers.LSTM):
            _check_recurrent(layer)
            flush()
            stages.append(s["UnrolledLSTM"](layer, in_shape))
        elif isinstance(layer, layers.RNN | layers.Bidirectional):
            raise ModelError(
                f"cannot export layer {layer.name}: {type(layer).__name__} is not supported "
                "(LSTM and ConvLSTM2D are)"
            )
        elif isinstance(layer, layers.MaxPooling3D | layers.AveragePooling3D):
            pool = _frame_pool(layer)
            if pool is None:
                raise ModelError(f"cannot export {layer.name}: it pools over time")
            add_framewise(pool, in_shape)
        elif isinstance(layer, layers.TimeDistributed):
            inner = layer.layer
            if _is_dropout(inner):
                continue
            if isinstance(inner, layers.Flatten):
                add_framewise(s["Flat"](in_shape[1:], name=f"frame_{layer.name}"), in_shape)
            else:
                add_framewise(s["Apply"](inner), in_shape)
        elif isinstance(layer, layers.Flatten):
            flush()
            stages.append(s["Flat"](in_shape, name=layer.name))
        else:
            flush()
            stages.append(s["Apply"](layer))
    flush()
    twin = s["InferenceTwin"](stages, name=f"{model.name}_inference")
    twin(np.zeros((1, *window), np.float32))
    return twin


def convert_to_tflite(
    model: Any, input_shape: tuple[int, ...], *, batch: int | None = None
) -> bytes:
    """Convert `model` (normally the twin) to a LiteRT flatbuffer using builtin ops only.

    `input_shape` is one window's shape (T, H, W, C); `batch` None leaves the batch axis open,
    which costs nothing at run time (measured) and lets one file serve any batch size.
    """
    spec = tf.TensorSpec((batch, *input_shape), tf.float32, name="frames")

    @tf.function(input_signature=[spec])
    def serve(frames):  # type: ignore[no-untyped-def]
        return {"probabilities": model(frames, training=False)}

    try:
        # Freeze the weights here: left to the converter, Keras 3 variables stay resource
        # variables (READ_VARIABLE ops that nothing initialises: the model outputs NaN).
        frozen = convert_variables_to_constants_v2(serve.get_concrete_function())
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter.allow_custom_ops = False
        return bytes(converter.convert())
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise ModelError(f"cannot convert {model.name} to LiteRT builtins: {first[:300]}") from None


def run_tflite(flatbuffer: bytes, batch: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Probabilities from a LiteRT flatbuffer, through the interpreter the daemon uses."""
    interpreter = Interpreter(model_content=flatbuffer, num_threads=threads)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], list(batch.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], np.ascontiguousarray(batch, dtype=np.float32))
    interpreter.invoke()
    return np.array(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]))


def export_tflite(model_dir: Path | str) -> Path:
    """Write `model.tflite` beside the Keras model and record it in `model.json`.

    The export is checked against the Keras model on random windows before anything is
    written: a converter or delegate bug must not reach a camera as wrong probabilities.
    """
    model_dir = Path(model_dir)
    loaded = load_model_dir(model_dir)
    twin = build_inference_twin(loaded.model)
    flat = convert_to_tflite(twin, loaded.meta.input_shape)
    check = np.random.default_rng(0).random((2, *loaded.meta.input_shape), dtype=np.float32)
    diff = float(np.max(np.abs(run_tflite(flat, check) - loaded.predict(check))))
    if not diff <= EXPORT_ATOL:
        raise ModelError(
            f"{model_dir}: the LiteRT export differs from the Keras model by {diff:.2g} "
            f"(limit {EXPORT_ATOL:g}); not written"
        )
    out = model_dir / TFLITE_FILE
    fd, tmp = tempfile.mkstemp(dir=model_dir, prefix=".model.", suffix=".tflite.tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(flat)
        # mkstemp makes the file private; a model is read by the service user, like model.keras.
        os.chmod(tmp, 0o644)
        Path(tmp).replace(out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    meta = read_meta(model_dir).model_copy(update={"tflite_file": TFLITE_FILE})
    write_meta(model_dir, meta)
    log.info("export.tflite", path=str(out), bytes=len(flat), max_abs_diff=diff)
    return out
