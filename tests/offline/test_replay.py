"""One decision policy: `predict` on a real recording raises what the daemon raises on it.

`predict` replays the file through the daemon's own capture and inference code; these tests
hold it to that against the real daemon process, across backends, at scene cuts, and for a
person-centric model's windows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from har_daemon.config import load_config
from har_daemon.model.meta import read_meta, write_meta
from har_daemon.model.registry import create_backend
from har_daemon.offline.replay import replay
from har_daemon.tools.media import concat_clips
from har_daemon.training.synth import write_activity_video
from tests.daemon_helpers import DaemonPool, DaemonProcess, daemon_env, parse_iso, write_config
from tests.shared_data import FALLS_DATA, FIGHT_DATA, REPO, require

pytestmark = pytest.mark.slow

FIGHT_MODEL = REPO / "models" / "fight"
# Every class alerts and starts at once: many transitions to compare on a quiet clip.
CHATTY = {
    "alert_activities": ["fight", "noFight"],  # noFight too, though the model calls it background
    "enter_threshold": 0.3,
    "exit_threshold": 0.05,
    "min_windows": 1,
    "update_interval_s": 1,
}


def har(*args: str | Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "har_daemon", *map(str, args)],
        capture_output=True,
        text=True,
        env=daemon_env(tmp),
        cwd=REPO,
        timeout=300,
    )


def _config(path: Path, source: Path, backend: str = "litert") -> Path:
    return write_config(
        path,
        {
            "model": {"path": FIGHT_MODEL, "backend": backend},
            "mqtt": {"enabled": False},
            "inference": CHATTY,
            "logging": {"level": "info", "json": True},
        },
        [{"name": "clip", "source": source, "realtime": False}],
    )


def live_then_offline(
    cfg: Path, clip: Path, tmp: Path
) -> tuple[DaemonProcess, list[dict[str, Any]]]:
    """The real daemon on `cfg` to the clip's end, then `predict --events --json` on the clip:
    the daemon (its events and logs) and the offline events."""
    pool = DaemonPool(tmp)
    try:
        daemon = pool.start(cfg)
        assert daemon.wait(timeout=120) == 0, daemon.describe()
    finally:
        pool.close()
    result = har("predict", clip, "--config", cfg, "--events", "--json", tmp=tmp)
    assert result.returncode == 0, result.stderr[-2000:]
    return daemon, [json.loads(line) for line in result.stdout.splitlines()]


def test_predict_raises_what_the_daemon_raises(tmp_path: Path) -> None:
    clip = require(FALLS_DATA / "assist-iot" / "adl" / "07_sitting_high_chair.mp4")
    cfg = _config(tmp_path / "har.toml", clip)
    daemon, offline = live_then_offline(cfg, clip, tmp_path)
    live = daemon.stdout_events()
    opened = next(e for e in daemon.logs() if e["event"] == "camera.online")
    t0 = parse_iso(opened["timestamp"])

    assert len(live) >= 4, "a quiet clip with chatty thresholds must give transitions"
    assert [(e["type"], e["activity"]) for e in offline] == [
        (e["type"], e["activity"]) for e in live
    ]
    stride_s = 5 * read_meta(FIGHT_MODEL).frame_spacing_s
    for off, on in zip(offline, live, strict=True):
        assert abs(off["at_s"] - (parse_iso(on["at"]) - t0)) <= stride_s, (off, on)


def _windows(doc: dict[str, Any]) -> list[dict[str, float]]:
    return [w["probabilities"] for w in doc["windows"]]


def test_keras_and_litert_give_the_same_events_and_metrics(tmp_path: Path) -> None:
    clip = require(FIGHT_DATA / "fight" / "fi002.mp4")
    docs = {}
    for backend in ("keras", "litert"):
        result = har("predict", clip, "--model", FIGHT_MODEL, "--backend", backend, "--json",
                     tmp=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        docs[backend] = json.loads(result.stdout)
    assert docs["keras"]["events"] == docs["litert"]["events"]
    for a, b in zip(_windows(docs["keras"]), _windows(docs["litert"]), strict=True):
        assert a == pytest.approx(b, abs=2e-4)

    data = tmp_path / "data"
    clips = {"fight": ["fi001", "fi050", "fi110"], "noFight": ["nofi001", "nofi066"]}
    for label, names in clips.items():
        (data / label).mkdir(parents=True)
        for name in names:
            (data / label / f"{name}.mp4").symlink_to(require(FIGHT_DATA / label / f"{name}.mp4"))
    metrics = {}
    for backend in ("keras", "litert"):
        result = har("evaluate", "--model", FIGHT_MODEL, "--data", data, "--report",
                     tmp_path / backend, "--backend", backend, "--json", tmp=tmp_path)  # fmt: skip
        assert result.returncode == 0, result.stderr[-2000:]
        metrics[backend] = json.loads(result.stdout)
    assert metrics["keras"]["backend"] == "keras" and metrics["litert"]["backend"] == "litert"
    for key in ("accuracy", "confusion_matrix", "per_class"):
        assert metrics["keras"][key] == metrics["litert"][key], key


def test_a_spliced_recording_restarts_the_window_at_the_join(tmp_path: Path) -> None:
    a = require(FIGHT_DATA / "fight" / "fi108.mp4")
    # Another place and camera, and long enough for windows after the join.
    b = require(FALLS_DATA / "assist-iot" / "adl" / "07_sitting_high_chair.mp4")
    spliced = tmp_path / "spliced.mp4"
    (_, join), _ = concat_clips([a, b], spliced)
    config = load_config(None, overrides={"model": {"path": FIGHT_MODEL}})
    backend = create_backend("litert", FIGHT_MODEL)
    run = replay(spliced, config, backend.meta, backend)
    assert run.cuts == 1
    span = (backend.meta.sequence_length - 1) * backend.meta.frame_spacing_s
    ends = [w.window_end for w in run.windows]
    assert any(t < join for t in ends) and any(t > join for t in ends)
    # No window both starts before the join and ends after it.
    straddling = [t for t in ends if join <= t < join + span - 0.05]
    assert not straddling, (join, straddling)


def test_person_centric_windows_follow_the_people(tmp_path: Path) -> None:
    """The demo network relabelled as a person-centric model: the plumbing, not its verdict."""
    model = tmp_path / "people-demo"
    shutil.copytree(REPO / "models" / "demo", model)
    write_meta(model, read_meta(model).model_copy(update={"input_region": "person"}))
    meta = read_meta(model)
    assert meta.person_region is not None
    backend = create_backend("litert", model)
    config = load_config(None, overrides={"model": {"path": model}})

    walking = require(FALLS_DATA / "assist-iot" / "adl" / "01_walking_slowly.mp4")
    run = replay(walking, config, meta, backend)
    assert run.windows, "a person walks through this clip"
    for w in run.windows:
        x1, y1, x2, y2 = w.region  # type: ignore[misc]
        assert 0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1

    empty = write_activity_video(tmp_path / "nobody.mp4", [("Swing", 4.0)], seed=2)
    nobody = replay(empty, config, meta, backend)
    assert nobody.windows == [] and nobody.transitions == []
    assert nobody.no_person_windows > 0


def test_predict_raises_the_falls_the_daemon_raises(tmp_path: Path) -> None:
    """A camera with a fall recogniser replays with it: the same fall events as the daemon."""
    clip = require(FALLS_DATA / "gmdcsa24" / "fall" / "s1_fall_14.mp4")  # falls at 0.3-5.0 s
    recognisers = [{"kind": "classifier"}, {"kind": "fall", "model": "models/fall"}]
    sections = {
        "model": {"path": FIGHT_MODEL, "backend": "litert"},
        "mqtt": {"enabled": False},
        "logging": {"level": "info", "json": True},
    }
    camera = {"name": "room", "source": clip, "realtime": False}
    cfg = write_config(tmp_path / "har.toml", sections, [{**camera, "recognisers": recognisers}])
    daemon, offline = live_then_offline(cfg, clip, tmp_path)
    live = [e for e in daemon.stdout_events() if e["activity"] == "fall"]
    falls = [e for e in offline if e["activity"] == "fall"]

    assert [e["type"] for e in falls][:2] == ["start", "update"], offline
    assert [e["type"] for e in falls] == [e["type"] for e in live]
    assert 0.3 <= falls[0]["at_s"] <= 5.0 + 3.0
    for off, on in zip(falls, live, strict=True):
        if off["type"] != "end":  # "down for N s", within one fall look (0.2 s) and rounding
            assert abs(off["down_s"] - on["down_s"]) <= 0.3, (off, on)

    # The same camera without the recogniser: the classifier's events only, no fall.
    plain = write_config(tmp_path / "plain.toml", sections, [camera])
    result = har("predict", clip, "--config", plain, "--events", "--json", tmp=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert all(json.loads(line)["activity"] != "fall" for line in result.stdout.splitlines())
