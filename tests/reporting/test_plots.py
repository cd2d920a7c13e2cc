"""har_daemon.reporting.plots: valid PNGs of sensible size, correct colours, nothing left open."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pytest

from har_daemon.reporting import plots
from har_daemon.reporting.plots import (
    PredictionItem,
    plot_confusion_matrix,
    plot_history,
    plot_prediction_strip,
)
from tests.shared_data import REPO

NAMES = ["walking", "running", "fighting"]
CM = np.array([[50, 3, 2], [4, 40, 6], [0, 0, 0]])  # last row: class absent from y_true


def _read_png(path: Path, min_hw: int = 150, max_hw: int = 4000) -> np.ndarray:
    assert path.is_file()
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"cv2 cannot decode {path}"
    h, w = img.shape[:2]
    assert min_hw <= h <= max_hw and min_hw <= w <= max_hw, (h, w)
    assert img.std() > 5  # not a blank canvas
    return img


@pytest.fixture(autouse=True)
def _no_figures_left() -> None:
    before = plt.get_fignums()
    yield
    assert plt.get_fignums() == before == []


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix_png(tmp_path: Path, normalize: bool) -> None:
    out = plot_confusion_matrix(
        CM, NAMES, tmp_path / "sub" / "cm.png", title="test", normalize=normalize
    )
    assert out == tmp_path / "sub" / "cm.png"
    _read_png(out, min_hw=300)


def test_confusion_matrix_many_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 30, (12, 12)) + np.eye(12, dtype=int) * 200
    names = [f"a_rather_long_class_name_{i}" for i in range(12)]
    _read_png(plot_confusion_matrix(cm, names, tmp_path / "cm12.png"), min_hw=600)


def test_confusion_matrix_rejects_mismatch(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="class names"):
        plot_confusion_matrix(CM, ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="square"):
        plot_confusion_matrix(np.zeros((2, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-negative"):
        plot_confusion_matrix(np.array([[1, -1], [0, 1]]), ["a", "b"], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


HISTORY = {
    "loss": [1.2, 0.9, 0.7, 0.6, 0.55],
    "val_loss": [1.3, 1.0, 0.8, 0.75, 0.78],
    "accuracy": [0.4, 0.6, 0.7, 0.75, 0.8],
    "val_accuracy": [0.35, 0.55, 0.68, 0.7, 0.69],
}


def test_history_writes_loss_and_accuracy(tmp_path: Path) -> None:
    paths = plot_history(HISTORY, tmp_path / "h")
    assert paths == [tmp_path / "h" / "loss.png", tmp_path / "h" / "accuracy.png"]
    for p in paths:
        _read_png(p, min_hw=300)


def test_history_without_validation_keys(tmp_path: Path) -> None:
    paths = plot_history({"loss": [1.0, 0.5], "acc": [0.5, 0.7]}, tmp_path)
    assert [p.name for p in paths] == ["loss.png", "accuracy.png"]
    for p in paths:
        _read_png(p)


def test_history_single_epoch_and_missing_metric(tmp_path: Path) -> None:
    paths = plot_history({"loss": [0.7], "val_loss": [0.8]}, tmp_path)
    assert [p.name for p in paths] == ["loss.png"]
    assert not (tmp_path / "accuracy.png").exists()
    _read_png(paths[0])
    assert plot_history({}, tmp_path / "empty") == []


def _bgr_frame(bgr: tuple[int, int, int], hw: tuple[int, int] = (64, 64)) -> np.ndarray:
    return np.full((*hw, 3), bgr, dtype=np.uint8)


def _count_near(img: np.ndarray, bgr: tuple[int, int, int], tol: int = 40) -> int:
    return int(np.all(np.abs(img.astype(int) - np.array(bgr)) <= tol, axis=-1).sum())


def test_prediction_strip_shows_frames_in_rgb(tmp_path: Path) -> None:
    # A pure-blue BGR frame must appear blue (not red) in the picture.
    blue_bgr = (255, 0, 0)
    out = plot_prediction_strip(
        [PredictionItem(_bgr_frame(blue_bgr), None, "walking", 0.9)], tmp_path / "p.png"
    )
    img = _read_png(out)
    assert _count_near(img, (255, 0, 0)) > 1000
    assert _count_near(img, (0, 0, 255)) == 0


def test_prediction_strip_colours_correct_green_wrong_red(tmp_path: Path) -> None:
    grey = _bgr_frame((128, 128, 128))
    green_bgr = (0x41, 0x96, 0x1A)  # plots._GREEN "#1a9641"
    red_bgr = (0x1C, 0x19, 0xD7)  # plots._RED "#d7191c"
    right = _read_png(plot_prediction_strip([(grey, "run", "run", 0.8)], tmp_path / "r.png"))
    wrong = _read_png(plot_prediction_strip([(grey, "run", "walk", 0.8)], tmp_path / "w.png"))
    assert _count_near(right, green_bgr, 10) > 200
    assert _count_near(right, red_bgr, 10) == 0
    assert _count_near(wrong, red_bgr, 10) > 200
    assert _count_near(wrong, green_bgr, 10) == 0


def test_prediction_strip_accepts_mappings_and_caps_items(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    items = [
        {
            "frame": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8),
            "true": "fight" if i % 2 else "walk",
            "predicted": "fight",
            "confidence": 0.5 + i / 40,
        }
        for i in range(12)
    ]
    a = _read_png(plot_prediction_strip(items, tmp_path / "a.png", max_items=8))
    b = _read_png(plot_prediction_strip(items[:8], tmp_path / "b.png", max_items=8))
    assert a.shape == b.shape  # the 4 extra items were not drawn
    c = _read_png(plot_prediction_strip(items, tmp_path / "c.png", max_items=12))
    assert c.shape[0] > a.shape[0]  # a third row


def test_prediction_strip_grey_and_float_frames(tmp_path: Path) -> None:
    items = [
        (np.full((32, 32), 200, np.uint8), "a", "a", 1.0),
        (np.full((32, 32, 3), 0.5, np.float32), "a", "b", 0.25),
    ]
    _read_png(plot_prediction_strip(items, tmp_path / "g.png"))


def test_prediction_strip_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        plot_prediction_strip([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="HxWx3"):
        plot_prediction_strip([(np.zeros((4, 4, 4), np.uint8), "a", "a", 1.0)], tmp_path / "x")
    with pytest.raises(ValueError):
        plot_prediction_strip([object()], tmp_path / "x.png")


def test_no_figure_leak_in_loops(tmp_path: Path) -> None:
    frame = _bgr_frame((10, 200, 30))
    for i in range(8):
        plot_confusion_matrix(CM, NAMES, tmp_path / f"cm{i}.png")
        plot_history(HISTORY, tmp_path / f"h{i}")
        plot_prediction_strip([(frame, "a", "b", 0.5)] * 3, tmp_path / f"s{i}.png")
        assert plt.get_fignums() == []


def test_import_does_not_touch_pyplot_or_backend(tmp_path: Path) -> None:
    code = (
        "import sys, matplotlib\n"
        "backend_before = matplotlib.rcParams._get('backend')\n"
        "from har_daemon.reporting import plots\n"
        "import numpy as np\n"
        f"plots.plot_confusion_matrix(np.eye(2, dtype=int), ['a', 'b'], r'{tmp_path}/c.png')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
        "assert matplotlib.rcParams._get('backend') == backend_before, 'backend changed'\n"
        "print('ok')\n"
    )
    root = REPO
    res = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**{k: v for k, v in os.environ.items() if k != "MPLBACKEND"}, "PYTHONPATH": str(root)},
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"
    assert (tmp_path / "c.png").is_file()


def test_module_constants_match_test_colours() -> None:
    assert plots._GREEN == "#1a9641"
    assert plots._RED == "#d7191c"
