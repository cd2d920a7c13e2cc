"""Installed as a user or an installer would: a wheel without extras, in a fresh venv.

The daemon must install without TensorFlow, find its bundled models inside the installed
package (not in a checkout beside it), run the manual service recipe of docs/operations.md
(the example config copied to another folder) and `bench`'s inference figures without the Keras
baseline, and a `[train]` command must say in one line what to install.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.shared_data import REPO

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _run(cmd: list[str | Path], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("HAR_")}
    env.pop("PYTHONPATH", None)  # nothing from the checkout may leak into the venv
    env["XDG_STATE_HOME"] = str(cwd / "state")
    return subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def daemon_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`pip install <checkout>` (not editable, no extras) into a new venv."""
    root = tmp_path_factory.mktemp("install")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # A copy of the tracked files, so no build directory of the checkout is touched.
    src = root / "src"
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        source = REPO / name
        if source.is_file() or source.is_symlink():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                os.symlink(os.readlink(source), src / name)
            else:
                shutil.copy2(source, src / name)
    result = _run([venv / "bin" / "pip", "install", "-q", src], cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


def test_daemon_install_has_no_tensorflow(daemon_venv: Path, tmp_path: Path) -> None:
    python = daemon_venv / "bin" / "python"
    probe = _run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('tensorflow') is None)"],
        cwd=tmp_path,
    )
    assert probe.stdout.strip() == "True", probe.stderr
    where = _run(
        [python, "-c", "import har_daemon, pathlib; print(pathlib.Path(har_daemon.__file__))"],
        cwd=tmp_path,
    )
    assert str(daemon_venv) in where.stdout, "har_daemon must come from the venv, not the checkout"


def test_default_run_uses_litert_and_the_bundled_clip(daemon_venv: Path, tmp_path: Path) -> None:
    """README's first command, on the installed package: bundled model and clip, no broker."""
    result = _run([daemon_venv / "bin" / "har-daemon", "run", "--no-mqtt"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and {e["type"] for e in events} >= {"start", "end"}
    logs = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    start = next(e for e in logs if e["event"] == "daemon.start")
    assert start["backend"] == "litert"
    stopped = next(e for e in logs if e["event"] == "daemon.stopped")
    print(f"installed daemon, bundled clip: RSS {stopped['rss_mb']} MB, {len(events)} events")
    assert stopped["rss_mb"] < 250


def test_service_recipe_from_a_copied_config(daemon_venv: Path, tmp_path: Path) -> None:
    """docs/operations.md, "Without the package": the example config in an /etc-like folder."""
    etc = tmp_path / "etc" / "har-daemon"
    etc.mkdir(parents=True)
    config = etc / "config.toml"
    shutil.copy(REPO / "config.example.toml", config)
    har = daemon_venv / "bin" / "har-daemon"
    check = _run([har, "check-config", "--config", config], cwd=tmp_path)
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith("configuration OK"), check.stdout
    clip = REPO / "models" / "demo" / "sample.mp4"
    run = _run(
        [har, "run", "--config", config, "--source", clip, "--no-mqtt"], cwd=tmp_path, timeout=300
    )
    assert run.returncode == 0, run.stderr[-3000:]
    logs = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    start = next(e for e in logs if e["event"] == "daemon.start")
    assert [c["name"] for c in start["cameras"]] == ["front-door"], "--source runs it alone"
    assert start["model"].startswith("fight")
    stopped = next(e for e in logs if e["event"] == "daemon.stopped")
    # The example serves the person-centric fight model: the bundled clip has no people, so
    # the detector looks and every window is skipped as empty.
    front = stopped["cameras"]["front-door"]
    assert front["detections"] > 0 and front["no_person_windows"] > 0, front
    assert front["windows"] == 0 and front["events"] == 0, front


@pytest.mark.parametrize(
    ("command", "needs"),
    [(["train", "--data", "d", "--out", "m"], "train needs tensorflow"),
     (["export", "m"], "export needs tensorflow"),
     (["predict", str(REPO / "models" / "demo" / "sample.mp4"), "--backend", "keras"],
      "the keras backend for")],
)  # fmt: skip
def test_a_train_command_names_the_extra(
    daemon_venv: Path, tmp_path: Path, command: list[str], needs: str
) -> None:
    """Exit 2 and one line naming what is missing and the pip command, no traceback."""
    result = _run([daemon_venv / "bin" / "har-daemon", *command], cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert needs in lines[0] and "pip install 'har-daemon[train]'" in lines[0], lines[0]


def test_bench_without_tensorflow_measures_litert_and_says_why_not_keras(
    daemon_venv: Path, tmp_path: Path
) -> None:
    """An installer checks that the box keeps up: the inference part of bench, without the
    `[train]` extra (the Keras baseline null, with the reason), and its bad options in one line."""
    har = daemon_venv / "bin" / "har-daemon"
    result = _run(
        [har, "bench", "--json", "--runs", "2", "--streams-max", "0", "--latency-streams", "0",
         "--recognisers-seconds", "0"],
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout)
    assert figures["keras_baseline"].startswith("skipped: TensorFlow is not installed")
    assert "pip install 'har-daemon[train]'" in figures["keras_baseline"]
    assert figures["predict_ms"] is None and figures["speedup"] is None
    assert figures["fast_backend"] == "litert" and figures["fast_ms"] > 0
    assert figures["detect_ms"] > 0 and figures["pose_ms_per_person"] > 0
    assert "Traceback" not in result.stderr
    bad = _run([har, "bench", "--runs", "0"], cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.splitlines() == [
        "har-daemon: error: argument --runs: 0 must be at least 1 (see har-daemon bench --help)"
    ]


def test_synth_data_needs_no_train_extra(daemon_venv: Path, tmp_path: Path) -> None:
    """synth-data draws with OpenCV and NumPy only: it works on the daemon-only install."""
    out = tmp_path / "synth"
    result = _run(
        [daemon_venv / "bin" / "har-daemon", "synth-data", "--out", out, "--groups", "1",
         "--clips-per-group", "1", "--classes", "Swing,Biking"],
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.parent.name for p in out.rglob("*.avi")) == ["Biking", "Swing"]
