"""`har-daemon report`: one self-contained HTML page that agrees with what evaluate wrote.

The evaluation folder is made the real way: a tiny ConvLSTM is cross-validated (2 folds x 2
epochs on 24 small synthetic clips) and one fold's model is evaluated with `evaluation.evaluate`;
the page is then checked for exact numbers, inline images, escaping, and rendered in headless
Chromium (skipped only where Chromium is not installed).
"""

from __future__ import annotations

import argparse
import base64
import csv
import json
import shutil
import subprocess
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest
from markupsafe import escape

from har_daemon.cli.options import add_report_options as add_arguments
from har_daemon.core.errors import DataError, HarError, ModelError
from har_daemon.reporting.page import build_report
from har_daemon.reporting.report import run
from har_daemon.reporting.screenshot import dump_dom, find_chromium, render_screenshot
from tests.shared_data import REPO

pytestmark = pytest.mark.slow

DEMO = REPO / "models" / "demo"
CLASSES = ("HorseRace", "Biking", "Swing")
NAME = 'tiny <b>&"net'  # must come out escaped everywhere
PROVENANCE = {"data": "synthetic <script>alert(1)</script> clips", "license": "MIT & co"}
PNG_URI = "data:image/png;base64,"

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (Debian package `chromium`)"
)


# --------------------------------------------------------------------------- fixtures


@dataclass(frozen=True)
class Built:
    data: Path
    eval_dir: Path
    model_dir: Path
    cv_json: Path
    html: Path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    from har_daemon.training.cv import cross_validate
    from har_daemon.training.evaluate import evaluate
    from har_daemon.training.synth import generate_dataset
    from har_daemon.training.train import TrainOptions

    root = tmp_path_factory.mktemp("report")
    data = root / "data"
    generate_dataset(
        data, classes=CLASSES, groups=4, clips_per_group=2, size_wh=(80, 60), seconds=1.0,
        seed=3, cue="color",
    )  # fmt: skip
    opts = TrainOptions(
        data_dir=data, out_dir=root / "cv", classes=CLASSES, epochs=2, seed=0,
        sequence_length=6, frame_size=32, export_tflite=False, verbose=0, workers=1,
        cache_dir=root / "cache", validation_fraction=0.5, name=NAME, provenance=PROVENANCE,
    )  # fmt: skip
    cross_validate(opts, folds=2)
    model_dir = root / "cv" / "fold_1"
    eval_dir = root / "eval"
    evaluate(model_dir, data, eval_dir, workers=1, cache_dir=root / "cache")
    html = build_report(
        evaluation_dir=eval_dir, out_path=root / "out" / "report.html", cv_json=root / "cv/cv.json"
    )
    return Built(data, eval_dir, model_dir, root / "cv" / "cv.json", html)


class _Elements(HTMLParser):
    """Every start tag with its attributes, and the page's visible text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Elements:
    p = _Elements()
    p.feed(page)
    p.close()
    return p


def _metric_values(el: _Elements) -> dict[str, float]:
    return {
        a["data-metric"]: float(a["data-value"])
        for _, a in el.tags
        if "data-metric" in a and "data-value" in a
    }


def _predictions(eval_dir: Path) -> list[dict[str, str]]:
    with (eval_dir / "predictions.csv").open() as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- content


def test_numbers_are_exactly_the_evaluation_json(built: Built) -> None:
    metrics = json.loads((built.eval_dir / "metrics.json").read_text())
    values = _metric_values(_parse(built.html.read_text()))
    assert values["accuracy"] == metrics["accuracy"]
    for avg in ("macro", "micro", "weighted"):
        for k in ("precision", "recall", "f1"):
            assert values[f"{avg}.{k}"] == metrics[avg][k], (avg, k)
    assert list(metrics["per_class"]) == list(CLASSES)
    for name, c in metrics["per_class"].items():
        for k in ("precision", "recall", "f1", "support", "tp", "fp", "fn", "tn"):
            assert values[f"{name}.{k}"] == c[k], (name, k)
    # The shown (rounded) accuracy is the same number too.
    assert f"{metrics['accuracy'] * 100:.1f}%" in built.html.read_text()


def test_page_is_self_contained(built: Built) -> None:
    page = built.html.read_text()
    el = _parse(page)
    tags = {t for t, _ in el.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed"}
    csp = [
        a for t, a in el.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp and "default-src 'none'" in csp[0]["content"]
    for tag, attrs in el.tags:
        for key in ("src", "href", "srcset", "action"):
            value = attrs.get(key, "")
            assert not value.lower().startswith(("http:", "https:", "//", "file:")), (tag, value)
    assert "http://" not in page and "https://" not in page
    images = [a["src"] for t, a in el.tags if t == "img"]
    # confusion matrix + loss + accuracy curves + one thumbnail per strip clip
    assert len(images) >= 3
    for src in images:
        assert src.startswith(PNG_URI)
        raw = base64.b64decode(src[len(PNG_URI) :], validate=True)
        img = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        assert img is not None and img.std() > 1


def test_model_card_cv_and_escaping(built: Built) -> None:
    page = built.html.read_text()
    el = _parse(page)
    text = " ".join(el.text)
    meta = json.loads((built.model_dir / "model.json").read_text())
    # Raw markup from model.json never reaches the page; its escaped text does.
    assert "<b>&" not in page and "<script>alert" not in page
    assert str(escape(meta["name"])) in page and meta["name"] in text
    assert PROVENANCE["data"] in text and PROVENANCE["license"] in text
    assert "convlstm" in text and ", ".join(CLASSES) in text
    assert f"{meta['frame_spacing_s']:.4g} s between sampled frames" in text
    assert "6 frames of 32x32x3 BGR" in text
    ids = {a.get("id") for _, a in el.tags}
    assert {"model-card", "metrics", "per-class-table", "confusion", "curves", "strip"} <= ids
    assert {"predictions", "cv-table", "cv-recall"} <= ids

    cv = json.loads(built.cv_json.read_text())
    cells = {a["data-metric"]: a for _, a in el.tags if "data-metric" in a}
    for key, entry in (("accuracy", "accuracy"), ("macro_f1", "macro_f1")):
        assert float(cells[f"mean.{key}"]["data-mean"]) == cv["summary"][entry]["mean"]
        assert float(cells[f"mean.{key}"]["data-std"]) == cv["summary"][entry]["std"]
    for fold in cv["folds"]:
        i, r = fold["fold"], fold["report"]
        assert float(cells[f"fold{i}.accuracy"]["data-value"]) == r["accuracy"]
        for c in CLASSES:
            got = float(cells[f"fold{i}.recall.{c}"]["data-value"])
            assert got == r["per_class"][c]["recall"]
    assert float(cells["pooled.accuracy"]["data-value"]) == cv["pooled"]["accuracy"]


def test_strip_and_per_clip_table_follow_predictions_csv(built: Built) -> None:
    rows = _predictions(built.eval_dir)
    el = _parse(built.html.read_text())
    shots = [a for t, a in el.tags if t == "div" and "shot" in a.get("class", "").split()]
    # Up to two clips per class, a mistake first where there is one (evaluate's own choice).
    expected = []
    for c in CLASSES:
        of_class = [r for r in rows if r["true"] == c]
        wrong = [r for r in of_class if r["predicted"] != c]
        expected += (wrong[:1] + [r for r in of_class if r["predicted"] == c])[:2]
    assert [(s["data-true"], s["data-predicted"]) for s in shots] == [
        (r["true"], r["predicted"]) for r in expected
    ]
    for s in shots:
        verdict = "correct" if s["data-true"] == s["data-predicted"] else "wrong"
        assert verdict in s["class"].split()
    table_rows = [a for t, a in el.tags if t == "tr" and a.get("class") in ("correct", "wrong")]
    n_wrong = sum(r["true"] != r["predicted"] for r in rows)
    # Mistakes table + the full list.
    assert sum(a["class"] == "wrong" for a in table_rows) == 2 * n_wrong
    assert sum(a["class"] == "correct" for a in table_rows) == len(rows) - n_wrong


def test_strip_falls_back_to_evaluates_png_when_clips_are_gone(
    built: Built, tmp_path: Path
) -> None:
    moved = tmp_path / "eval"
    shutil.copytree(built.eval_dir, moved)
    metrics = json.loads((moved / "metrics.json").read_text())
    metrics["data"] = str(tmp_path / "no-such-data")
    (moved / "metrics.json").write_text(json.dumps(metrics))
    page = build_report(
        evaluation_dir=moved, out_path=tmp_path / "r.html", model_dir=built.model_dir
    ).read_text()
    el = _parse(page)
    assert not [a for t, a in el.tags if "shot" in a.get("class", "").split()]
    png = (built.eval_dir / "predictions.png").read_bytes()
    assert PNG_URI + base64.b64encode(png).decode() in page


def test_no_frames_leaves_out_every_picture_of_the_clips(built: Built, tmp_path: Path) -> None:
    full = build_report(
        evaluation_dir=built.eval_dir, out_path=tmp_path / "a.html", model_dir=built.model_dir
    ).read_text()
    bare = build_report(
        evaluation_dir=built.eval_dir,
        out_path=tmp_path / "b.html",
        model_dir=built.model_dir,
        frames=False,
    ).read_text()
    png = base64.b64encode((built.eval_dir / "predictions.png").read_bytes()).decode()
    shots = [a for t, a in _parse(full).tags if "shot" in a.get("class", "").split()]
    assert shots, "the full page should show the strip"
    assert not [a for t, a in _parse(bare).tags if "shot" in a.get("class", "").split()]
    assert png not in bare and "Left out" in bare
    # Everything else is still there: the confusion matrix and the metrics.
    assert bare.count(PNG_URI) >= 1 and 'id="strip"' in bare


def test_a_model_directory_reports_its_held_out_figures(tmp_path: Path) -> None:
    page = build_report(evaluation_dir=DEMO, out_path=tmp_path / "demo.html").read_text()
    metrics = json.loads((DEMO / "test_metrics.json").read_text())
    values = _metric_values(_parse(page))
    assert values["accuracy"] == metrics["accuracy"]
    assert values["macro.f1"] == metrics["macro"]["f1"]
    assert "demo-synth-convlstm (held-out test)" in page
    for png in ("loss.png", "accuracy.png", "test_confusion_matrix.png"):
        assert PNG_URI + base64.b64encode((DEMO / png).read_bytes()).decode() in page
    assert "MIT (made by this project; no third-party data)" in page


def test_curves_and_confusion_are_drawn_when_only_json_was_kept(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for name in ("model.json", "history.json", "test_metrics.json"):
        shutil.copy(DEMO / name, model / name)
    page = build_report(evaluation_dir=model, out_path=tmp_path / "r.html").read_text()
    el = _parse(page)
    captions = " ".join(el.text)
    assert "loss.png, drawn from history.json" in captions
    assert "accuracy.png, drawn from history.json" in captions
    assert "drawn from test_metrics.json" in captions
    assert sum(t == "img" for t, _ in el.tags) == 3


def _hostile_evaluation(folder: Path, classes: tuple[str, str]) -> tuple[Path, Path]:
    """metrics.json, predictions.csv and cv.json as evaluate and cv write them, made by hand."""
    folder.mkdir()
    block = {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    per_class = {c: {**block, "support": 2, "tp": 1, "fp": 1, "fn": 1, "tn": 1} for c in classes}
    metrics = {
        "accuracy": 0.5, "n_samples": 4, "micro": block, "macro": block,
        "class_names": list(classes), "per_class": per_class,
        "confusion_matrix": [[1, 1], [1, 1]],
        "skipped": [{"clip": f"{classes[0]}.avi", "reason": classes[0]}],
    }  # fmt: skip
    (folder / "metrics.json").write_text(json.dumps(metrics))
    a, b = classes
    pairs = [(a, a), (a, b), (b, b), (b, a)]  # one right and one wrong per class
    rows = [(f"{t}/clip{i}.avi", t, p) for i, (t, p) in enumerate(pairs)]
    with (folder / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "true", "predicted", "confidence"])
        w.writerows([(*row, 0.75) for row in rows])
    report = {"n_samples": 4, "accuracy": 0.5, "macro": block}
    recall = {c: {"recall": 0.5} for c in classes}
    pm = {"mean": 0.5, "std": 0.0}
    cv = {
        "classes": list(classes), "k": 2, "n_clips": 4, "architecture": classes[1],
        "folds": [{"fold": i, "report": {**report, "per_class": recall}} for i in (1, 2)],
        "summary": {"accuracy": pm, "macro_f1": pm, "per_class_recall": dict.fromkeys(classes, pm)},
        "pooled": {**report, "per_class": recall},
    }  # fmt: skip
    (folder / "cv.json").write_text(json.dumps(cv))
    return folder, folder / "cv.json"


def test_markup_in_class_names_is_escaped_by_the_templates(tmp_path: Path) -> None:
    script = "<script>alert(1)</script>"
    classes = (script, 'b" onmouseover="x')
    folder, cv_json = _hostile_evaluation(tmp_path / "eval", classes)
    page = build_report(
        evaluation_dir=folder, out_path=tmp_path / "r.html", cv_json=cv_json, title=script
    ).read_text()
    el = _parse(page)
    assert "<script" not in page.lower()
    assert not [t for t, _ in el.tags if t == "script"]
    assert not [a for _, a in el.tags if "onmouseover" in a]  # the quote did not end a value
    assert str(escape(script)) in page
    text = " ".join(el.text)
    # Escaped, not dropped: the names read as they are, in the tables, strip and cv sections.
    assert text.count(script) >= 6 and classes[1] in text
    metrics = {a["data-metric"] for _, a in el.tags if "data-metric" in a}
    assert f"{script}.support" in metrics and f"fold1.recall.{script}" in metrics


# --------------------------------------------------------------------------- bad input


def _one_line(exc: pytest.ExceptionInfo[HarError]) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_missing_and_corrupt_inputs_are_one_line_errors(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    with pytest.raises(DataError) as e:
        build_report(evaluation_dir=tmp_path / "nope", out_path=out)
    assert "does not exist" in _one_line(e)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as e:
        build_report(evaluation_dir=tmp_path / "empty", out_path=out)
    assert "has no metrics.json" in _one_line(e)

    bad = tmp_path / "bad"
    shutil.copytree(built.eval_dir, bad)
    (bad / "metrics.json").write_text("{not json")
    with pytest.raises(DataError) as e:
        build_report(evaluation_dir=bad, out_path=out)
    assert "not valid JSON" in _one_line(e)
    good = json.loads((built.eval_dir / "metrics.json").read_text())
    (bad / "metrics.json").write_text(json.dumps({**good, "macro": {"f1": "high"}}))
    with pytest.raises(DataError) as e:
        build_report(evaluation_dir=bad, out_path=out)
    assert "'macro'" in _one_line(e)
    (bad / "metrics.json").write_text(json.dumps(good))
    (bad / "predictions.csv").write_text("clip,true,predicted,confidence\na.avi,Biking,Dog,0.5\n")
    with pytest.raises(DataError) as e:
        build_report(evaluation_dir=bad, out_path=out)
    assert "predictions.csv:2" in _one_line(e)

    with pytest.raises(ModelError) as e:
        build_report(evaluation_dir=built.eval_dir, out_path=out, model_dir=tmp_path / "nomodel")
    assert "does not exist" in _one_line(e)
    with pytest.raises(ModelError) as e:  # a model of other classes: not the evaluated one
        build_report(evaluation_dir=built.eval_dir, out_path=out, model_dir=DEMO)
    assert "not the evaluated" in _one_line(e)

    with pytest.raises(DataError) as e:
        build_report(evaluation_dir=built.eval_dir, out_path=out, cv_json=tmp_path / "cv.json")
    assert "does not exist" in _one_line(e)
    (tmp_path / "cv.json").write_text(json.dumps({"classes": ["a"], "folds": [{}]}))
    with pytest.raises(DataError) as e:
        build_report(evaluation_dir=built.eval_dir, out_path=out, cv_json=tmp_path / "cv.json")
    assert "not a cv.json" in _one_line(e)

    with pytest.raises(HarError) as e:
        build_report(evaluation_dir=built.eval_dir, out_path=tmp_path)
    assert "is a folder" in _one_line(e)
    assert not out.exists()


def test_cli_hooks(built: Built, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="har-daemon report")
    add_arguments(parser)
    eval_copy = tmp_path / "eval"
    shutil.copytree(built.eval_dir, eval_copy)
    args = parser.parse_args([str(eval_copy), "--cv", str(built.cv_json), "--title", "T <1>"])
    assert run(args) == 0
    assert capsys.readouterr().out.strip() == f"report: {eval_copy / 'report.html'}"
    page = (eval_copy / "report.html").read_text()
    assert "<title>T &lt;1&gt;</title>" in page and 'id="cv-table"' in page
    args = parser.parse_args([str(eval_copy), "--out", str(tmp_path / "x.html")])
    assert args.model is None and args.cv is None and args.screenshot is None
    assert run(args) == 0 and (tmp_path / "x.html").is_file()


# --------------------------------------------------------------------------- headless Chromium


@needs_chromium
def test_renders_in_headless_chromium(built: Built, tmp_path: Path) -> None:
    png = render_screenshot(built.html, tmp_path / "shot.png", width=1280, height=2400)
    img = cv2.imread(str(png), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (2400, 1280)
    assert img.std() > 20  # not a blank page
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    assert (grey[:80] < 100).mean() > 0.8  # the dark title bar is drawn at the top
    content = grey[120:2400, 60:1220]
    assert (content < 200).mean() > 0.02  # text, tables and figures below it
    # Images were decoded: the confusion matrix's dark blue cells are on screen.
    blue = (img[..., 0] > 90) & (img[..., 2] < 60) & (img[..., 1] < 90)
    assert blue.sum() > 2000


@needs_chromium
def test_chromium_dom_has_the_metrics_table(built: Built) -> None:
    metrics = json.loads((built.eval_dir / "metrics.json").read_text())
    dom = dump_dom(built.html)
    el = _parse(dom)
    ids = {a.get("id") for _, a in el.tags}
    assert {"metrics", "per-class-table", "cv-table"} <= ids
    assert _metric_values(el)["accuracy"] == metrics["accuracy"]
    assert sum(t == "img" for t, _ in el.tags) == sum(
        t == "img" for t, _ in _parse(built.html.read_text()).tags
    )


@needs_chromium
def test_render_script(built: Built, tmp_path: Path) -> None:
    out = tmp_path / "script.png"
    res = subprocess.run(
        [str(REPO / "scripts" / "render-report.sh"), str(built.html), str(out), "1280", "900"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode == 0, res.stderr
    img = cv2.imread(str(out))
    assert img is not None and img.shape[:2] == (900, 1280) and img.std() > 20


def test_stream_report_shows_event_level_figures_and_the_timeline(tmp_path: Path) -> None:
    from har_daemon.reporting.plots import plot_stream_timeline

    folder = tmp_path / "stream"
    folder.mkdir()
    figures = {
        "intervals": 2, "detected": 1, "events": 3, "matched_events": 1, "false_alerts": 2,
        "duplicate_alerts": 0, "recall": 0.5, "precision": 0.3333, "false_alerts_per_hour": 48.0,
        "quiet_s": 140.0, "quiet_alert_s": 4.0, "quiet_alert_fraction": 0.0286,
        "tta_p50_s": 1.5, "tta_p95_s": 1.5, "tta_max_s": 1.5,
    }  # fmt: skip
    doc = {
        "video": "<script>alert(1)</script>.mp4",
        "model": "fight-person",
        "settings": {"stride": 5, "enter_threshold": 0.6},
        "figures": {"duration_s": 150.0, "overall": figures, "per_activity": {}},
        "cuts": 4,
        "events": [],
    }
    (folder / "stream.json").write_text(json.dumps(doc))
    plot_stream_timeline(
        folder / "timeline.png", duration_s=150.0, truth=[(10, 20, "fight")],
        alerts=[(11.5, 19, "fight")], times_s=[5, 10, 15], smoothed={"fight": [0.1, 0.7, 0.9]},
        enter_threshold=0.6, exit_threshold=0.4,
    )  # fmt: skip
    out = tmp_path / "page.html"
    assert run(argparse.Namespace(eval_dir=folder, out=out, model=None, cv=None, title=None,
                                  no_frames=False, screenshot=None, stream=[])) == 0  # fmt: skip
    page = out.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "false alerts per hour" in page and ">48<" in page
    assert "1 / 2" in page and "1.50 s" in page
    assert page.count("data:image/png;base64,") == 1
