"""`har-daemon report`: one self-contained HTML page from what `evaluate`, `train` and `cv` wrote.

The page is meant to be mailed, attached to a ticket or opened years later, so it makes no
request of any kind: every figure is an inline base64 PNG, the CSS is inline, there is no
script, and a Content-Security-Policy forbids anything else. All text taken from files (model
names, class names, clip paths, provenance) is HTML-escaped.

Inputs, all as the other subcommands write them:

* the evaluation folder: ``metrics.json``, ``confusion_matrix.png``, ``predictions.csv`` and
  ``predictions.png`` from `har-daemon evaluate` (a model directory works too: its
  ``test_metrics.json`` and ``test_confusion_matrix.png`` are the held-out figures of training);
* the model directory (``--model``, else the one ``metrics.json`` names if it still exists):
  ``model.json`` for the model card, ``loss.png``/``accuracy.png`` (or ``history.json``) for
  the training curves;
* optionally a ``cv.json`` from `har-daemon cv` for the per-fold table.

The sample-frame strip is drawn here, with the captions as HTML, from the clips named in
``predictions.csv`` (middle sampled frame, as `evaluate` picks it); when the clips can no
longer be read the ``predictions.png`` that `evaluate` drew is shown instead.
"""

from __future__ import annotations

import argparse
import base64
import csv
import html
import json
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from har_daemon import __version__
from har_daemon.core.errors import DataError, HarError, ModelError
from har_daemon.model.meta import META_FILE, ModelMeta, read_meta

__all__ = [
    "REPORT_FILE",
    "add_arguments",
    "build_report",
    "dump_dom",
    "find_chromium",
    "render_screenshot",
    "run",
]

REPORT_FILE = "report.html"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_MAX_LISTED_CLIPS = 2000  # the full list stays in predictions.csv
_STRIP_MAX = 8
_THUMB_WIDTH = 224
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _e(value: object) -> str:
    """Escape any text taken from a file for use in element text and quoted attributes."""
    return html.escape(str(value), quote=True)


def _f3(value: float) -> str:
    return f"{value:.3f}"


# --------------------------------------------------------------------------- loading inputs


@dataclass
class _Evaluation:
    directory: Path
    metrics_path: Path
    prefix: str  # "" for `evaluate` output, "test_" for a model directory's held-out figures
    metrics: dict[str, Any]
    predictions: list[dict[str, Any]] | None


def _read_json(path: Path, error: type[HarError], what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read {what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: {what} is not valid JSON: {exc}") from None


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_metrics(m: Any, path: Path) -> dict[str, Any]:
    """The fields the page shows, checked up front so a bad file is one clear line."""

    def bad(what: str) -> DataError:
        return DataError(f"{path}: not a metrics file from `har-daemon evaluate`: {what}")

    if not isinstance(m, dict):
        raise bad("expected a JSON object")
    for key in ("accuracy", "n_samples"):
        if not _is_number(m.get(key)):
            raise bad(f"'{key}' missing or not a number")
    for avg in ("micro", "macro"):
        block = m.get(avg)
        if not isinstance(block, dict) or not all(
            _is_number(block.get(k)) for k in ("precision", "recall", "f1")
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
        if not isinstance(c, dict) or not all(_is_number(c.get(k)) for k in fields):
            raise bad(f"per_class '{name}' needs numeric {', '.join(fields)}")
    cm = m.get("confusion_matrix")
    k = len(names)
    if (
        not isinstance(cm, list)
        or len(cm) != k
        or not all(isinstance(r, list) and len(r) == k and all(map(_is_number, r)) for r in cm)
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


def _load_evaluation(evaluation_dir: Path) -> _Evaluation:
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
    metrics = _check_metrics(_read_json(path, DataError, "the metrics"), path)
    pred_path = d / f"{prefix}predictions.csv"
    predictions = (
        _read_predictions(pred_path, metrics["class_names"]) if pred_path.is_file() else None
    )
    return _Evaluation(d, path, prefix, metrics, predictions)


def _resolve_model_dir(model_dir: Path | None, ev: _Evaluation) -> Path | None:
    """An explicit --model must be valid; otherwise use the evaluated model if it is still there."""
    if model_dir is not None:
        return Path(model_dir)
    if (ev.directory / META_FILE).is_file():
        return ev.directory
    recorded = ev.metrics.get("model")
    if isinstance(recorded, str) and (Path(recorded) / META_FILE).is_file():
        return Path(recorded)
    return None


def _png_uri_from_file(path: Path, error: type[HarError] = DataError) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read image: {exc}") from None
    if not data.startswith(_PNG_MAGIC):
        raise error(f"{path}: not a PNG image")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _png_uri_from_array(img_bgr: np.ndarray) -> str:
    import cv2

    ok, buf = cv2.imencode(".png", img_bgr)
    if not ok:
        raise ValueError("PNG encoding failed")
    return "data:image/png;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class _Figure:
    uri: str
    caption: str


def _confusion_figure(ev: _Evaluation, title: str, work: Path) -> _Figure:
    path = ev.directory / f"{ev.prefix}confusion_matrix.png"
    if path.is_file():
        return _Figure(_png_uri_from_file(path), f"{path.name}, as written by evaluate")
    from har_daemon.reporting.plots import plot_confusion_matrix

    drawn = plot_confusion_matrix(
        np.asarray(ev.metrics["confusion_matrix"]),
        ev.metrics["class_names"],
        work / "confusion_matrix.png",
        title=title,
    )
    return _Figure(_png_uri_from_file(drawn), f"drawn from {ev.metrics_path.name}")


def _curve_figures(model_dir: Path, work: Path) -> list[_Figure]:
    """Training's own loss/accuracy PNGs; drawn from history.json when only that was kept."""
    pngs = [model_dir / n for n in ("loss.png", "accuracy.png") if (model_dir / n).is_file()]
    if pngs:
        return [_Figure(_png_uri_from_file(p, ModelError), p.name) for p in pngs]
    history_path = model_dir / "history.json"
    if not history_path.is_file():
        return []
    history = _read_json(history_path, ModelError, "the training history")
    if not isinstance(history, dict) or not all(
        isinstance(v, list) and all(map(_is_number, v)) for v in history.values()
    ):
        raise ModelError(f"{history_path}: expected an object of per-epoch number lists")
    from har_daemon.reporting.plots import plot_history

    return [
        _Figure(_png_uri_from_file(p), f"{p.name}, drawn from history.json")
        for p in plot_history(history, work / "curves")
    ]


@dataclass(frozen=True)
class _StripItem:
    clip: str
    true: str
    predicted: str
    confidence: float
    uri: str | None


def _strip_rows(rows: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> list[Mapping]:
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
    from har_daemon.video.frames import extract_clip, probe_video

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


def _strip_items(ev: _Evaluation, meta: ModelMeta | None) -> list[_StripItem]:
    if not ev.predictions:
        return []
    data = ev.metrics.get("data")
    root = Path(data) if isinstance(data, str) and Path(data).is_dir() else None
    seq_len = meta.sequence_length if meta is not None else 20
    items = []
    for row in _strip_rows(ev.predictions, ev.metrics["class_names"]):
        clip = Path(row["clip"])
        path = clip if clip.is_absolute() else (root / clip if root is not None else None)
        uri = _thumbnail(path, seq_len) if path is not None and path.is_file() else None
        items.append(_StripItem(row["clip"], row["true"], row["predicted"], row["confidence"], uri))
    return items


# --------------------------------------------------------------------------- HTML pieces

_CSS = """
:root { --ok: #1a9641; --bad: #d7191c; --ink: #1f2328; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { margin: 0; background: #f3f4f6; color: var(--ink);
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 48px; }
header.top { background: #24292f; color: #fff; padding: 22px 28px; }
header.top h1 { margin: 0 auto; max-width: 1144px; font-size: 26px; }
header.top p { margin: 6px auto 0; max-width: 1144px; color: #c9d1d9; }
section { background: #fff; border: 1px solid var(--line); border-radius: 8px;
  padding: 16px 20px; margin: 18px 0; }
h2 { margin: 0 0 12px; font-size: 19px; border-bottom: 1px solid var(--line); padding-bottom: 6px; }
h3 { margin: 14px 0 8px; font-size: 16px; }
p.note { color: var(--muted); margin: 6px 0; font-size: 13px; }
td.aside { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 14px; }
th, td { border: 1px solid var(--line); padding: 4px 10px; }
th { background: #f6f8fa; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num { white-space: nowrap; }
.scroll { overflow-x: auto; max-width: 100%; }
tr.summary td { font-weight: 600; background: #f6f8fa; }
table.kv th { width: 220px; vertical-align: top; }
table.kv td { max-width: 880px; overflow-wrap: anywhere; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 10px; }
.tile { border: 1px solid var(--line); border-radius: 8px; padding: 10px 16px; min-width: 150px; }
.tile .v { font-size: 28px; font-weight: 700; }
.tile .k { color: var(--muted); font-size: 13px; }
.figs { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid #eaeef2; }
figure.half { flex: 1 1 45%; max-width: 560px; }
figure.cm img { max-width: 560px; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
.strip { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 14px; }
.shot { border: 4px solid #6e7781; border-radius: 6px; padding: 6px; background: #fff; }
.shot img { width: 100%; height: auto; image-rendering: pixelated; display: block; }
.shot .noimg { background: #eaeef2; color: var(--muted); height: 120px; display: flex;
  align-items: center; justify-content: center; font-size: 13px; }
.shot .cap { font-size: 13px; margin-top: 6px; overflow-wrap: anywhere; }
.shot .verdict { font-weight: 700; }
.shot .clip { color: var(--muted); font-size: 11px; }
.shot.correct { border-color: var(--ok); } .shot.correct .verdict { color: var(--ok); }
.shot.wrong { border-color: var(--bad); } .shot.wrong .verdict { color: var(--bad); }
tr.correct td.verdict { color: var(--ok); font-weight: 600; }
tr.wrong td.verdict { color: var(--bad); font-weight: 600; }
tr.wrong td { background: #fff5f5; }
details { margin: 8px 0; } summary { cursor: pointer; color: #0969da; }
.cm td.cell { text-align: center; min-width: 54px; }
footer { color: var(--muted); font-size: 12px; text-align: center; margin-top: 24px; }
"""


def _num_cell(value: float, key: str | None = None, digits: int = 3) -> str:
    """A number shown rounded, with the exact value kept in data-value for machines."""
    attrs = f' data-metric="{_e(key)}"' if key else ""
    shown = f"{value:.{digits}f}" if isinstance(value, float) else str(value)
    return f'<td class="num"{attrs} data-value="{_e(repr(value))}">{_e(shown)}</td>'


def _kv_table(rows: Sequence[tuple[str, object]], table_id: str | None = None) -> str:
    ident = f' id="{_e(table_id)}"' if table_id else ""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows if v != "")
    return f'<table class="kv"{ident}>{body}</table>'


def _plain(value: object) -> str:
    """A JSON value as one readable line (dicts and lists from model.json)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _model_section(meta: ModelMeta | None, model_dir: Path | None) -> str:
    """Model card: what the model is and takes, where its data came from, how it was trained."""
    if meta is None or model_dir is None:
        return (
            '<section id="model"><h2>Model card</h2><p class="note">No model directory with a '
            "model.json was given or found (pass --model DIR), so there is no model card or "
            "training curves.</p></section>"
        )
    t = meta.training
    spacing = meta.frame_spacing_s
    rows: list[tuple[str, object]] = [
        ("Name", meta.name),
        ("Architecture", meta.architecture),
        ("Classes", f"{len(meta.classes)}: " + ", ".join(meta.classes)),
        (
            "Input",
            f"{meta.sequence_length} frames of {meta.frame_height}x{meta.frame_width}x"
            f"{meta.channels} {meta.color_order}, x{meta.input_scale:.5g}, "
            f"{meta.input_transform}, resize {meta.resize_interpolation}",
        ),
        (
            "Frame spacing",
            f"{spacing:.4g} s between sampled frames ({1.0 / spacing:.1f} per second; one "
            f"window spans {spacing * meta.sequence_length:.2f} s), {meta.frame_sampling}",
        ),
    ]
    if isinstance(t.get("clips"), dict):
        rows.append(("Training clips", _plain(t["clips"])))
    if "epochs_run" in t:
        rows.append(
            (
                "Epochs",
                f"{t['epochs_run']} run of {t.get('epochs_requested', '?')} requested, "
                f"best {t.get('best_epoch', '?')}",
            )
        )
    held_out = {k: v for k, v in meta.evaluation.items() if k != "cross_validation"}
    if held_out:
        rows.append(("Held-out figures at training", _plain(held_out)))
    cv = meta.evaluation.get("cross_validation")
    if isinstance(cv, dict) and isinstance(cv.get("accuracy"), dict):

        def pm(entry: Any) -> str:
            return f"{entry['mean']:.3f} ± {entry['std']:.3f}" if isinstance(entry, dict) else "?"

        recall = cv.get("per_class_recall") or {}
        rows.append(
            (
                "Cross-validation",
                f"{cv.get('folds', '?')} folds grouped by {cv.get('grouped_by', 'group')}, "
                f"{cv.get('n_clips', '?')} clips: accuracy {pm(cv['accuracy'])}, macro F1 "
                f"{pm(cv.get('macro_f1'))}, recall "
                + ", ".join(f"{c} {pm(e)}" for c, e in recall.items()),
            )
        )
    rows += [("Created", meta.created_at), ("Directory", str(model_dir))]
    details: list[tuple[str, object]] = []
    for key, label in (
        ("data_dir", "Training data"),
        ("split", "Split"),
        ("test_groups", "Held-out groups"),
        ("seed", "Seed"),
        ("batch_size", "Batch size"),
        ("optimizer", "Optimizer"),
        ("learning_rate", "Learning rate"),
        ("loss", "Loss"),
        ("early_stopping", "Early stopping"),
        ("augment", "Augmentation"),
        ("class_weight", "Class weights"),
        ("final", "Final (best epoch)"),
        ("seconds", "Training time (s)"),
        ("keras_version", "Keras"),
        ("tensorflow_version", "TensorFlow"),
    ):
        if key in t:
            details.append((label, _plain(t[key])))
    if meta.tflite_file:
        details.append(("LiteRT export", meta.tflite_file))
    card = _kv_table(rows, "model-card")
    if details:
        card += f"<details><summary>training details</summary>{_kv_table(details)}</details>"
    if meta.provenance:
        prov = "<h3>Data provenance and licence</h3>" + _kv_table(
            [(k.replace("_", " ").capitalize(), _plain(v)) for k, v in meta.provenance.items()],
            "provenance",
        )
    else:
        prov = '<p class="note">model.json records no data provenance or licence.</p>'
    return f'<section id="model"><h2>Model card</h2>{card}{prov}</section>'


def _curves_section(meta: ModelMeta | None, curves: list[_Figure]) -> str:
    if meta is None:
        return ""
    if not curves:
        return (
            '<section id="curves"><h2>Training curves</h2><p class="note">None saved: the model '
            "directory has no loss.png, accuracy.png or history.json (imported models have "
            "none).</p></section>"
        )
    figs = "".join(
        f'<figure class="half"><img src="{f.uri}" alt="{_e(f.caption)}">'
        f"<figcaption>{_e(f.caption)}</figcaption></figure>"
        for f in curves
    )
    return f'<section id="curves"><h2>Training curves</h2><div class="figs">{figs}</div></section>'


def _headline_section(m: Mapping[str, Any]) -> str:
    acc = m["accuracy"]
    tiles = (
        '<div class="tiles">'
        f'<div class="tile"><div class="v">{acc * 100:.1f}%</div><div class="k">accuracy</div>'
        "</div>"
        f'<div class="tile"><div class="v">{_f3(m["macro"]["f1"])}</div>'
        '<div class="k">macro F1</div></div>'
        f'<div class="tile"><div class="v">{int(m["n_samples"])}</div>'
        '<div class="k">clips scored</div></div></div>'
    )
    rows = (
        "<tr><th>accuracy</th>"
        + _num_cell(float(acc), "accuracy")
        + '<td colspan="2" class="aside">micro P = R = F1 = accuracy (one label per clip)</td></tr>'
    )
    for avg in ("macro", "micro", "weighted"):
        block = m.get(avg)
        if not isinstance(block, dict):
            continue
        rows += f"<tr><th>{avg}</th>" + "".join(
            _num_cell(float(block[k]), f"{avg}.{k}") for k in ("precision", "recall", "f1")
        )
        rows += "</tr>"
    table = (
        '<table id="metrics"><thead><tr><th></th><th class="num">precision</th>'
        '<th class="num">recall</th><th class="num">F1</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )
    return f'<section id="headline"><h2>Headline metrics</h2>{tiles}{table}</section>'


def _per_class_section(m: Mapping[str, Any]) -> str:
    head = "".join(
        f'<th class="num">{h}</th>'
        for h in ("support", "precision", "recall", "F1", "TP", "FP", "FN", "TN")
    )
    body = ""
    for name, c in m["per_class"].items():
        body += f"<tr><th>{_e(name)}</th>" + _num_cell(int(c["support"]), f"{name}.support")
        body += "".join(
            _num_cell(float(c[k]), f"{name}.{k}") for k in ("precision", "recall", "f1")
        )
        body += "".join(_num_cell(int(c[k]), f"{name}.{k}") for k in ("tp", "fp", "fn", "tn"))
        body += "</tr>"
    return (
        '<section id="per-class"><h2>Per class</h2>'
        f'<table id="per-class-table"><thead><tr><th>class</th>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
        '<p class="note">TP/FP/FN/TN count clips, one class against the rest; support is the '
        "number of clips of that class.</p></section>"
    )


def _confusion_section(m: Mapping[str, Any], fig: _Figure) -> str:
    names = m["class_names"]
    cm = m["confusion_matrix"]
    head = "".join(f'<th class="num">{_e(n)}</th>' for n in names)
    body = ""
    for name, row in zip(names, cm, strict=True):
        total = sum(row)
        cells = ""
        for v in row:
            frac = v / total if total else 0.0
            colour = "#fff" if frac > 0.55 else "#1f2328"
            cells += (
                f'<td class="cell num" style="background: rgba(33, 113, 181, {frac:.3f}); '
                f'color: {colour}">{int(v)}</td>'
            )
        body += f"<tr><th>{_e(name)}</th>{cells}</tr>"
    table = (
        '<table class="cm" id="confusion-table"><thead><tr><th>true \\ predicted</th>'
        f"{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    return (
        '<section id="confusion"><h2>Confusion matrix</h2>'
        f'<div class="figs"><figure class="cm"><img src="{fig.uri}" alt="confusion matrix">'
        f"<figcaption>Rows: true class, columns: predicted; {_e(fig.caption)}</figcaption>"
        f'</figure></div><details><summary>as a table</summary><div class="scroll">{table}</div>'
        "</details></section>"
    )


def _verdict(true: str, predicted: str) -> tuple[str, str]:
    return ("correct", "correct") if true == predicted else ("wrong", "WRONG")


def _strip_section(ev: _Evaluation, items: list[_StripItem]) -> str:
    title = "<h2>Sample frames: predicted vs true</h2>"
    if items and any(it.uri for it in items):
        cells = ""
        for it in items:
            css, word = _verdict(it.true, it.predicted)
            img = (
                f'<img src="{it.uri}" alt="{_e(it.clip)}">'
                if it.uri
                else '<div class="noimg">clip not readable</div>'
            )
            cells += (
                f'<div class="shot {css}" data-true="{_e(it.true)}" '
                f'data-predicted="{_e(it.predicted)}">{img}<div class="cap">'
                f"pred: <b>{_e(it.predicted)}</b> ({it.confidence * 100:.0f}%)<br>"
                f'true: <b>{_e(it.true)}</b> <span class="verdict">[{word}]</span><br>'
                f'<span class="clip">{_e(it.clip)}</span></div></div>'
            )
        return (
            f'<section id="strip">{title}<div class="strip">{cells}</div>'
            '<p class="note">Middle sampled frame of up to two clips per class, a mistake first '
            "where there is one; green: correct, red: wrong.</p></section>"
        )
    png = ev.directory / f"{ev.prefix}predictions.png"
    if png.is_file():
        why = (
            "the clips named in predictions.csv cannot be read here"
            if ev.predictions
            else "no predictions.csv"
        )
        return (
            f'<section id="strip">{title}<div class="figs"><figure>'
            f'<img src="{_png_uri_from_file(png)}" alt="sample predictions">'
            f"<figcaption>{_e(png.name)} as written by evaluate ({_e(why)}); green: correct, "
            "red: wrong.</figcaption></figure></div></section>"
        )
    return (
        f'<section id="strip">{title}<p class="note">No sample frames: this folder has no '
        "predictions.csv or predictions.png (a model directory's held-out figures have none; "
        "run `har-daemon evaluate` for them).</p></section>"
    )


def _clip_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    out = ""
    for r in rows:
        css, word = _verdict(r["true"], r["predicted"])
        out += (
            f'<tr class="{css}"><td>{_e(r["clip"])}</td><td>{_e(r["true"])}</td>'
            f'<td>{_e(r["predicted"])}</td><td class="num">{r["confidence"]:.3f}</td>'
            f'<td class="verdict">{word}</td></tr>'
        )
    return out


def _predictions_section(ev: _Evaluation) -> str:
    if ev.predictions is None:
        return ""
    rows = ev.predictions
    wrong = [r for r in rows if r["true"] != r["predicted"]]
    wrong.sort(key=lambda r: -r["confidence"])  # confident mistakes are the ones to look at
    head = (
        '<thead><tr><th>clip</th><th>true</th><th>predicted</th><th class="num">confidence</th>'
        "<th>verdict</th></tr></thead>"
    )
    listed = rows[:_MAX_LISTED_CLIPS]
    more = (
        f'<p class="note">First {len(listed)} of {len(rows)} clips; all are in predictions.csv.</p>'
        if len(rows) > len(listed)
        else ""
    )
    mistakes = (
        f"<h3>Mistakes ({len(wrong)} of {len(rows)} clips, most confident first)</h3>"
        f'<table id="mistakes">{head}<tbody>{_clip_rows(wrong[:_MAX_LISTED_CLIPS])}</tbody>'
        "</table>"
        if wrong
        else f"<p>No mistakes: all {len(rows)} clips are classified correctly.</p>"
    )
    skipped = ev.metrics.get("skipped")
    skipped_html = ""
    if isinstance(skipped, list) and skipped:
        items = "".join(
            f"<li>{_e(s.get('clip', '?'))}: {_e(s.get('reason', '?'))}</li>"
            for s in skipped
            if isinstance(s, dict)
        )
        skipped_html = f"<h3>Skipped ({len(skipped)} unreadable clips)</h3><ul>{items}</ul>"
    return (
        f'<section id="predictions"><h2>Per-clip predictions</h2>{mistakes}'
        f"<details><summary>all {len(rows)} clips</summary>{more}"
        f'<table id="all-clips">{head}<tbody>{_clip_rows(listed)}</tbody></table></details>'
        f"{skipped_html}</section>"
    )


def _cv_section(cv: Any, path: Path) -> str:
    """Per-fold table with mean +- sample std and pooled rows, like `cv`'s printed table."""
    try:
        return _cv_html(cv)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise DataError(
            f"{path}: not a cv.json from `har-daemon cv` ({type(exc).__name__}: {exc})"
        ) from None


def _pm(entry: Mapping[str, Any]) -> str:
    return f"{float(entry['mean']):.3f} ± {float(entry['std']):.3f}"


def _pm_cell(entry: Mapping[str, Any], key: str) -> str:
    """mean ± sd, with both exact values kept in data attributes."""
    mean, std = float(entry["mean"]), float(entry["std"])
    return (
        f'<td class="num" data-metric="{_e(key)}" data-mean="{mean!r}" data-std="{std!r}">'
        f"{_pm(entry)}</td>"
    )


def _cv_html(cv: Mapping[str, Any]) -> str:
    classes = [str(c) for c in cv["classes"]]
    folds = [(int(d["fold"]), d) for d in cv["folds"]]
    s = cv["summary"]
    p = cv["pooled"]

    # One row per fold: scales with the number of folds, not of classes.
    body = ""
    for fold, d in folds:
        r = d["report"]
        clips = d.get("clips") or {}
        train_val = f"{clips.get('train', '?')} / {clips.get('validation', '?')}"
        epochs = f"{d.get('epochs_run', '?')} ({d.get('best_epoch', '?')})"
        body += (
            f'<tr><td>{fold}</td><td class="num">{int(r["n_samples"])}</td>'
            f'<td class="num">{_e(train_val)}</td><td class="num">{_e(epochs)}</td>'
            + _num_cell(float(r["accuracy"]), f"fold{fold}.accuracy")
            + _num_cell(float(r["macro"]["f1"]), f"fold{fold}.macro_f1")
            + "</tr>"
        )
    body += (
        f'<tr class="summary"><td>mean ± sd</td><td class="num">{int(cv["n_clips"])}</td>'
        "<td></td><td></td>"
        + _pm_cell(s["accuracy"], "mean.accuracy")
        + _pm_cell(s["macro_f1"], "mean.macro_f1")
        + "</tr>"
        f'<tr class="summary"><td>pooled</td><td class="num">{int(p["n_samples"])}</td>'
        "<td></td><td></td>"
        + _num_cell(float(p["accuracy"]), "pooled.accuracy")
        + _num_cell(float(p["macro"]["f1"]), "pooled.macro_f1")
        + "</tr>"
    )
    table = (
        '<table id="cv-table"><thead><tr><th>fold</th><th class="num">test clips</th>'
        '<th class="num">train / val clips</th><th class="num">epochs (best)</th>'
        '<th class="num">accuracy</th><th class="num">macro F1</th></tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )

    # Recall per class: one row per class, one column per fold.
    rbody = ""
    for c in classes:
        rbody += f"<tr><th>{_e(c)}</th>"
        rbody += "".join(
            _num_cell(float(d["report"]["per_class"][c]["recall"]), f"fold{fold}.recall.{c}")
            for fold, d in folds
        )
        rbody += _pm_cell(s["per_class_recall"][c], f"mean.recall.{c}")
        rbody += _num_cell(float(p["per_class"][c]["recall"]), f"pooled.recall.{c}") + "</tr>"
    rhead = "".join(f'<th class="num">fold {fold}</th>' for fold, _ in folds)
    table += (
        '<h3>Recall per class</h3><div class="scroll"><table id="cv-recall"><thead><tr>'
        f'<th>class</th>{rhead}<th class="num">mean ± sd</th><th class="num">pooled</th>'
        f"</tr></thead><tbody>{rbody}</tbody></table></div>"
    )

    opts = cv.get("options") or {}
    info = _kv_table(
        [
            ("Folds", f"{int(cv['k'])} ({cv.get('grouping', 'grouped')})"),
            ("Architecture", cv.get("architecture", "")),
            ("Data", cv.get("data_dir", "")),
            ("Options", _plain(opts) if isinstance(opts, dict) else ""),
            ("Time (s)", cv.get("seconds", "")),
        ],
        "cv-info",
    )
    alert_html = ""
    alert = cv.get("at_alert_threshold")
    if isinstance(alert, dict):
        a = str(alert["class"])
        t = alert["summary"]
        alert_html = _kv_table(
            [
                ("Alert class", a),
                ("Threshold (mean ± sd)", _pm(alert["threshold"])),
                ("Accuracy at threshold", _pm(t["accuracy"])),
                (f"Recall of {a} at threshold", _pm(t["per_class_recall"][a])),
                (f"Precision of {a} at threshold", _pm(alert["alert_precision"])),
            ],
            "cv-alert",
        )
        alert_html = f"<h3>At the validation-chosen alert threshold</h3>{alert_html}"
    std_note = (
        '<p class="note">± is the sample standard deviation over folds (ddof = 1); pooled: all '
        "out-of-fold predictions scored together. Every clip is tested once, by a model that saw "
        "no clip of its group.</p>"
    )
    return (
        f'<section id="cv"><h2>Cross-validation</h2>{info}{table}{std_note}{alert_html}</section>'
    )


# --------------------------------------------------------------------------- the page


_NO_FRAMES = (
    '<section id="strip"><h2>Sample frames: predicted vs true</h2><p class="note">Left out '
    "(--no-frames): the evaluated clips may not be redistributed, so neither may pictures of "
    "them.</p></section>"
)


def build_report(
    *,
    evaluation_dir: Path,
    out_path: Path,
    model_dir: Path | None = None,
    cv_json: Path | None = None,
    title: str | None = None,
    frames: bool = True,
) -> Path:
    """Write one self-contained HTML report and return its path.

    `frames=False` leaves out every picture of the evaluated clips (the strip and the
    predictions.png fallback): for a report that is published while the clips may not be.

    `evaluation_dir` is the `--report` folder of `har-daemon evaluate` (or a model directory,
    for its held-out test figures). `model_dir` defaults to the directory itself when it is a
    model directory, else to the model that `metrics.json` names if it still exists. Raises
    `DataError`/`ModelError` (one line) for missing or corrupt inputs, `HarError` if the page
    cannot be written.
    """
    ev = _load_evaluation(Path(evaluation_dir))
    m = ev.metrics
    resolved = _resolve_model_dir(model_dir, ev)
    meta = read_meta(resolved) if resolved is not None else None
    if meta is not None and list(meta.classes) != list(m["class_names"]):
        raise ModelError(
            f"{resolved}: classes {meta.classes} are not the evaluated {m['class_names']}: "
            "give --model the directory that was evaluated"
        )
    cv_doc = None
    if cv_json is not None:
        cv_path = Path(cv_json)
        if not cv_path.is_file():
            raise DataError(f"cross-validation file {cv_path} does not exist")
        cv_doc = _read_json(cv_path, DataError, "the cross-validation results")
        if not isinstance(cv_doc, dict):
            raise DataError(f"{cv_path}: not a cv.json from `har-daemon cv` (not an object)")

    data = m.get("data")
    split = m.get("split")
    if title is None:
        name = meta.name if meta is not None else "Model"
        where = f" on {Path(data).name}" if isinstance(data, str) else ""
        title = f"{name}{where}" + (" (held-out test)" if split == "test" or ev.prefix else "")
    subtitle = f"{int(m['n_samples'])} clips scored"
    if isinstance(data, str):
        subtitle += f" from {data}"
    if split == "test" or ev.prefix:
        subtitle += ", held-out test clips only"
    subtitle += f" · metrics: {ev.metrics_path}"

    with tempfile.TemporaryDirectory(prefix="har-report-") as tmp:
        work = Path(tmp)
        curves = _curve_figures(resolved, work) if resolved is not None else []
        cm_fig = _confusion_figure(ev, title, work)
        strip = _strip_items(ev, meta) if frames else []
        cv_html = _cv_section(cv_doc, Path(cv_json)) if cv_doc is not None else ""
        sections = [
            _model_section(meta, resolved),
            _headline_section(m),
            _per_class_section(m),
            _confusion_section(m, cm_fig),
            _curves_section(meta, curves),
            _strip_section(ev, strip) if frames else _NO_FRAMES,
            _predictions_section(ev),
            cv_html,
        ]
    generated = datetime.now(UTC).isoformat(timespec="seconds")
    page = (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "img-src data:; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="har-daemon {_e(__version__)}">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="top"><h1>{_e(title)}</h1><p>{_e(subtitle)}</p></header><main>'
        + "".join(sections)
        + f"<footer>har-daemon {_e(__version__)} report, generated {_e(generated)} UTC</footer>"
        "</main></body></html>\n"
    )
    return _write_atomic(Path(out_path), page)


def _write_atomic(out: Path, text: str) -> Path:
    if out.is_dir():
        raise HarError(
            f"{out} is a folder: give a file name for the report, e.g. {out / REPORT_FILE}"
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        raise HarError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    return out


# --------------------------------------------------------------------------- headless Chromium


def find_chromium() -> str | None:
    """`$HAR_CHROMIUM`, else the first Chromium/Chrome on PATH (Debian: package `chromium`)."""
    env = os.environ.get("HAR_CHROMIUM")
    if env:
        return shutil.which(env) or (env if Path(env).is_file() else None)
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(args: list[str], chromium: str | None, timeout_s: float) -> str:
    """Run headless Chromium with a throwaway profile and no network; return its stdout.

    `--headless` is the new headless mode (the old one left the chromium binary in 132;
    `--headless=old` is accepted but ignored). `--no-sandbox` because containers often run
    as root; `--disable-dev-shm-usage` for their small /dev/shm.
    """
    binary = chromium or find_chromium()
    if binary is None:
        raise HarError(
            "chromium not found: install it (Debian: apt install chromium) or set HAR_CHROMIUM"
        )
    with tempfile.TemporaryDirectory(prefix="har-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            *args,
        ]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise HarError(f"chromium did not finish within {timeout_s:.0f} s") from None
        except OSError as exc:
            raise HarError(f"cannot start {binary}: {exc.strerror or exc}") from None
    if res.returncode != 0:
        last = [ln for ln in res.stderr.splitlines() if ln.strip()][-1:] or ["no message"]
        raise HarError(f"chromium exited with {res.returncode}: {last[0][:300]}")
    return res.stdout


def render_screenshot(
    html_path: Path,
    png_path: Path,
    *,
    width: int = 1280,
    height: int = 2400,
    chromium: str | None = None,
    timeout_s: float = 120.0,
) -> Path:
    """Screenshot of the top `width` x `height` pixels of a page, as Chromium lays it out."""
    page = Path(html_path).resolve()
    if not page.is_file():
        raise HarError(f"{page} does not exist")
    out = Path(png_path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    _run_chromium(
        [f"--screenshot={out}", f"--window-size={width},{height}", page.as_uri()],
        chromium,
        timeout_s,
    )
    if not out.is_file() or not out.read_bytes().startswith(_PNG_MAGIC):
        raise HarError(f"chromium wrote no screenshot to {out}")
    return out


def dump_dom(html_path: Path, *, chromium: str | None = None, timeout_s: float = 120.0) -> str:
    """The DOM after Chromium parsed the page (`--dump-dom`): proves a browser reads it."""
    page = Path(html_path).resolve()
    if not page.is_file():
        raise HarError(f"{page} does not exist")
    return _run_chromium(["--dump-dom", page.as_uri()], chromium, timeout_s)


# --------------------------------------------------------------------------- CLI hooks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `har-daemon report EVAL_DIR --out report.html [--model DIR] [--cv cv.json]`."""
    parser.add_argument(
        "eval_dir",
        type=Path,
        metavar="EVAL_DIR",
        help="the --report folder of `har-daemon evaluate` (or a model directory)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"HTML file to write (default: EVAL_DIR/{REPORT_FILE})",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="model directory for the model card and curves (default: the evaluated one)",
    )
    parser.add_argument("--cv", type=Path, default=None, help="cv.json from `har-daemon cv`")
    parser.add_argument("--title", default=None, help="page title (default: model and data names)")
    parser.add_argument(
        "--no-frames",
        action="store_true",
        help="leave out pictures of the evaluated clips (for data that may not be published)",
    )
    parser.add_argument(
        "--screenshot",
        type=Path,
        default=None,
        metavar="PNG",
        help="also render the page with headless Chromium to this PNG (1280x2400)",
    )


def run(args: argparse.Namespace) -> int:
    """`har-daemon report`: write the page (and optionally its screenshot); print the paths."""
    out = args.out if args.out is not None else Path(args.eval_dir) / REPORT_FILE
    written = build_report(
        evaluation_dir=args.eval_dir,
        out_path=out,
        model_dir=args.model,
        cv_json=args.cv,
        title=args.title,
        frames=not args.no_frames,
    )
    print(f"report: {written}")
    if args.screenshot is not None:
        print(f"screenshot: {render_screenshot(written, args.screenshot)}")
    return 0
