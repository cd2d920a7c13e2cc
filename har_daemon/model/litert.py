"""`model.tflite` under ai-edge-litert's XNNPACK CPU kernels: the daemon's backend.

Measured at a quarter to a third of the Keras graph call's latency and about 95 MB of memory
against 740 MB. Nothing here imports TensorFlow or Keras, so a camera box needs neither.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from har_daemon.core.errors import ModelError
from har_daemon.core.logs import get_logger
from har_daemon.model.backends import as_batch, default_threads
from har_daemon.model.meta import ModelMeta, read_meta

log = get_logger(__name__)


class LiteRTBackend:
    """`model.tflite` under ai-edge-litert with XNNPACK; TensorFlow and Keras are never imported.

    One interpreter kept at batch 1: a batch is run one window at a time. Under XNNPACK a
    batch of 8 was no faster per window (4.8-5.9 ms against 4.5 ms, bench/inference.py), while
    resizing the input to every batch size the scheduler happens to form re-plans and
    re-allocates the graph, and each larger size kept ~16 MB more resident (306 MB against
    187 MB at 8 cameras, `har-daemon bench`). Calls are serialised because an interpreter is
    not thread-safe.
    """

    name = "litert"

    def __init__(self, model_dir: Path | str, threads: int | None = None) -> None:
        model_dir = Path(model_dir)
        self.meta = read_meta(model_dir)
        path = _tflite_path(model_dir, self.meta)
        self.threads = threads or default_threads()
        try:
            self._interp: Any = Interpreter(
                model_path=str(path),
                num_threads=self.threads,
                experimental_op_resolver_type=OpResolverType.AUTO,  # AUTO includes XNNPACK
            )
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"cannot load {path}: {first[:300]}") from None
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        self._in, self._out = inp["index"], out["index"]
        signature = tuple(int(d) for d in inp["shape_signature"])
        if signature[1:] != self.meta.input_shape or int(out["shape"][-1]) != len(
            self.meta.classes
        ):
            raise ModelError(
                f"{path} (input {signature}, {int(out['shape'][-1])} outputs) does not match "
                f"{model_dir / 'model.json'}; run `har-daemon export {model_dir}` again"
            )
        # -1: any batch size, pinned to 1 here; a fixed batch (a file from elsewhere) is fed in
        # chunks of that size.
        self._fixed_batch = None if signature[0] == -1 else signature[0]
        self._batch = int(inp["shape"][0])
        if self._fixed_batch is None and self._batch != 1:
            self._interp.resize_tensor_input(self._in, [1, *self.meta.input_shape])
            self._interp.allocate_tensors()
            self._batch = 1
        self._lock = threading.Lock()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = as_batch(batch, self.meta)
        n = len(x)
        if not n:
            return np.zeros((0, len(self.meta.classes)), np.float32)
        with self._lock:
            b = self._fixed_batch or 1
            parts = []
            for i in range(0, n, b):
                chunk = x[i : i + b]
                if len(chunk) < b:
                    pad = np.zeros((b - len(chunk), *chunk.shape[1:]), np.float32)
                    chunk = np.concatenate([chunk, pad])
                parts.append(self._invoke(chunk))
            return np.concatenate(parts)[:n]

    def _invoke(self, x: np.ndarray) -> np.ndarray:
        if len(x) != self._batch:
            self._interp.resize_tensor_input(self._in, list(x.shape))
            self._interp.allocate_tensors()
            self._batch = len(x)
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return self._interp.get_tensor(self._out)


def _tflite_path(model_dir: Path, meta: ModelMeta) -> Path:
    """The export named in model.json; a missing one is refused with the command to run.

    An export older than the Keras file is only warned about: copying a directory can reorder
    modification times, and refusing a good export would stop a camera for nothing.
    """
    fix = f"run `har-daemon export {model_dir}` first"
    if not meta.tflite_file:
        raise ModelError(f"model directory {model_dir} has no LiteRT export (model.tflite); {fix}")
    path = model_dir / meta.tflite_file
    if not path.is_file():
        raise ModelError(f"model directory {model_dir}: LiteRT file {path.name} is missing; {fix}")
    keras_file = model_dir / meta.model_file
    if keras_file.is_file() and keras_file.stat().st_mtime > path.stat().st_mtime:
        log.warning(
            "litert.export_older_than_model",
            model_dir=str(model_dir),
            hint=f"if the model was retrained, {fix.replace(' first', ' again')}",
        )
    return path
