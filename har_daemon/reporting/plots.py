"""Evaluation and training plots written as PNG files.

Figures are built with `matplotlib.figure.Figure` and rendered by the Agg canvas directly: this
module never imports `matplotlib.pyplot`, never calls `matplotlib.use`, and never registers a
figure with pyplot's figure manager. So importing it opens no GUI and changes no global backend,
and nothing stays open after a call (``pyplot.get_fignums()`` is unaffected), even in loops.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = [
    "PredictionItem",
    "plot_confusion_matrix",
    "plot_history",
    "plot_prediction_strip",
    "plot_stream_timeline",
]

_DPI = 110
_GREEN = "#1a9641"
_RED = "#d7191c"
_NEUTRAL = "#404040"


def _new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        fig.savefig(out, format="png", dpi=_DPI, bbox_inches="tight", facecolor="white")
    finally:
        fig.clear()
    return out


# --------------------------------------------------------------------------- confusion matrix


def plot_confusion_matrix(
    cm: Any,
    class_names: Sequence[str],
    path: str | os.PathLike[str],
    title: str | None = None,
    normalize: bool = False,
) -> Path:
    """Heatmap of a confusion matrix (rows = true, columns = predicted) saved as PNG.

    Each cell shows its count and, below it, the percentage of its row (the share of that true
    class predicted as the column's class; a row with no samples shows no percentage). Colours
    follow counts, or row fractions when ``normalize=True`` (then the colour scale is 0-100 % and
    the percentage is written first). Returns the path written. Raises ValueError if ``cm`` is
    not square, not matching ``class_names``, or negative.
    """
    m = np.asarray(cm)
    k = len(class_names)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion matrix must be square, got shape {m.shape}")
    if m.shape[0] != k:
        raise ValueError(f"confusion matrix is {m.shape[0]}x{m.shape[0]} but {k} class names")
    if m.size and (not np.all(np.isfinite(m)) or m.min() < 0):
        raise ValueError("confusion matrix must contain finite non-negative counts")
    m = m.astype(np.float64)
    row_sums = m.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        row_frac = np.where(row_sums > 0, m / np.where(row_sums > 0, row_sums, 1), np.nan)

    names = [str(n) for n in class_names]
    longest = max((len(n) for n in names), default=1)
    cell_in = 0.9 if k <= 8 else 0.65
    side = max(4.0, cell_in * k + 2.0)
    fig = _new_figure(side + 1.2, side)
    ax = fig.add_subplot(1, 1, 1)

    shown = np.nan_to_num(row_frac * 100.0) if normalize else m
    vmax = 100.0 if normalize else max(float(m.max()) if m.size else 1.0, 1.0)
    im = ax.imshow(shown, cmap="Blues", vmin=0.0, vmax=vmax, interpolation="nearest")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("% of true class" if normalize else "count")

    fontsize = 11 if k <= 5 else 9 if k <= 10 else 7
    threshold = vmax / 2.0
    is_int = np.all(m == np.round(m))
    for i in range(k):
        for j in range(k):
            count = f"{int(m[i, j])}" if is_int else f"{m[i, j]:.2f}"
            pct = "" if math.isnan(row_frac[i, j]) else f"{row_frac[i, j] * 100:.1f}%"
            if normalize:
                text = f"{pct}\n({count})" if pct else count
            else:
                text = f"{count}\n({pct})" if pct else count
            colour = "white" if shown[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=fontsize)

    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    rotate = longest > 6 or k > 6
    ax.set_xticklabels(
        names,
        rotation=40 if rotate else 0,
        ha="right" if rotate else "center",
        rotation_mode="anchor",
    )
    ax.set_yticklabels(names)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    # Thin white grid between cells.
    ax.set_xticks(np.arange(-0.5, k, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, k, 1), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    n = int(m.sum())
    acc = float(np.trace(m) / n) if n else 0.0
    heading = title if title is not None else "Confusion matrix"
    ax.set_title(f"{heading}\n(n = {n}, accuracy = {acc * 100:.1f}%)")
    return _save(fig, path)


# --------------------------------------------------------------------------- training history

_HISTORY_ALIASES = {
    "loss": ("loss",),
    "val_loss": ("val_loss",),
    "accuracy": ("accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy"),
    "val_accuracy": (
        "val_accuracy",
        "val_acc",
        "val_categorical_accuracy",
        "val_sparse_categorical_accuracy",
    ),
}


def _series(history: Mapping[str, Sequence[float]], key: str) -> list[float] | None:
    for alias in _HISTORY_ALIASES[key]:
        values = history.get(alias)
        if values is not None and len(values) > 0:
            return [float(v) for v in values]
    return None


def _plot_curves(
    train: list[float] | None,
    val: list[float] | None,
    ylabel: str,
    best: str,
    path: Path,
) -> Path:
    fig = _new_figure(6.4, 4.2)
    ax = fig.add_subplot(1, 1, 1)
    for values, label, colour in ((train, "train", "#2b83ba"), (val, "validation", "#fdae61")):
        if values is None:
            continue
        epochs = np.arange(1, len(values) + 1)
        ax.plot(epochs, values, marker="o", markersize=3, color=colour, label=label)
    if val is not None:
        arr = np.asarray(val, dtype=np.float64)
        if np.any(np.isfinite(arr)):
            idx = int(np.nanargmin(arr) if best == "min" else np.nanargmax(arr))
            ax.scatter(
                [idx + 1],
                [arr[idx]],
                s=60,
                facecolors="none",
                edgecolors="black",
                zorder=3,
                label=f"best validation (epoch {idx + 1}: {arr[idx]:.3f})",
            )
    n_epochs = max(len(v) for v in (train, val) if v is not None)
    ax.set_xlim(0.5, n_epochs + 0.5)
    if n_epochs <= 15:
        ax.set_xticks(range(1, n_epochs + 1))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(ylabel.capitalize() + (" (no validation data)" if val is None else ""))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    return _save(fig, path)


def plot_history(
    history: Mapping[str, Sequence[float]], out_dir: str | os.PathLike[str]
) -> list[Path]:
    """Write ``loss.png`` (loss vs val_loss) and ``accuracy.png`` (accuracy vs val_accuracy).

    ``history`` is a Keras ``History.history``-style dict of per-epoch values; ``acc``/``val_acc``
    and ``(sparse_)categorical_accuracy`` are accepted as accuracy. Missing validation keys just
    leave that curve out; a plot for which neither curve exists is not written. The best
    validation epoch (lowest val_loss, highest val_accuracy) is circled. Returns the paths
    written, loss first.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    specs = (
        ("loss", "val_loss", "loss", "min", "loss.png"),
        ("accuracy", "val_accuracy", "accuracy", "max", "accuracy.png"),
    )
    for train_key, val_key, ylabel, best, filename in specs:
        train = _series(history, train_key)
        val = _series(history, val_key)
        if train is None and val is None:
            continue
        written.append(_plot_curves(train, val, ylabel, best, out / filename))
    return written


# --------------------------------------------------------------------------- prediction strip


@dataclass(frozen=True)
class PredictionItem:
    """One picture of a prediction: a BGR frame, the true label (None if unknown), the
    predicted label and its confidence in [0, 1]."""

    frame: np.ndarray
    true: str | None
    predicted: str
    confidence: float


def _as_item(item: Any) -> PredictionItem:
    if isinstance(item, PredictionItem):
        return item
    if isinstance(item, Mapping):
        true = item.get("true", item.get("true_label"))
        predicted = item.get("predicted", item.get("pred"))
        return PredictionItem(item["frame"], true, predicted, float(item["confidence"]))
    if isinstance(item, Sequence) and len(item) == 4:
        frame, true, predicted, confidence = item
        return PredictionItem(frame, true, predicted, float(confidence))
    raise ValueError(
        "prediction items must be PredictionItem, a mapping with frame/true/predicted/confidence,"
        f" or a (frame, true, predicted, confidence) tuple; got {type(item).__name__}"
    )


def _to_rgb(frame: Any) -> np.ndarray:
    img = np.asarray(frame)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"frame must be HxWx3 BGR (or HxW grey), got shape {img.shape}")
    if img.dtype != np.uint8:
        if not np.issubdtype(img.dtype, np.floating):
            raise ValueError(f"frame must be uint8 (or float in [0, 1]), got {img.dtype}")
        img = (np.clip(np.nan_to_num(img), 0.0, 1.0) * 255.0).round().astype(np.uint8)
    return np.ascontiguousarray(img[..., ::-1])  # BGR -> RGB


def plot_prediction_strip(
    items: Sequence[Any], path: str | os.PathLike[str], max_items: int = 8
) -> Path:
    """Grid of frames captioned with predicted label, confidence and true label.

    Each item is a `PredictionItem`, a mapping with keys ``frame``, ``true``, ``predicted``,
    ``confidence``, or a ``(frame, true, predicted, confidence)`` tuple. ``frame`` is a uint8
    BGR HxWx3 image (as OpenCV decodes it; a float image in [0, 1] is also accepted) and is
    shown in RGB. Correct predictions are captioned and framed in green, wrong ones in red,
    ones with ``true=None`` in grey. Only the first ``max_items`` items are drawn, at most 4 per
    row. Returns the path written; raises ValueError if there is nothing to draw.
    """
    if max_items < 1:
        raise ValueError(f"max_items must be >= 1, got {max_items}")
    chosen = [_as_item(it) for it in list(items)[:max_items]]
    if not chosen:
        raise ValueError("plot_prediction_strip needs at least one item")
    images = [_to_rgb(it.frame) for it in chosen]

    n = len(chosen)
    cols = min(4, n)
    rows = math.ceil(n / cols)
    aspect = max(0.3, min(3.0, images[0].shape[1] / max(images[0].shape[0], 1)))
    cell_w = 2.8
    cell_h = cell_w / aspect + 0.75  # room for a two-line caption
    fig = _new_figure(cell_w * cols, cell_h * rows)
    for idx, (item, img) in enumerate(zip(chosen, images, strict=True)):
        ax = fig.add_subplot(rows, cols, idx + 1)
        ax.imshow(img, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if item.true is None:
            colour, verdict = _NEUTRAL, ""
        elif str(item.true) == str(item.predicted):
            colour, verdict = _GREEN, "correct"
        else:
            colour, verdict = _RED, "WRONG"
        caption = f"pred: {item.predicted} ({item.confidence * 100:.0f}%)"
        caption += f"\ntrue: {item.true if item.true is not None else '?'}"
        if verdict:
            caption += f"  [{verdict}]"
        ax.set_title(caption, color=colour, fontsize=9, fontweight="bold")
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(4)
    fig.tight_layout()
    return _save(fig, path)


# --------------------------------------------------------------------------- stream timeline


def plot_stream_timeline(
    path: str | os.PathLike[str],
    *,
    duration_s: float,
    truth: Sequence[tuple[float, float, str]],
    alerts: Sequence[tuple[float, float, str]],
    times_s: Sequence[float],
    smoothed: Mapping[str, Sequence[float]],
    enter_threshold: float,
    exit_threshold: float,
    title: str | None = None,
) -> Path:
    """What an operator would have seen on a recording: the annotated incidents (shaded), the
    daemon's alerts (bars), and the smoothed scores of the alerting classes with the tracker's
    thresholds, on one time axis."""
    width = min(24.0, max(8.0, duration_s / 20.0))
    fig = _new_figure(width, 3.6)
    ax_s, ax_e = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    for start, end, _ in truth:
        for ax in (ax_s, ax_e):
            ax.axvspan(start, end, color=_GREEN, alpha=0.15, lw=0)
    for name, values in smoothed.items():
        ax_s.plot(list(times_s), list(values), lw=1.2, label=f"{name} (smoothed)")
    ax_s.axhline(enter_threshold, color=_RED, lw=0.8, ls="--", label="enter")
    ax_s.axhline(exit_threshold, color=_NEUTRAL, lw=0.8, ls=":", label="exit")
    ax_s.set_ylim(0, 1.02)
    ax_s.set_ylabel("score")
    ax_s.legend(loc="upper right", fontsize=7, ncols=4)
    for start, end, activity in alerts:
        ax_e.barh(0, max(end - start, duration_s / 500), left=start, height=0.6, color=_RED)
        ax_e.text(start, 0.45, activity, fontsize=7, va="bottom")
    ax_e.set_yticks([])
    ax_e.set_ylim(-0.5, 1)
    ax_e.set_xlim(0, duration_s)
    ax_e.set_xlabel("seconds (shaded: annotated incidents; red: alerts)")
    if title:
        ax_s.set_title(title, fontsize=9)
    return _save(fig, path)
