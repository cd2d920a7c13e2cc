"""Which backend serves a model directory, and building it.

`auto` (the default) serves the LiteRT export when the directory has one, so a daemon installed
without the `[train]` extra never needs TensorFlow; only a model without an export falls back
to Keras. The Keras backend is imported only when it is chosen: that one lazy import is the
only way the daemon's packages reach TensorFlow (import-linter lists it as the exception).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from har_daemon.core.errors import TRAIN_EXTRA_HINT, ConfigError, ModelError
from har_daemon.model.backends import BACKENDS, Backend, BackendKind
from har_daemon.model.litert import LiteRTBackend
from har_daemon.model.meta import read_meta


def resolve_kind(kind: BackendKind | str, model_dir: Path | str) -> str:
    """`keras` or `litert` for `kind`, resolving `auto` by what the model directory holds."""
    if kind not in BACKENDS:
        raise ConfigError(f"unknown inference backend {kind!r}; choose from {', '.join(BACKENDS)}")
    if kind != "auto":
        return kind
    meta = read_meta(Path(model_dir))
    exported = meta.tflite_file is not None and (Path(model_dir) / meta.tflite_file).is_file()
    return "litert" if exported else "keras"


def has_tensorflow() -> bool:
    """Whether the keras backend can be built here (the `[train]` extra is installed)."""
    return find_spec("tensorflow") is not None


def require_tensorflow(what: str) -> None:
    """One line naming the extra to install, instead of an ImportError deep in a stack."""
    if not has_tensorflow():
        raise ModelError(f"{what} needs TensorFlow, which is not installed: {TRAIN_EXTRA_HINT}")


def create_backend(
    kind: BackendKind | str, model_dir: Path | str, threads: int | None = None
) -> Backend:
    """The backend `kind` (resolved) for the model directory, ready to predict."""
    resolved = resolve_kind(kind, model_dir)
    if resolved == "litert":
        return LiteRTBackend(model_dir, threads)
    # `auto` chose keras only because the directory has no export: say how to get one.
    why = "" if kind == "keras" else " (it has no model.tflite; `har-daemon export` writes one)"
    require_tensorflow(f"the keras backend for {model_dir}{why}")
    from har_daemon.model.keras.backend import KerasBackend  # the one sanctioned lazy edge

    return KerasBackend(model_dir, threads)
