"""What `har-daemon report` reads, checked before anything is drawn.

Inputs, all as the other subcommands write them:

* the evaluation folder: ``metrics.json``, ``confusion_matrix.png``, ``predictions.csv`` and
  ``predictions.png`` from `har-daemon evaluate` (a model directory works too: its
  ``test_metrics.json`` and ``test_confusion_matrix.png`` are the held-out figures of training);
* the model directory (``--model``, else the one ``metrics.json`` names if it still exists):
  ``model.json`` for the model card, ``loss.png``/``accuracy.png`` (or ``history.json``) for
  the training curves;
* optionally a ``cv.json`` from `har-daemon cv` for the per-fold table.

Every check happens here, so a missing or corrupt file is one line (`DataError` for the
evaluation and cv.json, `ModelError` for the model directory) naming the file.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har_daemon.core.errors import DataError, HarError, ModelError
from har_daemon.model.meta import META_FILE, ModelMeta, read_meta

__all__ = [
    "PNG_MAGIC",
    "Evaluation",
    "is_number",
    "load_cv",
    "load_evaluation",
    "load_model",
    "read_history",
    "read_json",
    "read_png",
]

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@dataclass
class Evaluation:
    """One evaluation folder: its checked metrics and, when present, its per-clip rows."""

    directory: Path
    metrics_path: Path
    prefix: str  # "" for `evaluate` output, "test_" for a model directory's held-out figures
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]] | None

    def file(self, name: str) -> Path:
        """A file of this evaluation, e.g. ``predictions.png`` (``test_...`` in a model dir)."""
        return self.directory / f"{self.prefix}{name}"

    @property
    def held_out(self) -> bool:
        """Whether only clips held out from training were scored."""
        return self.metrics.get("split") == "test" or bool(self.prefix)


def read_json(path: Path, error: type[HarError], what: str) -> Any:
    """Parse a JSON file; any failure is one `error` line naming the file and `what` it is."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: {what} is not valid JSON: {exc}") from None


def read_png(path: Path, error: type[HarError] = DataError) -> bytes:
    """The bytes of a PNG file that `evaluate` or `train` wrote, checked to be a PNG."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read image: {exc}") from None
    if not data.startswith(PNG_MAGIC):
        raise error(f"{path}: not a PNG image")
    return data


def is_number(value: object) -> bool:
    """A finite int or float (JSON's true/false are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_metrics(m: Any, path: Path) -> dict[str, Any]:
    """The fields the page shows, checked up front so a bad file is one clear line."""

    def bad(what: str) -> DataError:
        return DataError(f"{path}: not a metrics file from `har-daemon evaluate`: {what}")

    if not isinstance(m, dict):
        raise bad("expected a JSON object")
    for key in ("accuracy", "n_samples"):
        if not is_number(m.get(key)):
            raise bad(f"'{key}' missing or not a number")
    for avg in ("micro", "macro"):
        block = m.get(avg)
        if not isinstance(block, dict) or not all(
            is_number(block.get(k)) for k in ("precision", "recall", "f1")
        ):
            raise bad(f"'{avg}' must hold numeric precision, recall and f1")
    names = m.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise bad("'class_names' must be a non-empty list of strings")
    per_class = m.get("per_class")
    if not isinstance(per_class, dict) or list(per_class) != names:
        raise bad("'per_class' must have one entry per class, in 'class_names' order")
    for name, c in per_class.items():
        fields = ("precision", "recall", "f1", "support", "tp", "fp", "fn", "tn")
        if not isinstance(c, dict) or not all(is_number(c.get(k)) for k in fields):
            raise bad(f"per_class '{name}' needs numeric {', '.join(fields)}")
    cm = m.get("confusion_matrix")
    k = len(names)
    if (
        not isinstance(cm, list)
        or len(cm) != k
        or not all(isinstance(r, list) and len(r) == k and all(map(is_number, r)) for r in cm)
    ):
        raise bad(f"'confusion_matrix' must be {k}x{k} numbers")
    return m


def _read_predictions(path: Path, classes: Sequence[str]) -> list[dict[str, Any]]:
    """Rows of `predictions.csv` as evaluate writes it: clip, true, predicted, confidence, ..."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"clip", "true", "predicted", "confidence"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{path}: no column(s) {', '.join(sorted(missing))}")
            rows: list[dict[str, Any]] = []
            for line, row in enumerate(reader, start=2):
                try:
                    confidence = float(row["confidence"])
                except (TypeError, ValueError):
                    raise DataError(f"{path}:{line}: confidence is not a number") from None
                if row["true"] not in classes or row["predicted"] not in classes:
                    raise DataError(f"{path}:{line}: a label that is not one of {list(classes)}")
                rows.append(
                    {
                        "clip": row["clip"] or "",
                        "true": row["true"],
                        "predicted": row["predicted"],
                        "confidence": confidence,
                    }
                )
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read per-clip predictions: {exc}") from None


def load_evaluation(evaluation_dir: Path) -> Evaluation:
    """The `--report` folder of `evaluate`, or a model directory's held-out test figures."""
    d = Path(evaluation_dir)
    if not d.exists():
        raise DataError(f"evaluation folder {d} does not exist")
    if not d.is_dir():
        raise DataError(f"{d} is not a folder (expected the --report folder of `evaluate`)")
    for prefix in ("", "test_"):
        path = d / f"{prefix}metrics.json"
        if path.is_file():
            break
    else:
        raise DataError(f"{d} has no metrics.json: run `har-daemon evaluate --report {d}` first")
    metrics = _check_metrics(read_json(path, DataError, "the metrics"), path)
    pred_path = d / f"{prefix}predictions.csv"
    predictions = (
        _read_predictions(pred_path, metrics["class_names"]) if pred_path.is_file() else None
    )
    return Evaluation(d, path, prefix, metrics, predictions)


def _resolve_model_dir(model_dir: Path | None, ev: Evaluation) -> Path | None:
    """An explicit --model must be valid; otherwise use the evaluated model if it is still there."""
    if model_dir is not None:
        return Path(model_dir)
    if (ev.directory / META_FILE).is_file():
        return ev.directory
    recorded = ev.metrics.get("model")
    if isinstance(recorded, str) and (Path(recorded) / META_FILE).is_file():
        return Path(recorded)
    return None


def load_model(model_dir: Path | None, ev: Evaluation) -> tuple[Path | None, ModelMeta | None]:
    """The model directory and its metadata, which must be of the evaluated classes."""
    resolved = _resolve_model_dir(model_dir, ev)
    if resolved is None:
        return None, None
    meta = read_meta(resolved)
    if list(meta.classes) != list(ev.metrics["class_names"]):
        raise ModelError(
            f"{resolved}: classes {meta.classes} are not the evaluated "
            f"{ev.metrics['class_names']}: give --model the directory that was evaluated"
        )
    return resolved, meta


def read_history(model_dir: Path) -> dict[str, list[float]] | None:
    """Training's per-epoch `history.json`, or None when it was not kept."""
    path = model_dir / "history.json"
    if not path.is_file():
        return None
    history = read_json(path, ModelError, "the training history")
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(map(is_number, v)) for v in history.values()
    ):
        raise ModelError(f"{path}: expected an object of per-epoch number lists")
    return history


def load_cv(cv_json: Path) -> dict[str, Any]:
    """A `cv.json` from `har-daemon cv` (its fields are checked as the page is built)."""
    path = Path(cv_json)
    if not path.is_file():
        raise DataError(f"cross-validation file {path} does not exist")
    doc = read_json(path, DataError, "the cross-validation results")
    if not isinstance(doc, dict):
        raise DataError(f"{path}: not a cv.json from `har-daemon cv` (not an object)")
    return doc


STREAM_FILE = "stream.json"
TIMELINE_FILE = "timeline.png"


def is_stream_folder(folder: Path) -> bool:
    """A `har-daemon evaluate-stream --report` folder (and not an `evaluate` one)."""
    return (folder / STREAM_FILE).is_file() and not (folder / "metrics.json").is_file()


def load_stream(folder: Path) -> tuple[dict[str, Any], bytes | None]:
    """stream.json (checked) and the timeline PNG, if there is one."""
    path = Path(folder) / STREAM_FILE
    if not path.is_file():
        raise DataError(
            f"{folder} has no {STREAM_FILE}: run `har-daemon evaluate-stream ... "
            f"--report {folder}` first"
        )
    doc = read_json(path, DataError, "the stream evaluation")
    if not isinstance(doc, dict) or not isinstance(doc.get("figures"), dict):
        raise DataError(f"{path}: not an evaluate-stream result (no figures)")
    timeline = Path(folder) / TIMELINE_FILE
    return doc, read_png(timeline) if timeline.is_file() else None
