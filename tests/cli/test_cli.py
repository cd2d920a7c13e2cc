"""The `har-daemon` command as a user runs it: real subprocesses, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from har_daemon.cli.parser import build_parser
from tests.shared_data import REPO, TUTORIAL_CLASSES, TUTORIAL_H5, require


def har(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "HAR_LOG_LEVEL": "warning"}
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
    )


def _error_lines(stderr: str) -> list[str]:
    """Our own error lines; native libraries may print start-up noise of their own."""
    return [line for line in stderr.splitlines() if line.startswith("har-daemon: error:")]


def assert_user_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_help_lists_every_command() -> None:
    result = har("--help")
    assert result.returncode == 0
    for command in (
        "train", "evaluate", "predict", "import-model", "export", "synth-data", "run",
        "check-config",
    ):  # fmt: skip
        assert command in result.stdout


def test_bad_arguments_are_usage_errors_without_traceback() -> None:
    result = har("train", "--data", "x", "--out", "y", "--epochs", "zero")
    assert_user_error(result, "--epochs", "not a whole number", "har-daemon train --help")
    assert_user_error(har("bench", "--runs", "0"), "--runs", "must be at least 1")
    assert_user_error(har("bnch"), "invalid choice: 'bnch'", "har-daemon --help")


def test_a_usage_mistake_is_one_line_found_while_parsing(capsys: pytest.CaptureFixture) -> None:
    """The parser refuses it before any command module (TensorFlow, LiteRT) is imported; the
    usage itself stays in --help, not above the line that names the mistake."""
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args(["bench", "--streams-max", "-2"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "har-daemon: error: argument --streams-max: -2 must be 0 or more "
        "(see har-daemon bench --help)"
    ]
    # An unknown option is found after the subcommand parsed: its help is still the one named.
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--nope", "x"])
    assert capsys.readouterr().err.splitlines() == [
        "har-daemon: error: unrecognized arguments: --nope x (see har-daemon run --help)"
    ]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--nope"])
    assert "(see har-daemon --help)" in capsys.readouterr().err


def test_missing_inputs_are_one_line_errors(tmp_path: Path) -> None:
    assert_user_error(
        har("predict", str(tmp_path / "nope.mp4"), "--model", str(tmp_path / "nomodel")),
        "does not exist",
    )
    assert_user_error(
        har("train", "--data", str(tmp_path / "nodata"), "--out", str(tmp_path / "m")),
        "nodata",
    )
    assert_user_error(
        har("import-model", str(tmp_path / "x.h5"), "--classes", "a,b", "--out", str(tmp_path)),
        "x.h5",
    )
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("hello")
    assert_user_error(har("predict", str(not_video), "--clip"), "notes.mp4")


def test_import_model_cli_writes_a_directory_that_predicts_like_keras2(tmp_path: Path) -> None:
    h5 = require(TUTORIAL_H5)
    out = tmp_path / "tutorial"
    result = har(
        "import-model", str(h5), "--classes", ",".join(TUTORIAL_CLASSES), "--out", str(out),
        "--frame-spacing", "0.15",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == list(TUTORIAL_CLASSES)
    assert meta["frame_spacing_s"] == 0.15
    assert meta["resize_interpolation"] == "linear"

    clip = h5.parents[1] / "surveillance-fight" / "fight" / "fi002.mp4"
    result = har("predict", str(clip), "--model", str(out), "--clip")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    probs = doc["probabilities"]
    assert list(probs) == list(TUTORIAL_CLASSES)
    assert doc["activity"] == max(probs, key=probs.get)

    # Keras 2 itself on the very same input, sampled the tutorial's way.
    import tf_keras

    from har_daemon.video.frames import frames_extraction

    x = frames_extraction(clip, 20, (64, 64), "linear")[None]
    reference = tf_keras.models.load_model(h5, compile=False)(x, training=False).numpy()[0]
    np.testing.assert_allclose(list(probs.values()), reference, atol=2e-4)


def test_the_fight_model_without_a_config_alerts_on_fight_only() -> None:
    """models/fight/model.json names noFight as background: no config needed to keep it quiet."""
    result = har(
        "predict", str(REPO / "models" / "demo" / "sample.mp4"), "--model",
        str(REPO / "models" / "fight"), "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["alerting"] == ["fight"]


def test_background_classes_must_be_classes_of_the_model(tmp_path: Path) -> None:
    meta = json.loads((REPO / "models" / "fight" / "model.json").read_text())
    for bad, fragment in ((["calm"], "calm"), (["fight", "noFight"], "at least one class")):
        model = tmp_path / "-".join(bad)
        model.mkdir()
        (model / "model.json").write_text(json.dumps({**meta, "background_classes": bad}))
        assert_user_error(
            har("predict", str(REPO / "models" / "demo" / "sample.mp4"), "--model", str(model)),
            fragment,
        )
