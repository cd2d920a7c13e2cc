"""scripts/by_source.py: per source group, clips per label, accuracy and both recalls."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.shared_data import load_script

ROWS = [  # clip, true, predicted, fight probability
    ("fight/fi001.mp4", "fight", "fight", "0.9"),
    ("fight/fi002.mp4", "fight", "noFight", "0.4"),
    ("noFight/nofi001.mp4", "noFight", "fight", "0.6"),
    ("noFight/home-01.mp4", "noFight", "noFight", "0.1"),
    ("noFight/home-02.mp4", "noFight", "noFight", "0.2"),
]
SOURCES = {
    "fi001": "yt00",
    "fi002": "yt00",
    "nofi001": "yt00",
    "home-01": "home",
    "home-02": "home",
}


def _rows() -> list[dict[str, str]]:
    return [{"clip": c, "true": t, "predicted": p, "fight": f} for c, t, p, f in ROWS]


def test_per_source_counts_labels_accuracy_and_both_recalls() -> None:
    by_source = load_script("by_source")
    home, yt00, pooled = by_source.per_source(_rows(), SOURCES)
    assert (home.source, home.alert_clips, home.quiet_clips) == ("home", 0, 2)
    assert (home.accuracy, home.fight_recall, home.quiet_recall) == (1.0, None, 1.0)
    assert home.one_label and not yt00.one_label
    assert (yt00.alert_clips, yt00.quiet_clips) == (2, 1)
    assert yt00.accuracy == pytest.approx(1 / 3)
    assert (yt00.fight_recall, yt00.quiet_recall) == (0.5, 0.0)
    assert (pooled.source, pooled.accuracy) == ("all", 0.6)
    assert (pooled.fight_recall, pooled.quiet_recall) == (0.5, pytest.approx(2 / 3))


def test_a_threshold_calls_the_alert_class_by_its_probability() -> None:
    yt00 = load_script("by_source").per_source(_rows(), SOURCES, threshold=0.35)[1]
    assert (yt00.fight_recall, yt00.quiet_recall) == (1.0, 0.0)


def test_model_filter_keeps_only_the_split_it_held_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    by_source = load_script("by_source")
    report, data, model = tmp_path / "report", tmp_path / "data", tmp_path / "model"
    for d in (report, data, model):
        d.mkdir()
    with (report / "predictions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip", "true", "predicted", "confidence", "fight", "noFight"])
        w.writerows([c, t, p, "1", fp, "0"] for c, t, p, fp in ROWS)
    with (data / "sources.csv").open("w", newline="") as f:
        csv.writer(f).writerows(
            [["clip", "label", "source"], *([k, "x", v] for k, v in SOURCES.items())]
        )
    training = {"test_clips": ["fight/fi001.mp4"], "validation_clips": ["noFight/home-01.mp4"]}
    (model / "model.json").write_text(json.dumps({"training": training}))
    argv = [str(report), "--data", str(data), "--model", str(model), "--json"]
    assert by_source.main([*argv, "--split", "test"]) == 0
    row, pooled = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (row["source"], row["alert_clips"], row["quiet_clips"]) == ("yt00", 1, 0)
    assert pooled["source"] == "all"
    assert by_source.main(argv) == 0  # held-out: both splits
    assert [r["source"] for r in json.loads(capsys.readouterr().out.splitlines()[-1])] == [
        "home",
        "yt00",
        "all",
    ]
