"""The report's pictures as inline PNG data URIs, so the page makes no request of any kind.

Figures that `evaluate` and `train` already wrote are embedded as they are; when only their JSON
was kept they are drawn again with `reporting.plots`. The sample-frame strip is drawn here, from
the clips named in ``predictions.csv`` (the middle sampled frame, as `evaluate` picks it).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from har_daemon.core.errors import DataError, HarError, ModelError
from har_daemon.model.meta import ModelMeta
from har_daemon.reporting.inputs import Evaluation, read_history, read_png
from har_daemon.reporting.plots import plot_confusion_matrix, plot_history
from har_daemon.video.frames import extract_clip, probe_video

__all__ = [
    "Figure",
    "StripItem",
    "confusion_figure",
    "curve_figures",
    "predictions_figure",
    "strip_items",
    "strip_rows",
]

_STRIP_MAX = 8
_THUMB_WIDTH = 224
_DEFAULT_SEQ_LEN = 20  # the paper's window, for clips of an evaluation without a model.json


@dataclass(frozen=True)
class Figure:
    """An embedded picture and the caption that says where it came from."""

    uri: str
    caption: str


@dataclass(frozen=True)
class StripItem:
    """One clip of the sample strip; `uri` is None when the clip can no longer be read."""

    clip: str
    true: str
    predicted: str
    confidence: float
    uri: str | None


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png_uri_from_file(path: Path, error: type[HarError] = DataError) -> str:
    return data_uri(read_png(path, error))


def _png_uri_from_array(img_bgr: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", img_bgr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return data_uri(buf.tobytes())


def confusion_figure(ev: Evaluation, title: str, work: Path) -> Figure:
    """evaluate's confusion-matrix PNG, or one drawn from metrics.json into `work`."""
    path = ev.file("confusion_matrix.png")
    if path.is_file():
        return Figure(_png_uri_from_file(path), f"{path.name}, as written by evaluate")
    drawn = plot_confusion_matrix(
        np.asarray(ev.metrics["confusion_matrix"]),
        ev.metrics["class_names"],
        work / "confusion_matrix.png",
        title=title,
    )
    return Figure(_png_uri_from_file(drawn), f"drawn from {ev.metrics_path.name}")


def curve_figures(model_dir: Path, work: Path) -> list[Figure]:
    """Training's own loss/accuracy PNGs; drawn from history.json when only that was kept."""
    pngs = [model_dir / n for n in ("loss.png", "accuracy.png") if (model_dir / n).is_file()]
    if pngs:
        return [Figure(_png_uri_from_file(p, ModelError), p.name) for p in pngs]
    history = read_history(model_dir)
    if history is None:
        return []
    return [
        Figure(_png_uri_from_file(p), f"{p.name}, drawn from history.json")
        for p in plot_history(history, work / "curves")
    ]


def predictions_figure(ev: Evaluation) -> Figure | None:
    """evaluate's own sample strip (``predictions.png``), shown when the clips are gone."""
    png = ev.file("predictions.png")
    if not png.is_file():
        return None
    why = (
        "the clips named in predictions.csv cannot be read here"
        if ev.predictions
        else "no predictions.csv"
    )
    return Figure(_png_uri_from_file(png), f"{png.name} as written by evaluate ({why})")


def strip_rows(
    rows: Sequence[Mapping[str, Any]], classes: Sequence[str]
) -> list[Mapping[str, Any]]:
    """Up to two clips per class, a mistake first where there is one (as `evaluate` picks)."""
    chosen: list[Mapping[str, Any]] = []
    for c in classes:
        of_class = [r for r in rows if r["true"] == c]
        wrong = [r for r in of_class if r["predicted"] != c]
        right = [r for r in of_class if r["predicted"] == c]
        chosen += (wrong[:1] + right)[:2]
    return chosen[:_STRIP_MAX]


def _thumbnail(path: Path, seq_len: int) -> str | None:
    """The middle sampled frame of a clip, as evaluate shows it, at a size people can see."""
    try:
        info = probe_video(path)
        if info.width <= 0 or info.height <= 0:
            return None
        width = min(_THUMB_WIDTH, info.width)
        height = max(8, round(info.height * width / info.width))
        clip = extract_clip(path, seq_len, (height, width), "area")
        return _png_uri_from_array(clip.frames[seq_len // 2])
    except (HarError, OSError, ValueError):
        return None


def strip_items(ev: Evaluation, meta: ModelMeta | None) -> list[StripItem]:
    """The strip's clips with their thumbnails, found under the evaluated data folder."""
    if not ev.predictions:
        return []
    data = ev.metrics.get("data")
    root = Path(data) if isinstance(data, str) and Path(data).is_dir() else None
    seq_len = meta.sequence_length if meta is not None else _DEFAULT_SEQ_LEN
    items = []
    for row in strip_rows(ev.predictions, ev.metrics["class_names"]):
        clip = Path(row["clip"])
        path = clip if clip.is_absolute() else (root / clip if root is not None else None)
        uri = _thumbnail(path, seq_len) if path is not None and path.is_file() else None
        items.append(StripItem(row["clip"], row["true"], row["predicted"], row["confidence"], uri))
    return items
