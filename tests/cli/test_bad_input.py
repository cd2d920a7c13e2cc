"""Bad input everywhere: each case gets exit 2 and a message naming the problem, no traceback.

Fatal problems are found at start-up, before any thread, camera or broker connection starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.shared_data import REPO

DEMO = REPO / "models" / "demo"
CLIP = DEMO / "sample.mp4"

GOOD = f"""
[model]
path = "{DEMO}"
[mqtt]
host = "127.0.0.1"
port = 1
[[cameras]]
name = "lobby"
source = "{CLIP}"
"""


def _run(
    args: list[str], tmp: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HAR_")}
    full_env.update(
        TF_CPP_MIN_LOG_LEVEL="3",
        XDG_STATE_HOME=str(tmp / "state"),
        PYTHONPATH=str(REPO),
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
        env=full_env,
    )


def _config(tmp: Path, text: str) -> Path:
    path = tmp / "har.toml"
    path.write_text(text)
    return path


def _edit(old: str, new: str) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        assert old in GOOD
        return _config(tmp, GOOD.replace(old, new, 1))

    return make


def _append(extra: str) -> Callable[[Path], Path]:
    return lambda tmp: _config(tmp, GOOD + extra)


def _model_copy(tmp: Path, change: Callable[[Path], None]) -> Path:
    model = tmp / "model"
    shutil.copytree(DEMO, model)
    change(model)
    return _config(tmp, GOOD.replace(str(DEMO), str(model)))


def _meta_edit(**fields: object) -> Callable[[Path], Path]:
    def change(model: Path) -> None:
        meta = json.loads((model / "model.json").read_text())
        meta.update(fields)
        (model / "model.json").write_text(json.dumps(meta))

    return lambda tmp: _model_copy(tmp, change)


def _source(make_file: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        return _config(tmp, GOOD.replace(str(CLIP), str(make_file(tmp))))

    return make


def _written(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        (tmp / name).write_bytes(data)
        return tmp / name

    return make


def _truncated_clip(tmp: Path) -> Path:
    out = tmp / "truncated.mp4"
    out.write_bytes(CLIP.read_bytes()[:2000])
    return out


# (case id, command, how to make the config, extra env, expected fragments in the error)
CASES: list[tuple[str, str, Callable[[Path], Path], dict[str, str], tuple[str, ...]]] = [
    ("missing config file", "check-config", lambda t: t / "nope.toml", {}, ("nope.toml", "not found")),
    ("toml syntax error", "check-config", _append("[mqtt\n"), {}, ("TOML syntax error", "line")),
    ("unknown section", "check-config", _append("[mqqt]\nhost = 'x'\n"), {}, ("mqqt",)),
    ("unknown key", "check-config", _edit('host = "127.0.0.1"', 'hots = "x"'), {}, ("mqtt.hots",)),
    ("wrong type", "check-config", _edit("port = 1", 'port = "many"'), {}, ("mqtt.port",)),
    ("port out of range", "check-config", _edit("port = 1", "port = 70000"), {}, ("mqtt.port",)),
    (
        "exit threshold above enter",
        "check-config",
        _append("[inference]\nenter_threshold = 0.5\nexit_threshold = 0.7\n"),
        {},
        ("exit_threshold",),
    ),
    (
        "duplicate camera names",
        "check-config",
        _append(f'[[cameras]]\nname = "lobby"\nsource = "{CLIP}"\n'),
        {},
        ("duplicate camera name",),
    ),
    ("bad camera name", "check-config", _edit('name = "lobby"', 'name = "front door"'), {}, ("cameras[0].name",)),
    ("stride zero", "check-config", _edit(f'path = "{DEMO}"', f'path = "{DEMO}"\nstride = 0'), {}, ("model.stride",)),
    ("env override wrong type", "check-config", lambda t: _config(t, GOOD), {"HAR_MQTT__KEEPALIVE": "often"}, ("HAR_MQTT__KEEPALIVE",)),
    ("password without username", "check-config", _edit("port = 1", 'port = 1\npassword = "s3cret"'), {}, ("mqtt.password",)),
    ("missing TLS CA file", "check-config", _edit("port = 1", 'port = 1\ntls = true\ntls_ca_file = "/nonexistent/ca.pem"'), {}, ("tls_ca_file",)),
    ("missing model directory", "check-config", _edit(f'path = "{DEMO}"', 'path = "/nonexistent/model"'), {}, ("/nonexistent/model", "does not exist")),
    ("model dir without model.json", "check-config", lambda t: _model_copy(t, lambda m: (m / "model.json").unlink()), {}, ("no model.json",)),
    ("corrupt model.json", "check-config", lambda t: _model_copy(t, lambda m: (m / "model.json").write_text("{")), {}, ("not valid JSON",)),
    ("unknown alert activity", "check-config", _append("[inference]\nalert_activities = ['Dancing']\n"), {}, ("Dancing",)),
    ("zone point outside the frame", "check-config", _append("zones = [{ name = 'door', points = [[0, 0], [1.5, 0], [0, 1]] }]\n"), {}, ("camera 'lobby'", "zone 'door'", "outside the frame")),
    ("zone crossing itself", "check-config", _append("zones = [{ name = 'door', points = [[0, 0], [1, 1], [1, 0], [0, 1]] }]\n"), {}, ("camera 'lobby'", "zone 'door'", "crosses itself")),
    ("zone without area", "check-config", _append("zones = [{ name = 'door', points = [[0, 0], [0.5, 0.5], [1, 1]] }]\n"), {}, ("zone 'door'", "no area")),
    ("mask of two points", "check-config", _append("masks = [{ name = 'tv', points = [[0, 0], [0.5, 0.5], [0, 0]] }]\n"), {}, ("mask 'tv'", "at least 3")),
    ("required zone not drawn", "check-config", _append("required_zones = { Swing = ['yard'] }\n"), {}, ("camera 'lobby'", "'yard'")),
    ("required zones on a whole-frame model", "check-config", _append("zones = [{ name = 'yard', points = [[0, 0], [1, 0], [0, 1]] }]\nrequired_zones = { Swing = ['yard'] }\n"), {}, ("camera 'lobby'", "person-centric")),
    ("debug view without a port", "check-config", _append("[debug_view]\nenabled = true\n"), {}, ("debug_view", "[metrics] port")),
    ("webcam as record source", "check-config", _append("record_source = 0\n"), {}, ("cameras[0].record_source", "webcam")),
    ("missing file source", "check-config", _source(lambda t: t / "gone.mp4"), {}, ("gone.mp4", "does not exist")),
    ("source is not a video", "check-config", _source(_written("notes.mp4", b"just some text\n" * 50)), {}, ("notes.mp4",)),
    ("empty video file", "check-config", _source(_written("empty.mp4", b"")), {}, ("empty.mp4",)),
    ("truncated video file", "check-config", _source(_truncated_clip), {}, ("truncated.mp4",)),
    ("model.json does not fit the model", "run", _meta_edit(classes=["a", "b", "c"]), {"HAR_MODEL__BACKEND": "keras"}, ("lists 3 classes",)),
    ("model.json does not fit the export", "run", _meta_edit(classes=["a", "b", "c"]), {}, ("does not match", "har-daemon export")),
    ("litert without export", "run", lambda t: _model_copy(t, lambda m: (m / "model.tflite").unlink()), {"HAR_MODEL__BACKEND": "litert"}, ("har-daemon export",)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("command", "make", "env", "fragments"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_is_a_clear_fatal_error(
    tmp_path: Path,
    command: str,
    make: Callable[[Path], Path],
    env: dict[str, str],
    fragments: tuple[str, ...],
) -> None:
    config = make(tmp_path)
    result = _run([command, "--config", str(config), "--no-mqtt"], tmp_path, env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("har-daemon: error:")]
    assert len(errors) == 1, result.stderr
    # The error line, and for configuration errors one line per bad field after it.
    lines = result.stderr.splitlines()
    message = "\n".join(lines[lines.index(errors[0]) :])
    for fragment in fragments:
        assert fragment in message, message
    # Nothing started: no event printed, no spool written.
    assert result.stdout.strip() == "" or command == "check-config"
    assert not (tmp_path / "state").exists()


def test_unreachable_broker_is_not_fatal(tmp_path: Path) -> None:
    """The broker may be down or mistyped: the daemon keeps watching and prints events."""
    config = _config(
        tmp_path,
        GOOD.replace('host = "127.0.0.1"', 'host = "broker.invalid"').replace(
            f'source = "{CLIP}"', f'source = "{CLIP}"\nrealtime = false'
        ),
    )
    result = _run(["run", "--config", str(config)], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert {e["activity"] for e in events if e["type"] == "start"} >= {"Swing", "Biking"}
    assert "mqtt.connect_failed" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["calibrate", "--camera", "nope"], "camera 'nope' is not in the config"),
        (["calibrate", "--camera", "lobby", "--budget", "often"], "e.g. 1/day"),
        (["quiet-eval", "--data", "no-such-folder"], "sources.csv"),
        (["quiet-eval", "--data", ".", "--gate", "near"], "give off or a distance"),
    ],
    ids=["unknown camera", "bad budget", "no quiet folder", "bad gate"],
)
def test_calibration_mistakes_are_one_line(tmp_path: Path, args: list[str], fragment: str) -> None:
    config = _config(tmp_path, GOOD)
    result = _run([*args, "--config", str(config)], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert fragment in result.stderr, result.stderr


def test_a_broken_calibration_file_stops_the_start(tmp_path: Path) -> None:
    state = tmp_path / "state" / "har-daemon"
    state.mkdir(parents=True)
    (state / "calibration.json").write_text("{broken")
    result = _run(["run", "--config", str(_config(tmp_path, GOOD)), "--no-mqtt"], tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("har-daemon: error:")]
    assert len(errors) == 1 and "calibration.json" in errors[0], result.stderr
