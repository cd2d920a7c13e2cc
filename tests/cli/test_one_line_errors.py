"""Offline commands and check-config refuse what `run` would, in exactly one stderr line.

LiteRT prints `INFO: Created TensorFlow Lite XNNPACK delegate` on fd 2 as an interpreter
loads; before an error line that made two lines where the CLI promises one (issue 21).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.infra.media import make_test_video
from tests.shared_data import REPO

DEMO = REPO / "models" / "demo"
FIGHT = REPO / "models" / "fight"
CLIP = DEMO / "sample.mp4"
DETECTOR = REPO / "models" / "person" / "person_detector.tflite"


def _run(args: list[str], tmp: Path, pythonpath: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    env.update(
        TF_CPP_MIN_LOG_LEVEL="3", XDG_STATE_HOME=str(tmp / "state"), PYTHONPATH=str(pythonpath)
    )
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp,
        env=env,
    )


def _one_error_line(result: subprocess.CompletedProcess[str], *fragments: str) -> str:
    """Exit 2 and a stderr of exactly one line, the error, naming every fragment."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("har-daemon: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def _short_clip(tmp: Path) -> Path:
    """The first 2 s of the bundled clip (stream copy: no re-encoding)."""
    out = tmp / "short.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(CLIP), "-t", "2", "-c", "copy", str(out)],
        check=True,
        timeout=60,
    )
    return out


def test_evaluate_stream_refuses_truth_past_the_end_of_the_video(tmp_path: Path) -> None:
    video = _short_clip(tmp_path)
    truth = tmp_path / "TRUTH.csv"
    truth.write_text("start_s,end_s,activity\n0.5,1.5,Swing\n1000,2000,Swing\n")
    result = _run(
        ["evaluate-stream", str(video), "--truth", str(truth), "--model", str(DEMO)], tmp_path
    )
    _one_error_line(result, str(truth), "row 2", "1000,2000,Swing", "2.00 s long")
    # Rows inside the video are evaluated as before.
    truth.write_text("start_s,end_s,activity\n0.5,1.5,Swing\n")
    ok = _run(
        ["evaluate-stream", str(video), "--truth", str(truth), "--model", str(DEMO), "--json"],
        tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    doc = json.loads(ok.stdout)
    figures = doc["figures"]
    assert doc["environment"]["numpy"] == np.__version__
    assert figures["overall"]["intervals"] == 1 and figures["duration_s"] < 3, figures


def test_predict_error_after_loading_the_model_is_one_line(tmp_path: Path) -> None:
    result = _run(["predict", str(tmp_path / "gone.mp4"), "--model", str(DEMO)], tmp_path)
    _one_error_line(result, "gone.mp4", "does not exist")


def test_evaluate_stream_error_after_loading_the_model_is_one_line(tmp_path: Path) -> None:
    truth = tmp_path / "TRUTH.csv"
    truth.write_text("start_s,end_s,activity\n0.5,1.5,Swing\n")
    result = _run(
        [
            "evaluate-stream",
            str(tmp_path / "gone.mp4"),
            "--truth",
            str(truth),
            "--model",
            str(DEMO),
        ],
        tmp_path,
    )
    _one_error_line(result, "gone.mp4")


def test_predict_model_mismatch_is_one_line(tmp_path: Path) -> None:
    model = tmp_path / "model"
    shutil.copytree(DEMO, model)
    meta = json.loads((model / "model.json").read_text())
    meta["classes"] = ["a", "b", "c"]
    (model / "model.json").write_text(json.dumps(meta))
    result = _run(["predict", str(CLIP), "--model", str(model), "--backend", "litert"], tmp_path)
    _one_error_line(result, "does not match", "har-daemon export")


def _package_with_detector(tmp: Path, detector: bytes | None) -> Path:
    """A copy of the package whose bundled person detector is `detector` (None: missing); the
    models themselves are the checkout's. Returns the PYTHONPATH that imports the copy."""
    root = tmp / "install"
    shutil.copytree(
        REPO / "har_daemon", root / "har_daemon", symlinks=True,
        ignore=shutil.ignore_patterns("__pycache__"),
    )  # fmt: skip
    (root / "models").mkdir()
    for name in ("demo", "fight"):
        (root / "models" / name).symlink_to(REPO / "models" / name)
    (root / "models" / "person").mkdir()
    if detector is not None:
        (root / "models" / "person" / DETECTOR.name).write_bytes(detector)
    return root


@pytest.mark.parametrize(
    ("case", "detector", "fragment"),
    [
        ("missing", None, "does not exist"),
        ("truncated", DETECTOR.read_bytes()[:200_000], "cannot load person detector"),
        ("random bytes", os.urandom(300_000), "cannot load person detector"),
    ],
)
def test_check_config_refuses_a_bad_person_detector(
    tmp_path: Path, case: str, detector: bytes | None, fragment: str
) -> None:
    root = _package_with_detector(tmp_path, detector)
    config = tmp_path / "har.toml"
    config.write_text(
        f'[model]\npath = "{FIGHT}"\n[mqtt]\nenabled = false\n'
        f'[[cameras]]\nname = "lobby"\nsource = "{CLIP}"\n'
    )
    result = _run(["check-config", "--config", str(config)], tmp_path, pythonpath=root)
    _one_error_line(result, "person detector", fragment)
    # The same copy with the real detector passes: the refusal is the detector's.
    (root / "models" / "person" / DETECTOR.name).write_bytes(DETECTOR.read_bytes())
    ok = _run(["check-config", "--config", str(config)], tmp_path, pythonpath=root)
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout


def test_predict_refuses_frames_too_small_for_the_model(tmp_path: Path) -> None:
    tiny = make_test_video(tmp_path / "tiny.mkv", 2, 10, (2, 1), "ffv1", "testsrc")
    result = _run(["predict", str(tiny), "--model", str(DEMO)], tmp_path)
    _one_error_line(result, str(tiny), "frames of 2x1 px are too small")


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["calibrate", "--camera", "nope"], ["camera 'nope' is not in the config", "lobby"]),
        (["quiet-eval", "--data", "no-such-folder"], ["no-such-folder", "sources.csv"]),
        (
            ["paste-eval", "--data", "no-such-folder", "--quiet", "no-such-folder"],
            ["no-such-folder", "held-out clips"],
        ),
    ],
    ids=["calibrate", "quiet-eval", "paste-eval"],
)
def test_quiet_footage_command_errors_after_loading_the_model_are_one_line(
    tmp_path: Path, args: list[str], fragments: list[str]
) -> None:
    # These commands load the model (LiteRT's delegate line) before they read their inputs.
    config = tmp_path / "har.toml"
    config.write_text(
        f'[model]\npath = "{DEMO}"\n[mqtt]\nenabled = false\n'
        f'[[cameras]]\nname = "lobby"\nsource = "{CLIP}"\n'
    )
    result = _run([*args, "--config", str(config)], tmp_path)
    _one_error_line(result, *fragments)
