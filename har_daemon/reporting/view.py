"""What the report's templates show, shaped from the checked inputs; no I/O and no markup.

Numbers are kept exact next to their rounded text (`Num`, `PlusMinus`), so the page carries
both: people read the rounded figure, machines the ``data-value``. Escaping is the template
engine's job: nothing here produces HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from har_daemon.core.errors import DataError
from har_daemon.model.meta import ModelMeta
from har_daemon.reporting.inputs import Evaluation

__all__ = [
    "MAX_LISTED_CLIPS",
    "ConfusionCell",
    "CvView",
    "ModelCard",
    "Num",
    "PlusMinus",
    "Predictions",
    "confusion_rows",
    "cv_view",
    "model_card",
    "page_titles",
    "plain",
    "predictions_view",
]

MAX_LISTED_CLIPS = 2000  # the full list stays in predictions.csv
_DARK_CELL = 0.55  # confusion cells filled beyond this fraction get white text

Row = tuple[str, object]


@dataclass(frozen=True)
class Num:
    """A number shown rounded, with the exact value kept for ``data-value``."""

    value: float | int
    key: str | None = None
    digits: int = 3

    @property
    def shown(self) -> str:
        return f"{self.value:.{self.digits}f}" if isinstance(self.value, float) else str(self.value)


@dataclass(frozen=True)
class PlusMinus:
    """mean ± sample std over folds, both exact values kept for ``data-mean``/``data-std``."""

    mean: float
    std: float
    key: str | None = None

    @classmethod
    def of(cls, entry: Mapping[str, Any], key: str | None = None) -> PlusMinus:
        return cls(float(entry["mean"]), float(entry["std"]), key)

    @property
    def shown(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f}"


def plain(value: object) -> str:
    """A JSON value as one readable line (dicts and lists from model.json)."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {plain(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def page_titles(ev: Evaluation, meta: ModelMeta | None, title: str | None) -> tuple[str, str]:
    """The page's title (given, or model and data names) and the line under it."""
    m = ev.metrics
    data = m.get("data")
    if title is None:
        name = meta.name if meta is not None else "Model"
        where = f" on {Path(data).name}" if isinstance(data, str) else ""
        title = f"{name}{where}" + (" (held-out test)" if ev.held_out else "")
    subtitle = f"{int(m['n_samples'])} clips scored"
    if isinstance(data, str):
        subtitle += f" from {data}"
    if ev.held_out:
        subtitle += ", held-out test clips only"
    subtitle += f" · metrics: {ev.metrics_path}"
    return title, subtitle


# --------------------------------------------------------------------------- model card

_TRAINING_DETAILS = (
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
)


@dataclass(frozen=True)
class ModelCard:
    """What the model is and takes, how it was trained, and where its data came from."""

    rows: list[Row]
    details: list[Row]
    provenance: list[Row]


def _pm_text(entry: Any) -> str:
    return PlusMinus.of(entry).shown if isinstance(entry, dict) else "?"


def _cross_validation_row(cv: Mapping[str, Any]) -> str:
    recall = cv.get("per_class_recall") or {}
    return (
        f"{cv.get('folds', '?')} folds grouped by {cv.get('grouped_by', 'group')}, "
        f"{cv.get('n_clips', '?')} clips: accuracy {_pm_text(cv['accuracy'])}, macro F1 "
        f"{_pm_text(cv.get('macro_f1'))}, recall "
        + ", ".join(f"{c} {_pm_text(e)}" for c, e in recall.items())
    )


def model_card(meta: ModelMeta, model_dir: Path) -> ModelCard:
    """The model card's rows from model.json."""
    t = meta.training
    spacing = meta.frame_spacing_s
    rows: list[Row] = [
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
        rows.append(("Training clips", plain(t["clips"])))
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
        rows.append(("Held-out figures at training", plain(held_out)))
    cv = meta.evaluation.get("cross_validation")
    if isinstance(cv, dict) and isinstance(cv.get("accuracy"), dict):
        rows.append(("Cross-validation", _cross_validation_row(cv)))
    rows += [("Created", meta.created_at), ("Directory", str(model_dir))]
    details: list[Row] = [(label, plain(t[key])) for key, label in _TRAINING_DETAILS if key in t]
    if meta.tflite_file:
        details.append(("LiteRT export", meta.tflite_file))
    provenance: list[Row] = [
        (k.replace("_", " ").capitalize(), plain(v)) for k, v in meta.provenance.items()
    ]
    return ModelCard(rows, details, provenance)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class ConfusionCell:
    """One count of the confusion table, shaded by its share of the true class's clips."""

    count: int
    fraction: float

    @property
    def dark(self) -> bool:
        return self.fraction > _DARK_CELL


def confusion_rows(m: Mapping[str, Any]) -> list[tuple[str, list[ConfusionCell]]]:
    """The confusion matrix by true class, each count with its fraction of the row."""
    rows = []
    for name, row in zip(m["class_names"], m["confusion_matrix"], strict=True):
        total = sum(row)
        rows.append((name, [ConfusionCell(int(v), v / total if total else 0.0) for v in row]))
    return rows


@dataclass(frozen=True)
class Predictions:
    """The per-clip tables: mistakes (most confident first) and the clip list, both capped."""

    total: int
    listed: list[dict[str, Any]]
    mistakes: list[dict[str, Any]]
    n_mistakes: int
    skipped: list[tuple[object, object]]
    n_skipped: int


def predictions_view(ev: Evaluation) -> Predictions | None:
    """None when the evaluation has no predictions.csv (a model directory's held-out figures)."""
    if ev.predictions is None:
        return None
    rows = ev.predictions
    wrong = sorted(
        (r for r in rows if r["true"] != r["predicted"]),
        key=lambda r: -r["confidence"],  # confident mistakes are the ones to look at
    )
    skipped = ev.metrics.get("skipped")
    skipped = skipped if isinstance(skipped, list) else []
    return Predictions(
        total=len(rows),
        listed=rows[:MAX_LISTED_CLIPS],
        mistakes=wrong[:MAX_LISTED_CLIPS],
        n_mistakes=len(wrong),
        skipped=[
            (s.get("clip", "?"), s.get("reason", "?")) for s in skipped if isinstance(s, dict)
        ],
        n_skipped=len(skipped),
    )


# --------------------------------------------------------------------------- cross-validation


@dataclass(frozen=True)
class CvFold:
    fold: int
    n_test: int
    train_val: str
    epochs: str
    accuracy: Num
    macro_f1: Num


@dataclass(frozen=True)
class CvView:
    """The per-fold table, recall per class and fold, and the alert-threshold figures."""

    info: list[Row]
    folds: list[CvFold]
    n_clips: int
    mean_accuracy: PlusMinus
    mean_macro_f1: PlusMinus
    pooled_n: int
    pooled_accuracy: Num
    pooled_macro_f1: Num
    recall: list[tuple[str, list[Num], PlusMinus, Num]]
    alert: list[Row]


def cv_view(cv: Mapping[str, Any], path: Path) -> CvView:
    """`cv`'s printed table as data: per fold, mean ± sample std, and pooled."""
    try:
        return _cv_view(cv)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise DataError(
            f"{path}: not a cv.json from `har-daemon cv` ({type(exc).__name__}: {exc})"
        ) from None


def _cv_fold(fold: int, d: Mapping[str, Any]) -> CvFold:
    r = d["report"]
    clips = d.get("clips") or {}
    return CvFold(
        fold=fold,
        n_test=int(r["n_samples"]),
        train_val=f"{clips.get('train', '?')} / {clips.get('validation', '?')}",
        epochs=f"{d.get('epochs_run', '?')} ({d.get('best_epoch', '?')})",
        accuracy=Num(float(r["accuracy"]), f"fold{fold}.accuracy"),
        macro_f1=Num(float(r["macro"]["f1"]), f"fold{fold}.macro_f1"),
    )


def _alert_rows(alert: Any) -> list[Row]:
    if not isinstance(alert, dict):
        return []
    a = str(alert["class"])
    t = alert["summary"]
    return [
        ("Alert class", a),
        ("Threshold (mean ± sd)", PlusMinus.of(alert["threshold"]).shown),
        ("Accuracy at threshold", PlusMinus.of(t["accuracy"]).shown),
        (f"Recall of {a} at threshold", PlusMinus.of(t["per_class_recall"][a]).shown),
        (f"Precision of {a} at threshold", PlusMinus.of(alert["alert_precision"]).shown),
    ]


def _cv_view(cv: Mapping[str, Any]) -> CvView:
    classes = [str(c) for c in cv["classes"]]
    folds = [(int(d["fold"]), d) for d in cv["folds"]]
    s = cv["summary"]
    p = cv["pooled"]
    recall = [
        (
            c,
            [
                Num(float(d["report"]["per_class"][c]["recall"]), f"fold{fold}.recall.{c}")
                for fold, d in folds
            ],
            PlusMinus.of(s["per_class_recall"][c], f"mean.recall.{c}"),
            Num(float(p["per_class"][c]["recall"]), f"pooled.recall.{c}"),
        )
        for c in classes
    ]
    opts = cv.get("options") or {}
    info: list[Row] = [
        ("Folds", f"{int(cv['k'])} ({cv.get('grouping', 'grouped')})"),
        ("Architecture", cv.get("architecture", "")),
        ("Data", cv.get("data_dir", "")),
        ("Options", plain(opts) if isinstance(opts, dict) else ""),
        ("Time (s)", cv.get("seconds", "")),
    ]
    return CvView(
        info=info,
        folds=[_cv_fold(fold, d) for fold, d in folds],
        n_clips=int(cv["n_clips"]),
        mean_accuracy=PlusMinus.of(s["accuracy"], "mean.accuracy"),
        mean_macro_f1=PlusMinus.of(s["macro_f1"], "mean.macro_f1"),
        pooled_n=int(p["n_samples"]),
        pooled_accuracy=Num(float(p["accuracy"]), "pooled.accuracy"),
        pooled_macro_f1=Num(float(p["macro"]["f1"]), "pooled.macro_f1"),
        recall=recall,
        alert=_alert_rows(cv.get("at_alert_threshold")),
    )


@dataclass(frozen=True)
class StreamView:
    name: str
    false_per_hour: str
    recall: str
    tta_p95: str
    rows: list[Row]
    timeline: str | None


def _seconds(value: Any) -> str:
    return "–" if value is None else f"{float(value):.2f} s"


def stream_view(doc: Mapping[str, Any], timeline_uri: str | None) -> StreamView:
    """evaluate-stream's figures as the page shows them."""
    f = doc["figures"]["overall"]
    settings = doc.get("settings", {})
    recall = "–" if f.get("recall") is None else f"{f['detected']} / {f['intervals']}"
    rows: list[Row] = [
        ("recording", str(doc.get("video", ""))),
        ("model", str(doc.get("model", ""))),
        ("duration", _seconds(doc["figures"].get("duration_s"))),
        ("incidents (detected)", f"{f['intervals']} ({f['detected']})"),
        (
            "alerts (false, duplicate)",
            f"{f['events']} ({f['false_alerts']}, {f['duplicate_alerts']})",
        ),
        ("event precision", plain(f.get("precision"))),
        ("false alerts per hour", plain(f.get("false_alerts_per_hour"))),
        (
            "time to alert p50 / p95 / max",
            " / ".join(_seconds(f.get(k)) for k in ("tta_p50_s", "tta_p95_s", "tta_max_s")),
        ),
        ("quiet time in alert", plain(f.get("quiet_alert_fraction"))),
        ("scene cuts", plain(doc.get("cuts", ""))),
        ("policy", ", ".join(f"{k} {v}" for k, v in settings.items())),
    ]
    return StreamView(
        name=Path(str(doc.get("video", "recording"))).name,
        false_per_hour=plain(f.get("false_alerts_per_hour")),
        recall=recall,
        tta_p95=_seconds(f.get("tta_p95_s")),
        rows=rows,
        timeline=timeline_uri,
    )
